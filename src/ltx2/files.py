"""Files that appear whole: written under a temporary name beside their target, then renamed over it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[str], object], suffix: str = ".tmp") -> None:
    """Call `write(temporary_name)`, then rename the file to `path`; on any failure (Ctrl-C included) the temporary
    file is removed and `path` is left as it was. The file gets the permissions of a plain `open()` (0666 less the
    umask), not mkstemp's 0600. `suffix` ends the temporary name (writers that pick a format from it need one)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """`text` as UTF-8 at `path`, whole or not at all."""
    atomic_write(path, lambda name: Path(name).write_text(text, encoding="utf-8"))
