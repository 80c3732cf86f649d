"""Files that appear whole: written under a temporary name beside their target, then renamed over it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def plain_mode() -> int:
    """The permissions open() gives a new file: 0666 less the process's umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def give_plain_modes(folder: Path) -> None:
    """Set every file under `folder` to `plain_mode()`: for writers (transformers' safetensors) that leave 0600."""
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, plain_mode())


def atomic_write(path: Path, write: Callable[[str], object], suffix: str = ".tmp") -> None:
    """Call `write(temporary_name)`, then rename the file to `path`; on any failure (Ctrl-C included) the temporary
    file is removed and `path` is left as it was. The file gets the permissions of a plain `open()` (0666 less the
    umask), not mkstemp's 0600. `suffix` ends the temporary name (writers that pick a format from it need one)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, plain_mode())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """`text` as UTF-8 at `path`, whole or not at all."""
    atomic_write(path, lambda name: Path(name).write_text(text, encoding="utf-8"))
