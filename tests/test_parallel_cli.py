"""`ltx2 generate` under torchrun on CPU (gloo): the shared run writes what one process writes, a rank that fails or
dies ends the whole job with exit 1, one error line and no output, and Ctrl-C ends every rank with 130 and one line."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch
from commands import ENV
from parity import relative_l2

PROBE = Path(__file__).parent / "cli_probe.py"
GENERATE = ["generate", "--prompt", "a robot dancing in the rain", "--preset", "one-stage", "--width", "128",
            "--height", "96", "--num-frames", "9", "--steps", "2", "--seed", "4"]


def torchrun(ranks: int, *command, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                           str(ranks), *map(str, command)], capture_output=True, text=True, env=ENV, timeout=timeout,
                          check=False)


def ltx2_lines(stderr: str) -> list[str]:
    """The lines that say how an ltx2 run ended (torchrun adds its own report after them)."""
    return [line for line in stderr.splitlines() if line.startswith(("ltx2: error", "ltx2: failed"))]


def decoded_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]).astype(np.float64)


def test_shared_run_writes_what_one_process_writes(tiny, tmp_path):
    alone, shared = tmp_path / "alone", tmp_path / "shared"
    alone.mkdir(), shared.mkdir()
    result = subprocess.run([sys.executable, PROBE, "record", *GENERATE, "--model", tiny, "--output",
                             alone / "out.mp4"], capture_output=True, text=True, env=ENV, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    result = torchrun(2, PROBE, "record", *GENERATE, "--model", tiny, "--parallel", "ulysses=2", "--output",
                      shared / "out.mp4")
    assert result.returncode == 0, result.stderr
    # Rank 0 alone reports, shows its progress bar and writes.
    assert result.stdout.count("ltx2: wrote") == 1 and "(rank 0)" in result.stdout
    assert result.stderr.count("ltx2: denoising...") == 1 and result.stderr.count(" 0/2 [") == 1
    assert "2 ranks: --parallel ulysses=2,guidance=1" in result.stderr
    assert sorted(path.name for path in shared.iterdir()) == ["out.mp4", "out.mp4.pt"]
    expected, written = torch.load(alone / "out.mp4.pt"), torch.load(shared / "out.mp4.pt")
    assert relative_l2(written["video"], expected["video"]) <= 1e-3
    assert relative_l2(written["audio"], expected["audio"]) <= 1e-3
    # In the files: a float difference of ~1e-6 moves a few 8-bit values by one level, which H.264 then spreads
    # a little; noise from another seed is ~12 dB away.
    error = ((decoded_frames(alone / "out.mp4") - decoded_frames(shared / "out.mp4")) ** 2).mean()
    assert error == 0 or 10 * np.log10(255**2 / error) >= 40


def test_bad_arguments_under_torchrun_one_line(tiny, tmp_path):
    result = torchrun(2, "-m", "ltx2", *GENERATE, "--model", tiny, "--parallel", "ulysses=4",
                      "--output", tmp_path / "out.mp4")
    assert result.returncode == 1
    assert ltx2_lines(result.stderr) == [
        ("ltx2: error: --parallel ulysses=4,guidance=1: the product must be the number of processes (2; launch "
         "with torchrun --nproc-per-node N)")
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_failing_rank_ends_the_job(tiny, tmp_path):
    result = torchrun(2, PROBE, "raise", *GENERATE, "--model", tiny, "--output", tmp_path / "out.mp4")
    assert result.returncode == 1
    assert ltx2_lines(result.stderr) == ["ltx2: error on rank 1: the latents on rank 1 are not finite"]
    assert list(tmp_path.iterdir()) == []


def test_a_killed_rank_ends_the_job(tiny, tmp_path):
    result = torchrun(2, PROBE, "kill", *GENERATE, "--model", tiny, "--output", tmp_path / "out.mp4")
    assert result.returncode == 1
    # The survivor may report the lost peer before torchrun stops it, or be stopped first: at most one line.
    assert len(ltx2_lines(result.stderr)) <= 1
    assert re.search(r"exitcode\s*:\s*-9", result.stderr)  # torchrun's report names the killed rank
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_ends_every_rank_with_130_and_one_line(tiny, tmp_path):
    """Ctrl-C in the terminal (SIGINT to torchrun and its ranks, one process group) mid-run: every rank exits 130,
    one line says so, nothing is written; torchrun, interrupted itself, stops and exits non-zero (its own report of
    the signal, SignalException, follows)."""
    statuses, output = tmp_path / "statuses", tmp_path / "out" / "out.mp4"
    statuses.mkdir(), output.parent.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", PROBE, "status",
               "generate", "--model", tiny, "--prompt", "a cat", "--preset", "one-stage", "--width", "128",
               "--height", "128", "--num-frames", "17", "--steps", "100000", "--output", output]
    process = subprocess.Popen(list(map(str, command)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**ENV, "LTX2_PROBE_STATUS": str(statuses)}, start_new_session=True)
    # tqdm redraws the bar at most ten times a second: wait for any step done, not a given one.
    seen, stepped, deadline = "", re.compile(r" [1-9]\d*/100000 \["), time.monotonic() + 240
    while not stepped.search(seen) and process.poll() is None and time.monotonic() < deadline:
        seen += process.stderr.read(1)  # the bar is redrawn in place (no newline): read characters, not lines
    os.killpg(process.pid, signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    stderr = seen + rest
    assert stepped.search(seen), stderr  # interrupted in the sampling loop
    assert process.returncode not in (0, None), stderr
    assert {path.name: path.read_text() for path in statuses.iterdir()} == {"0": "130", "1": "130"}, stderr
    assert [line for line in stderr.splitlines() if line.startswith("ltx2: ") and "interrupted" in line] == [
        "ltx2: interrupted; no output written"], stderr
    assert not ltx2_lines(stderr) and "KeyboardInterrupt" not in stderr, stderr  # no rank failed or broke off
    assert list(output.parent.iterdir()) == []
