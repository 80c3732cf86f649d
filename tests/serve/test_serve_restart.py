"""`ltx2 serve` killed (SIGKILL) while a job runs and others wait, then started again on the same data dir: nothing
is lost and nothing half-written is served. Also bearer-token auth."""

import json
import signal
import sqlite3

import pytest
from conftest import QUIET, get_json, SIZE, SMALL, openai, start_server, wait_for

from ltx2.serve.store import Store

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
                                           extra_body={**SMALL, "num_inference_steps": 8})
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


def test_recovery_requeues_once_then_fails_and_drops_partial_files(tmp_path):
    store = Store(tmp_path)
    settings = {"prompt": "a cat"}
    ids = []
    for _ in range(3):
        job_id, folder = store.new_folder()
        store.add(job_id, settings, max_queue=10)
        ids.append(job_id)
    first = store.start_next()
    (store.folder(first.id) / ".video.abc.partial.mp4").write_bytes(b"half")
    orphan = store.videos / "video_000000000000000000000000"
    orphan.mkdir()
    assert store.recover() == [first.id]  # died once: queued again, its partial file gone
    assert store.get(first.id).status == "queued" and not any(store.folder(first.id).iterdir())
    assert not orphan.exists()
    assert store.start_next().id == first.id and store.get(first.id).attempts == 2
    assert store.recover() == []  # died again: failed, with the reason
    failed = store.get(first.id)
    assert failed.status == "failed" and failed.error["code"] == "interrupted"
    assert [store.get(job_id).status for job_id in ids[1:]] == ["queued", "queued"]
    store.close()
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as database:
        (row,) = database.execute("SELECT settings FROM videos WHERE id = ?", (ids[1],)).fetchall()
    assert json.loads(row[0]) == settings
