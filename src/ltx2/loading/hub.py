"""Turning a local folder or a Hugging Face Hub repo id into a local folder."""

from __future__ import annotations

from pathlib import Path


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
    repo_id = str(path_or_repo_id)
    if repo_id.count("/") != 1 or repo_id.startswith((".", "/")):
        raise FileNotFoundError(f"{repo_id}: no such folder, and not a Hub repo id of the form 'owner/name'")
    from huggingface_hub import snapshot_download

    patterns = [f"{subfolder}/*"] if subfolder else None
    root = Path(snapshot_download(repo_id, allow_patterns=patterns))
    return root / subfolder if subfolder else root
