"""`ltx2 serve`: request latency under load, and what a served job costs over the same generation run directly.

Starts a server (a subprocess, loopback only) on --model (default: a tiny random-weight pipeline written to a
temporary folder), then
1. latency: while a long job runs, --threads threads send --requests requests, half creates and half retrieves,
   with the official openai client; p50 and p99 of each (the queued creates are deleted afterwards);
2. overhead: --repeats times, alternating, the same request served and run in this process through the CLI's
   own render and write after loading once (what `ltx2 generate` does once its model is loaded); medians and
   the ratio. The served run creates the job, sleeps through --sleep of the fastest direct run so far, then
   retrieves every --poll seconds until completed: the client's polling costs the server's CPU (an HTTP request
   each) and its interval rounds the time up, and neither is the server's overhead. Also the median of the
   paired ratios (each served run over the direct run after it), which the machine's slow drift does not move.

    python bench/serve.py --size 512x512 --num-frames 65 --steps 60 --repeats 15 --poll 0.05 --sleep 0.85
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SOURCES = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SOURCES))
warnings.filterwarnings("ignore", "The Sora API", DeprecationWarning)


def start_server(model: str, data_dir: Path, preset: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(SOURCES), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "ltx2", "serve", "--model", model, "--preset", preset,
                                "--port", "0", "--data-dir", str(data_dir), "--max-queue", "100000"],
                               stdout=subprocess.PIPE, text=True, env=env)
    line = ""
    while "ltx2 serve:" not in line:
        ready, _, _ = select.select([process.stdout], [], [], 600)
        if not ready or process.poll() is not None:
            process.kill()
            raise SystemExit("the server did not start")
        line = process.stdout.readline()
    return process, line.split(" at ", 1)[1].split(";", 1)[0].strip()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def latency(client, request: dict, requests: int, threads: int) -> None:
    running = client.videos.create(**{**request, "extra_body": {**request["extra_body"], "num_inference_steps": 1000}})
    while client.videos.retrieve(running.id).status != "in_progress":
        time.sleep(0.01)
    times: dict[str, list[float]] = {"create": [], "retrieve": []}
    created, lock = [], threading.Lock()

    def one(index: int) -> None:
        start = time.perf_counter()
        if index % 2:
            client.videos.retrieve(running.id)
            kind = "retrieve"
        else:
            video_id = client.videos.create(**request).id
            kind = "create"
        elapsed = time.perf_counter() - start
        with lock:
            times[kind].append(elapsed)
            if kind == "create":
                created.append(video_id)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(requests)))
    for video_id in [*created, running.id]:
        client.videos.delete(video_id)
    for kind, values in times.items():
        print(f"{kind:>9}: p50 {percentile(values, 0.5) * 1000:.1f} ms, p99 {percentile(values, 0.99) * 1000:.1f} ms "
              f"over {len(values)} requests from {threads} threads, while a job runs")


def overhead(client, request: dict, model: str, preset: str, repeats: int, poll: float, sleep: float,
             folder: Path) -> None:
    from ltx2.cli import Launch, Timings, build_parser, check_generate_arguments, load, render, write

    width, height = request["size"].split("x")
    extra = request["extra_body"]
    args = build_parser().parse_args([
        "generate", "--model", model, "--prompt", request["prompt"], "--preset", preset, "--width", width,
        "--height", height, "--num-frames", str(extra["num_frames"]), "--steps", str(extra["num_inference_steps"]),
        "--seed", str(extra["seed"]), "--output", str(folder / "direct.mp4")])
    check_generate_arguments(args, Launch())
    loaded = load(args, Launch(), Timings(verbose=False))
    loaded.pipeline.set_progress_bar_config(disable=True)

    def direct() -> None:
        video, audio = render(loaded, args, Timings(verbose=False))
        write(loaded, args, video, audio)

    seconds: dict[str, list[float]] = {"served": [], "direct": []}
    start = time.perf_counter()
    direct()  # warm-up
    warm_up = time.perf_counter() - start

    def served() -> None:
        video_id = client.videos.create(**request).id
        # The fastest direct run so far: a slow warm-up must not make the client sleep past the job's end.
        time.sleep(sleep * min([warm_up, *seconds["direct"]]))
        while client.videos.retrieve(video_id).status not in ("completed", "failed"):
            time.sleep(poll)
        client.videos.delete(video_id)

    served()  # warm-up
    runs = {"served": served, "direct": direct}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    for name, value in medians.items():
        print(f"{name:>9}: median {value:.3f} s over {repeats}")
    print(f"ratio served/direct: {medians['served'] / medians['direct']:.3f}")
    # Each served run beside the direct run after it: the machine's drift over minutes cancels within a pair.
    paired = statistics.median(mine / theirs for mine, theirs in zip(seconds["served"], seconds["direct"]))
    print(f"median of the {repeats} paired ratios: {paired:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: a tiny random-weight pipeline")
    parser.add_argument("--preset", default="one-stage")
    parser.add_argument("--size", default="256x256")
    parser.add_argument("--num-frames", type=int, default=33)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between retrieves of a served job")
    parser.add_argument("--sleep", type=float, default=0.0,
                        help="fraction of the fastest direct run's time the client waits before its first retrieve")
    args = parser.parse_args()
    import openai

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        model = args.model
        if model is None:
            from ltx2.tiny import make_tiny_pipeline

            model = str(make_tiny_pipeline(folder / "tiny"))
        process, url = start_server(model, folder / "data", args.preset)
        try:
            client = openai.OpenAI(base_url=f"{url}v1", api_key="unused", max_retries=0, timeout=120)
            request = {"prompt": "a robot dancing in the rain", "size": args.size,
                       "extra_body": {"num_frames": args.num_frames, "num_inference_steps": args.steps, "seed": 1}}
            latency(client, request, args.requests, args.threads)
            overhead(client, request, model, args.preset, args.repeats, args.poll, args.sleep, folder)
        finally:
            process.terminate()
            process.wait(timeout=60)


if __name__ == "__main__":
    main()
