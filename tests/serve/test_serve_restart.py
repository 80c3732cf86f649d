"""`ltx2 serve` killed (SIGKILL) while a job runs and others wait, then started again on the same data dir: nothing
is lost and nothing half-written is served. Also bearer-token auth."""

import signal

import pytest
from conftest import QUIET, SIZE, SMALL, get_json, openai, start_server, wait_for

KEY = "test-key"

pytestmark = QUIET


def test_restart_after_sigkill_loses_nothing(tiny_model, tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(tiny_model, data_dir, "--api-key", KEY)
    try:
        assert "bearer-token auth on" in server.line
        with pytest.raises(openai.AuthenticationError):
            server.client(api_key="wrong").videos.list()
        assert get_json(f"{server.url}health")[0] == 200
        assert get_json(f"{server.url}v1/videos") == (401, {"error": {
            "message": "missing or wrong API key: send 'Authorization: Bearer <key>'", "type": "invalid_request_error",
            "param": None, "code": "invalid_api_key"}})
        client = server.client(api_key=KEY)
        done = wait_for(client, client.videos.create(prompt="done", size=SIZE, extra_body=SMALL).id, "completed")
        content = client.videos.download_content(done.id).read()
        interrupted = client.videos.create(prompt="interrupted", size=SIZE,
                                           extra_body={**SMALL, "num_inference_steps": 20})
        waiting = [client.videos.create(prompt="waiting", size=SIZE, extra_body=SMALL).id]
        wait_for(client, interrupted.id, "in_progress", progress=10)
    finally:
        server.stop(signal.SIGKILL)
    for video_id in (interrupted.id, *waiting):
        assert not (data_dir / "videos" / video_id / "video.mp4").exists()

    server = start_server(tiny_model, data_dir, "--api-key", KEY)
    try:
        assert "1 interrupted job(s) queued again" in server.line
        client = server.client(api_key=KEY)
        assert client.videos.retrieve(done.id).status == "completed"
        assert client.videos.download_content(done.id).read() == content
        statuses = {video.id: video.status for video in client.videos.list()}
        assert statuses[interrupted.id] in ("queued", "in_progress")
        for video_id in (interrupted.id, *waiting):
            assert wait_for(client, video_id, "completed").progress == 100
            assert client.videos.download_content(video_id).read()[4:8] == b"ftyp"
    finally:
        assert server.stop() == 0
