"""Running the `ltx2` command as a user runs it: in a subprocess, offline, importing the sources under test (the
ones pytest put first on the path, a worktree's own rather than an installed copy)."""

import os
import subprocess
import sys
from pathlib import Path

import ltx2

SOURCES = str(Path(ltx2.__file__).resolve().parents[1])
INHERITED = [os.path.abspath(path) for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([SOURCES, *INHERITED]), "HF_HUB_OFFLINE": "1",
       "PYTHONUNBUFFERED": "1"}


def ltx2_command(*arguments, cwd=None, timeout=240, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ltx2.cli", *map(str, arguments)], capture_output=True, text=True,
                          env=env or ENV, cwd=cwd, timeout=timeout)
