"""`ltx2 serve` as a user runs it: a real server process on loopback, on a tiny model, called with the official
openai client. One server is shared by the API and page tests; the restart test starts its own."""

import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

# PYTHONPATH made absolute, so the server imports the same ltx2 as the tests.
PYTHON_PATH = os.pathsep.join(os.path.abspath(path) for path in [*os.environ.get("PYTHONPATH", "").split(os.pathsep),
                                                                 "src"] if path)
# One thread per process: the test machines' few cores are shared by the server, its tests and other suites.
ENV = {**os.environ, "PYTHONPATH": PYTHON_PATH, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
# The smallest job: one latent frame and a half-width latent, two steps (about 3 s on a CPU).
SMALL = {"num_frames": 9, "num_inference_steps": 2}
LONG = {**SMALL, "num_inference_steps": 1000}  # a job that runs until the test deletes it
SIZE = "64x64"
START_TIMEOUT = 180
# The openai client marks its Videos methods deprecated (for OpenAI's own service); the API they speak stays ours.
QUIET = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


class Server:
    """A running `ltx2 serve` process (rank 0): its URL, data dir and start-up line, and the other ranks' processes
    where the test started them itself."""

    def __init__(self, process: subprocess.Popen, url: str, data_dir: Path, line: str, log: Path,
                 followers: list[subprocess.Popen]):
        self.process, self.url, self.data_dir, self.line, self.log = process, url, data_dir, line, log
        self.followers = followers

    def client(self, api_key: str = "unused") -> "openai.OpenAI":
        return openai.OpenAI(base_url=f"{self.url}v1", api_key=api_key, max_retries=0, timeout=60)

    def stop(self, how: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(how)
        code = self.process.wait(timeout=60)
        for follower in self.followers:  # they stop when rank 0 does (or its store goes)
            try:
                follower.wait(timeout=30)
            except subprocess.TimeoutExpired:
                follower.kill()
                follower.wait()
        return code


def start_server(model: Path, data_dir: Path, *options: str, ranks: int = 1, torchrun: bool = True,
                 env: dict[str, str] | None = None) -> Server:
    """Start `ltx2 serve` on a free loopback port, with `ranks` > 1 under torchrun or (`torchrun` False) as one
    process per rank started here with torch.distributed's variables; returns once its start-up line is printed
    (the model loaded)."""
    log = data_dir.parent / f"{data_dir.name}-{time.monotonic_ns()}.log"
    env = {**ENV, **(env or {})}
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)] if torchrun else []
    command = [sys.executable, *(launcher if ranks > 1 else []), "-m", "ltx2", "serve", "--model", str(model),
               "--preset", "one-stage", "--port", "0", "--data-dir", str(data_dir), *options]
    followers = []
    if ranks > 1 and not torchrun:
        with socket.socket() as probe:  # a free port for the store rank 0 serves
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(ranks),
                   LOCAL_WORLD_SIZE=str(ranks))
        followers = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.with_suffix(f".{rank}").open("w"),
                                      env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)})
                     for rank in range(1, ranks)]
        env.update(RANK="0", LOCAL_RANK="0")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env)
    deadline = time.monotonic() + START_TIMEOUT
    line = ""
    while "ltx2 serve:" not in line:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready or process.poll() is not None:
            for started in (process, *followers):
                started.kill()
            raise AssertionError(f"the server did not start: {log.read_text()}")
        line = process.stdout.readline()
    url = line.split(" at ", 1)[1].split(";", 1)[0].strip()
    return Server(process, url, data_dir, line, log, followers)


def decode(data: bytes) -> tuple[np.ndarray, np.ndarray, float]:
    """An MP4's frames (F, H, W, 3), its audio (channels, samples) and its frame rate."""
    with av.open(io.BytesIO(data)) as container:
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    with av.open(io.BytesIO(data)) as container:
        audio = np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=1)
        rate = float(container.streams.video[0].average_rate)
    return frames, audio, rate


def get_json(url: str) -> tuple[int, dict]:
    """A plain GET (no client, no key): the status and the JSON body."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def wait_for(client: "openai.OpenAI", video_id: str, *statuses: str, timeout: float = 120, progress: int = 0):
    """The video once its status is one of `statuses` (and its progress at least `progress`)."""
    deadline = time.monotonic() + timeout
    while True:
        video = client.videos.retrieve(video_id)
        if video.status in statuses and video.progress >= progress:
            return video
        assert video.status != "failed", video.error
        assert time.monotonic() < deadline, f"{video_id} still {video.status} ({video.progress}%)"
        time.sleep(0.1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny pipeline with a distilled LoRA beside it (random, original format, on the feed-forward outputs), so
    that two-stage jobs load it once and switch it on and off."""
    import torch
    from safetensors.torch import load_file, save_file

    from ltx2.tiny import make_tiny_pipeline

    folder = Path(make_tiny_pipeline(tmp_path_factory.mktemp("serve") / "tiny"))
    generator = torch.Generator().manual_seed(0)
    lora = {}
    for key, weight in load_file(str(folder / "transformer" / "diffusion_pytorch_model.safetensors")).items():
        if key.endswith("ff.net.2.weight"):
            name = "diffusion_model." + key.removesuffix(".weight")
            lora[f"{name}.lora_A.weight"] = torch.randn(2, weight.shape[1], generator=generator)
            lora[f"{name}.lora_B.weight"] = torch.randn(weight.shape[0], 2, generator=generator)
    save_file(lora, str(folder / "ltx-2-19b-distilled-lora-384.safetensors"))
    return folder


@pytest.fixture(scope="session")
def server(tiny_model, tmp_path_factory):
    running = start_server(tiny_model, tmp_path_factory.mktemp("serve-data") / "data", "--max-queue", "6")
    yield running
    assert running.stop() == 0, running.log.read_text()
