"""Running the `ltx2` command as a user runs it: in a subprocess, offline, importing the sources under test (the
ones pytest put first on the path, a worktree's own rather than an installed copy)."""

import os
import subprocess
import sys
from pathlib import Path

import av

import ltx2

SOURCES = str(Path(ltx2.__file__).resolve().parents[1])
INHERITED = [os.path.abspath(path) for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([SOURCES, *INHERITED]), "HF_HUB_OFFLINE": "1",
       "PYTHONUNBUFFERED": "1"}


def ltx2_command(*arguments, cwd=None, timeout=240, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ltx2.cli", *map(str, arguments)], capture_output=True, text=True,
                          env=env or ENV, cwd=cwd, timeout=timeout)


def streams(path):
    """(width, height, frames, seconds, audio stream, audio channels) of an MP4 the command wrote."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        frames = sum(1 for _ in container.decode(video=0))
        return video.width, video.height, frames, float(video.duration * video.time_base), audio, audio.channels
