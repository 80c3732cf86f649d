"""The Videos API of `ltx2 serve` with the official openai client: create, poll, download (the CLI's frames), image
to video, paging, delete, extend, remix, previews, bad input, and a bounded load on loopback."""

import io
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import ENV, LONG, QUIET, SIZE, SMALL, decode, get_json, openai, wait_for
from PIL import Image

pytestmark = QUIET


@pytest.fixture(scope="module")
def finished(server):
    """A completed small video (seed 11) and its MP4 bytes."""
    client = server.client()
    video = client.videos.create(prompt="a robot dancing in the rain", size=SIZE, seconds="4",
                                 extra_body={**SMALL, "seed": 11})
    assert (video.object, video.status, video.progress, video.size) == ("video", "queued", 0, SIZE)
    assert video.model == "ltx-2.0" and video.prompt == "a robot dancing in the rain" and video.seconds == "0.375"
    video = wait_for(client, video.id, "completed")
    return video, client.videos.download_content(video.id).read()


def test_create_poll_download_equals_ltx2_generate(server, tiny_model, finished, tmp_path):
    video, data = finished
    assert video.progress == 100 and video.completed_at >= video.created_at and video.error is None
    frames, audio, rate = decode(data)
    assert frames.shape == (9, 64, 64, 3) and rate == 24 and audio.shape[0] == 2 and audio.shape[1] > 0
    output = tmp_path / "cli.mp4"
    result = subprocess.run(
        [sys.executable, "-m", "ltx2", "generate", "--model", str(tiny_model), "--prompt",
         "a robot dancing in the rain", "--preset", "one-stage", "--width", "64", "--height", "64", "--num-frames",
         "9", "--steps", "2", "--seed", "11", "--output", str(output)],
        capture_output=True, text=True, env=ENV, timeout=240)
    assert result.returncode == 0, result.stderr
    cli_frames, cli_audio, _ = decode(output.read_bytes())
    np.testing.assert_array_equal(frames, cli_frames)
    np.testing.assert_array_equal(audio, cli_audio)


