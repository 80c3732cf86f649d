"""Turning a local path or a Hugging Face Hub repo id into a local folder or file.

Downloads go through huggingface_hub's cache and fetch only the files asked for (the Lightricks/LTX-2
repo also holds ~40 GB single-file checkpoints that a diffusers-layout load never needs). With
HF_HUB_OFFLINE set, nothing is requested from the network: what is cached is used, and what is not
is named in the error at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Weight formats ltx2 never reads; a folder may hold them beside the safetensors files.
IGNORED_PATTERNS = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.msgpack", "*.h5", "*.onnx", "*.gguf"]


def _repo_id(path_or_repo_id: str | Path) -> str:
    """`path_or_repo_id` as a Hub repo id, once it is known not to be a local path."""
    repo_id = str(path_or_repo_id)
    if repo_id.count("/") != 1 or repo_id.startswith((".", "/")):
        raise FileNotFoundError(f"{repo_id}: no such folder, and not a Hub repo id of the form 'owner/name'")
    return repo_id


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE is set now (huggingface_hub itself reads it only when first imported)."""
    value = os.environ.get("HF_HUB_OFFLINE")
    if value is None:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def offline_error(repo_id: str, missing: list[str]) -> FileNotFoundError:
    return FileNotFoundError(
        f"{repo_id}: HF_HUB_OFFLINE is set and the local Hugging Face cache lacks {', '.join(missing)}; "
        "download them once with the network on, or pass a local folder"
    )


def download(repo_id: str, patterns: list[str], required: list[str] | None = None, **options: Any) -> Path:
    """The local snapshot of `repo_id` holding the files matching `patterns` (downloaded unless cached).

    Offline, every pattern in `required` (default: all) must match a cached file, else FileNotFoundError
    names the ones that do not.
    """
    from huggingface_hub import snapshot_download

    offline = hub_offline() or bool(options.pop("local_files_only", False))
    required = patterns if required is None else required
    try:
        root = Path(snapshot_download(repo_id, allow_patterns=patterns, ignore_patterns=IGNORED_PATTERNS,
                                      local_files_only=offline, **options))
    except Exception as error:
        if offline:
            raise offline_error(repo_id, required) from None
        raise OSError(f"{repo_id}: download of {', '.join(patterns)} failed ({error})") from error
    missing = [pattern for pattern in required if not any(root.glob(pattern))]
    if missing:
        if offline:
            raise offline_error(repo_id, missing)
        raise FileNotFoundError(f"{repo_id}: the repo has no {', '.join(missing)}")
    return root


def resolve_folder(path_or_repo_id: str | Path, subfolder: str | None = None, **options: Any) -> Path:
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
    root = download(repo_id, [f"{subfolder}/*" if subfolder else "*"], **options)
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

    offline = hub_offline() or bool(download_options.pop("local_files_only", False))
    try:
        return Path(hf_hub_download(repo_id, filename, subfolder=subfolder, local_files_only=offline,
                                    **download_options))
    except Exception as error:
        name = f"{subfolder}/{filename}" if subfolder else filename
        if offline:
            raise offline_error(repo_id, [name]) from None
        raise OSError(f"{repo_id}: download of {name} failed ({error})") from error
