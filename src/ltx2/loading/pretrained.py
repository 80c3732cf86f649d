"""The base class of every ltx2 network: config recording, from_pretrained and save_pretrained."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from .checkpoint import (
    CheckpointError,
    Layout,
    check_layout,
    fill_from,
    iter_meta_tensors,
    open_weights,
    save_weights,
    write_text_atomic,
)
from .config import Configurable, naming_config_errors, read_config
from .hub import resolve_folder
from .single_file import component_config, open_single_file


class PretrainedModel(torch.nn.Module, Configurable):
    """A network loadable from (and savable to) a diffusers-layout folder: config.json plus safetensors."""

    # Which part of Lightricks' original single-file checkpoints holds this network (see loading/key_map.py).
    single_file_component: ClassVar[str]

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters())

    @classmethod
    def config_layout(cls, config: dict[str, Any]) -> Layout:
        """The repeated-block counts and a few shapes that `config` (all constructor arguments) implies, checked
        against a checkpoint's header before the model is built. Networks with repeated blocks declare theirs."""
        return Layout(blocks={}, shapes={})

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo_id: str | Path,
        subfolder: str | None = None,
        torch_dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ):
        """Load from a folder with config.json and diffusion_pytorch_model(.safetensors | shards + index).

        The model is built on the meta device and filled tensor by tensor from the memory-mapped files, so
        no second copy of the weights is made. Floating-point weights are cast to `torch_dtype`
        (float32 when None, as diffusers does). Keys and shapes must match exactly.
        """
        folder = resolve_folder(path_or_repo_id, subfolder)
        config_path = folder / cls.config_name
        with open_weights(folder) as source:
            return cls._build_and_fill(read_config(config_path), str(config_path), source, torch_dtype, device)

    @classmethod
    def from_single_file(
        cls,
        path_or_url: str | Path,
        torch_dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        **download_options: Any,
    ):
        """Load from one of Lightricks' original checkpoints (`ltx-2-19b-dev.safetensors`, fp8 variants, ...).

        `path_or_url` is a local file, `owner/repo/file.safetensors` or a Hub URL; the config comes from the
        file's header and the keys through ltx2's key map. FP8 weights are upcast to `torch_dtype`.
        """
        with open_single_file(path_or_url, **download_options) as source:
            return cls.from_single_file_source(source, torch_dtype, device)

    @classmethod
    def from_single_file_source(cls, source, torch_dtype: torch.dtype | None, device: torch.device | str | None):
        """`from_single_file` on an already opened checkpoint (a pipeline reads all its networks from one)."""
        config, mapped = component_config(source, cls.single_file_component)
        return cls._build_and_fill(config, f"{source.description} (header config)", mapped, torch_dtype, device)

    @classmethod
    def _build_and_fill(cls, config: dict[str, Any], origin: str, source, torch_dtype, device):
        """Check the config (keys, types, then against the weights' header), build on meta, fill, check."""
        with naming_config_errors(origin):
            arguments = cls.resolve_config(config)
        check_layout(cls.config_layout(arguments), source, origin)
        with torch.device("meta"), naming_config_errors(origin):
            model = cls(**arguments)
        fill_from(model, source, torch_dtype or torch.float32, device)
        leftover = list(iter_meta_tensors(model))
        if leftover:
            raise CheckpointError(f"{source.description}: tensors left without weights: {', '.join(leftover[:5])}")
        return model.eval()

    def save_pretrained(self, save_directory: str | Path, max_shard_size: int | str = "5GB") -> None:
        """Write config.json and the weights (sharded above `max_shard_size`) in the diffusers layout."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        save_weights(self.state_dict(), folder, max_shard_size)
        write_text_atomic(folder / self.config_name, self.config_json())
