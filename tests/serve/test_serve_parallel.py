"""`torchrun -m ltx2 serve --parallel` on CPU (gloo, 2 ranks): rank 0 serves, every job runs on both ranks, a
delete stops both at the same step while the queue goes on, and a rank's failure fails the job, not the server."""

import os
import subprocess
import sys
import time

import numpy as np
from conftest import ENV, LONG, PYTHON_PATH, QUIET, SIZE, SMALL, decode, get_json, start_server, wait_for

pytestmark = QUIET

# Loaded by rank 1 alone (its PYTHONPATH): a job with this prompt raises there after its first step, while rank 0
# goes on into the next step's collectives.
FAILING_PROMPT = "fail on rank 1"
SITECUSTOMIZE = f'''
import os

if os.environ.get("RANK") == "1":
    import ltx2.cli

    render = ltx2.cli.render

    def failing(loaded, args, timings, callback=None):
        def step(*arguments):
            raise RuntimeError("injected failure on rank 1")

        return render(loaded, args, timings, step if args.prompt == {FAILING_PROMPT!r} else callback)

    ltx2.cli.render = failing
'''


def test_jobs_run_on_all_ranks_and_a_delete_stops_them(tiny_model, tmp_path):
    server = start_server(tiny_model, tmp_path / "data", "--parallel", ranks=2)
    try:
        assert "2 ranks" in server.line
        client = server.client()
        running = client.videos.create(prompt="a long one", size=SIZE, extra_body=LONG)
        following = client.videos.create(prompt="a cat", size=SIZE, extra_body=SMALL)
        wait_for(client, running.id, "in_progress", progress=1)
        client.videos.delete(running.id)
        video = wait_for(client, following.id, "completed", timeout=60)
        assert video.progress == 100 and client.videos.download_content(video.id).read()[4:8] == b"ftyp"
        log = server.log.read_text()
        assert "2 ranks: --parallel ulysses=1,guidance=2" in log and "rank 1" not in log
    finally:
        server.stop()  # torchrun stops its ranks; a SIGKILL would leave them running


def test_a_rank_raising_alone_fails_the_job_and_the_next_job_runs(tiny_model, tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    output = tmp_path / "cli.mp4"
    cli = subprocess.Popen(  # meanwhile: the same job in one process
        [sys.executable, "-m", "ltx2", "generate", "--model", str(tiny_model), "--prompt", "a cat", "--preset",
         "one-stage", "--width", "64", "--height", "64", "--num-frames", "9", "--steps", "2", "--seed", "5",
         "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    # Ulysses: every transformer block waits for both ranks (the other test shares guidance passes).
    server = start_server(tiny_model, tmp_path / "data", "--parallel", "ulysses=2,guidance=1", "--rank-timeout", "5",
                          ranks=2, env={"PYTHONPATH": f"{hook}{os.pathsep}{PYTHON_PATH}"})
    try:
        client = server.client()
        job = {"prompt": "a cat", "size": SIZE, "extra_body": {**SMALL, "seed": 5}}
        before = client.videos.create(**job)
        failing = client.videos.create(prompt=FAILING_PROMPT, size=SIZE, extra_body=SMALL)
        start = time.monotonic()
        after = client.videos.create(**job)
        before = decode(client.videos.download_content(wait_for(client, before.id, "completed").id).read())
        failed = wait_for(client, failing.id, "failed", timeout=30)
        assert time.monotonic() - start < 30  # within the rank timeout, not torch.distributed's 30 minutes
        message = failed.error.message
        assert failed.error.code == "generation_failed"
        assert message.startswith("RuntimeError: rank 1: RuntimeError: injected failure on rank 1"), message
        after = decode(client.videos.download_content(wait_for(client, after.id, "completed").id).read())
        for ours, theirs in zip(after, before):
            np.testing.assert_array_equal(ours, theirs)
        assert get_json(f"{server.url}health")[1]["status"] == "ok"
    finally:
        server.stop()
    _, errors = cli.communicate(timeout=240)
    assert cli.returncode == 0, errors
    alone = decode(output.read_bytes())[0].astype(float)
    error = ((after[0] - alone) ** 2).mean()  # a shared run matches one process as `ltx2 generate`'s does
    assert error == 0 or 10 * np.log10(255**2 / error) >= 40


def test_a_killed_rank_fails_the_job_and_the_server_goes_on_answering(tiny_model, tmp_path):
    # Launched without torchrun, whose agent stops every rank as soon as one dies.
    server = start_server(tiny_model, tmp_path / "data", "--parallel", "--rank-timeout", "5", ranks=2,
                          torchrun=False)
    try:
        client = server.client()
        running = client.videos.create(prompt="a long one", size=SIZE, extra_body=LONG)
        wait_for(client, running.id, "in_progress", progress=1)
        server.followers[0].kill()
        start = time.monotonic()
        failed = wait_for(client, running.id, "failed", timeout=30)
        assert time.monotonic() - start < 30
        lost = "rank 1 did not finish a job within 10 s of rank 0"
        assert lost in failed.error.message, failed.error
        status, health = get_json(f"{server.url}health")
        assert status == 503 and health["status"] == "degraded" and lost in health["reason"]
        later = client.videos.create(prompt="a cat", size=SIZE, extra_body=SMALL)
        assert lost in wait_for(client, later.id, "failed", timeout=10).error.message
    finally:
        assert server.stop() == 0, server.log.read_text()
