"""The base class of every ltx2 network: config recording, from_pretrained and save_pretrained."""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import CheckpointError, fill_from, iter_meta_tensors, open_weights, save_weights, write_text_atomic
from .config import Configurable, read_config
from .hub import resolve_folder


class PretrainedModel(torch.nn.Module, Configurable):
    """A network loadable from (and savable to) a diffusers-layout folder: config.json plus safetensors."""

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters())

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
        config = read_config(folder / cls.config_name)
        with torch.device("meta"):
            model = cls.from_config(config)
        with open_weights(folder) as source:
            fill_from(model, source, torch_dtype or torch.float32, device)
        leftover = list(iter_meta_tensors(model))
        if leftover:
            raise CheckpointError(f"{folder}: tensors left without weights: {', '.join(leftover[:5])}")
        return model.eval()

    def save_pretrained(self, save_directory: str | Path, max_shard_size: int | str = "5GB") -> None:
        """Write config.json and the weights (sharded above `max_shard_size`) in the diffusers layout."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        save_weights(self.state_dict(), folder, max_shard_size)
        write_text_atomic(folder / self.config_name, self.config_json())