def test_jobs_leave_the_loaded_model_as_they_found_it(server, tiny_model, finished, tmp_path):
    """Two-stage jobs (the first loads the distilled LoRA beside the model, the second finds it loaded; both switch
    it on for stage 2 only) give the frames of `ltx2 generate`'s two-stage run, and a one-stage job after them gives
    the first video's frames again."""
    output = tmp_path / "cli.mp4"
    cli = subprocess.Popen(  # meanwhile
        [sys.executable, "-m", "ltx2", "generate", "--model", str(tiny_model), "--prompt",
         "a robot dancing in the rain", "--preset", "two-stage", "--width", "128", "--height", "128", "--num-frames",
         "9", "--steps", "2", "--seed", "11", "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    client = server.client()
    two_stage = {"prompt": "a robot dancing in the rain", "size": "128x128",
                 "extra_body": {**SMALL, "seed": 11, "preset": "two-stage"}}
    jobs = [client.videos.create(**two_stage).id for _ in range(2)]
    again = client.videos.create(prompt="a robot dancing in the rain", size=SIZE, extra_body={**SMALL, "seed": 11})
    first, second, again = (decode(client.videos.download_content(wait_for(client, job, "completed").id).read())
                            for job in (*jobs, again.id))
    assert first[0].shape == (9, 128, 128, 3)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(again[0], decode(finished[1])[0])
    _, errors = cli.communicate(timeout=240)
    assert cli.returncode == 0 and "runs without it" not in errors, errors
    np.testing.assert_array_equal(second[0], decode(output.read_bytes())[0])


def test_thumbnail_and_spritesheet(server, finished):
    client = server.client()
    video, data = finished
    thumbnail = Image.open(io.BytesIO(client.videos.download_content(video.id, variant="thumbnail").read()))
    assert thumbnail.size == (64, 64)
    sheet = Image.open(io.BytesIO(client.videos.download_content(video.id, variant="spritesheet").read()))
    assert sheet.size == (4 * 160, 3 * 160)  # 9 frames, 4 a row, 160 pixels wide each
    first = decode(data)[0][0].astype(int)
    # Frame 0 (noise, from a tiny model) as JPEG, against its H.264 decode: close, not equal.
    assert np.abs(np.asarray(thumbnail.convert("RGB"), dtype=int) - first).mean() < 25


def png(color: tuple[int, int, int]) -> bytes:
    picture = io.BytesIO()
    Image.new("RGB", (96, 80), color).save(picture, format="PNG")
    return picture.getvalue()


def test_image_to_video_through_input_reference(server):
    """The uploaded image conditions the video (the tiny model's random VAE does not show it: another image gives
    other frames), and a remix keeps it (the same frames)."""
    client = server.client()
    videos = [client.videos.create(prompt="a cat", size=SIZE, input_reference=(f"{index}.png", png(color),
                                                                                "image/png"),
                                   extra_body={**SMALL, "seed": 5})
              for index, color in enumerate([(200, 30, 30), (30, 30, 200)])]
    red, blue = (wait_for(client, video.id, "completed") for video in videos)
    remix = wait_for(client, client.videos.remix(red.id, prompt="a cat").id, "completed")
    red, blue, remix = (decode(client.videos.download_content(video.id).read())[0] for video in (red, blue, remix))
    assert red.shape == (9, 64, 64, 3)
    assert np.abs(red.astype(int) - blue).mean() > 1
    np.testing.assert_array_equal(red, remix)


def test_extend_and_remix(server, finished):
    client = server.client()
    source, data = finished
    remix = client.videos.remix(source.id, prompt="a robot dancing in the snow")
    assert remix.remixed_from_video_id == source.id and remix.size == source.size
    # The client cannot send `video` as an id in a form (it takes it for a file): the id goes as an extra field.
    extension = client.videos.extend(video=openai.omit, prompt="the robot bows", seconds="0.3",
                                     extra_body={"video": {"id": source.id}})
    assert extension.seconds == "0.708"  # the source's 9 frames and 8 new ones (one latent frame), at 24 fps
    remix = wait_for(client, remix.id, "completed")
    assert remix.seed == source.seed and remix.prompt == "a robot dancing in the snow"
    assert decode(client.videos.download_content(remix.id).read())[0].shape == (9, 64, 64, 3)
    wait_for(client, extension.id, "completed")
    frames, audio, _ = decode(client.videos.download_content(extension.id).read())
    source_frames, source_audio, _ = decode(data)
    assert frames.shape == (9 + 8, 64, 64, 3)
    # The source (noise, re-encoded once more: close, not equal), then the new frames.
    assert np.abs(frames[:9].astype(int) - source_frames).mean() < 15
    assert audio.shape[1] > 1.5 * source_audio.shape[1]


def test_list_pages_and_delete_of_queued_jobs(server):
    client = server.client()
    blocker = client.videos.create(prompt="a long one", size=SIZE, extra_body=LONG)
    queued = [client.videos.create(prompt=f"queued {index}", size=SIZE, extra_body=SMALL).id for index in range(3)]
    listed = [video.id for video in client.videos.list(limit=1, order="asc")]  # the client follows the cursor
    assert listed[-4:] == [blocker.id, *queued]
    page = client.videos.list(limit=2)
    assert [video.id for video in page.data] == queued[:0:-1] and page.has_more
    assert [video.id for video in client.videos.list(limit=2, after=queued[1]).data] == [queued[0], blocker.id]
    for video_id in queued:
        assert client.videos.retrieve(video_id).status == "queued"
        deleted = client.videos.delete(video_id)
        assert (deleted.id, deleted.deleted, deleted.object) == (video_id, True, "video.deleted")
        with pytest.raises(openai.NotFoundError):
            client.videos.retrieve(video_id)
        assert not (server.data_dir / "videos" / video_id).exists()
    client.videos.delete(blocker.id)


def test_delete_of_a_running_job_stops_it_and_the_queue_goes_on(server):
    client = server.client()
    running = client.videos.create(prompt="a long one", size=SIZE, extra_body=LONG)
    following = client.videos.create(prompt="next", size=SIZE, extra_body=SMALL)
    progress = wait_for(client, running.id, "in_progress", progress=1).progress
    assert progress < 100
    with pytest.raises(openai.ConflictError):
        client.videos.download_content(running.id)  # nothing is served before it is complete
    client.videos.delete(running.id)
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(running.id)
    wait_for(client, following.id, "completed", timeout=60)  # the worker stopped at the next step
    assert not (server.data_dir / "videos" / running.id).exists()


BAD_REQUESTS = [
    ({"size": "100x64"}, "size", "multiple of 32"),
    ({"size": "big"}, "size", "WIDTHxHEIGHT"),
    ({"num_frames": 10}, "num_frames", "8k+1"),
    ({"num_frames": 100001}, "num_frames", "at most 481"),
    ({"num_frames": "many"}, "num_frames", "integer"),
    ({"preset": "fastest"}, "preset", "must be one of"),
    ({"seconds": "-4"}, "seconds", "positive"),
    ({"num_inference_steps": 0}, "num_inference_steps", "at least 1"),
    ({"guidance_scale": "nan"}, "guidance_scale", "finite"),
    ({"model": "sora-2"}, "model", "serves 'ltx-2.0'"),
    ({"prompt": " "}, "prompt", "non-empty"),
]


def test_bad_requests_are_refused_and_other_jobs_go_on(server):
    client = server.client()
    witness = client.videos.create(prompt="a witness", size=SIZE, extra_body=SMALL)
    before = [video.id for video in client.videos.list(limit=100)]
    for fields, param, words in BAD_REQUESTS:
        with pytest.raises(openai.BadRequestError) as refused:
            client.videos.create(prompt=fields.pop("prompt", "a cat"), extra_body={**SMALL, "size": SIZE, **fields})
        error = refused.value.body
        assert error["param"] == param and words in error["message"], (fields, error)
        assert error["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.create(prompt="a cat", size=SIZE, input_reference=("x.png", b"not a picture", "image/png"))
    assert refused.value.body["param"] == "input_reference"
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve("video_0123456789abcdef01234567")
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content("../../etc/passwd")
    with pytest.raises(openai.BadRequestError):
        client.videos.download_content(witness.id, variant="poster")
    assert too_large_body(server.url) == 400
    assert [video.id for video in client.videos.list(limit=100)] == before
    wait_for(client, witness.id, "completed")


def too_large_body(url: str) -> int:
    """The status of a create request announcing a 1 GB body (none of which is sent)."""
    host, port = url.split("//")[1].strip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(b"POST /v1/videos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 1000000000\r\n\r\n")
        return int(connection.recv(4096).split()[1])


def test_bounded_load_on_loopback(server):
    """50 creates from 8 threads while a job runs (the queue holds 6): each is answered, queued or refused with
    429, and every queued one is listed."""
    assert server.url.startswith("http://127.0.0.1:")
    client = server.client()
    running = client.videos.create(prompt="a long one", size=SIZE, extra_body=LONG)
    wait_for(client, running.id, "in_progress")
    room = 6 - get_json(f"{server.url}health")[1]["queued"]
    answers, lock = [], threading.Lock()

    def create(index: int) -> None:
        try:
            answer = client.videos.create(prompt=f"load {index}", size=SIZE, extra_body=SMALL).id
        except openai.RateLimitError as error:
            answer = error.status_code
        with lock:
            answers.append(answer)

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(50)))
    assert time.perf_counter() - start < 60
    created = [answer for answer in answers if isinstance(answer, str)]
    assert len(answers) == 50 and answers.count(429) == 50 - len(created) and len(created) == room
    listed = {video.id for video in client.videos.list(limit=100)}
    assert set(created) <= listed
    assert get_json(f"{server.url}health")[1]["queued"] == len(created)
    for video_id in [*created, running.id]:
        client.videos.delete(video_id)


def test_models_and_health(server):
    client = server.client()
    (model,) = client.models.list().data
    assert model.id == "ltx-2.0" and model.version == "2.0" and model.preset == "one-stage"
    assert (model.dtype, model.device) == ("fp32", "cpu")
    assert get_json(f"{server.url}health")[1]["status"] == "ok"
    assert "127.0.0.1" in server.line and "loopback only" in server.line
