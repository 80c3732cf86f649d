"""Turning a local path or a Hugging Face Hub repo id into a local folder or file."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _repo_id(path_or_repo_id: str | Path) -> str:
    """`path_or_repo_id` as a Hub repo id, once it is known not to be a local path."""
    repo_id = str(path_or_repo_id)
    if repo_id.count("/") != 1 or repo_id.startswith((".", "/")):
        raise FileNotFoundError(f"{repo_id}: no such folder, and not a Hub repo id of the form 'owner/name'")
    return repo_id


def resolve_folder(path_or_repo_id: str | Path, subfolder: str | None = None) -> Path:
    """The local folder holding a model: `path_or_repo_id` itself when it is a directory, else a Hub download.

    From the Hub only `subfolder` is fetched (or the whole repo when it is None); cached files are reused.
    """
    local = Path(path_or_repo_id)
    if local.is_dir():
        folder = local / subfolder if subfolder else local
        if not folder.is_dir():
            raise FileNotFoundError(f"{local}: has no subfolder {subfolder!r}")
        return folder
    repo_id = _repo_id(path_or_repo_id)
    from huggingface_hub import snapshot_download

    patterns = [f"{subfolder}/*"] if subfolder else None
    root = Path(snapshot_download(repo_id, allow_patterns=patterns))
    return root / subfolder if subfolder else root


def resolve_file(
    path_or_repo_id: str | Path, filename: str, subfolder: str | None = None, **download_options: Any
) -> Path:
    """The local path of `filename` inside a local folder, or inside a Hub repo (downloaded with hf_hub_download).

    `download_options` (revision, cache_dir, token, local_files_only, force_download, proxies) go to the Hub.
    """
    local = Path(path_or_repo_id)
    if local.is_dir():
        path = local / subfolder / filename if subfolder else local / filename
        if not path.is_file():
            raise FileNotFoundError(f"{local}: has no file {path.relative_to(local)}")
        return path
    repo_id = _repo_id(path_or_repo_id)
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id, filename, subfolder=subfolder, **download_options))
