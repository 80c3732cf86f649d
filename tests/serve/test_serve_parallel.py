"""`torchrun -m ltx2 serve --parallel` on CPU (gloo, 2 ranks): rank 0 serves, every job runs on both ranks, and a
delete stops both at the same step while the queue goes on."""

import signal

from conftest import LONG, QUIET, SIZE, SMALL, start_server, wait_for

pytestmark = QUIET


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
        server.stop(signal.SIGKILL)
