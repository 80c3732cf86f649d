"""The base class of every ltx2 network: config recording, from_pretrained and save_pretrained, and the
memory and speed controls (FP8 storage, group offloading, attention backends, regional compile)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..files import write_text_atomic
from ..transforms import attention, fp8, group_offload, regional_compile
from ..versions import VERSIONS
from .checkpoint import (
    CheckpointError,
    Layout,
    check_layout,
    fill_from,
    iter_meta_tensors,
    open_weights,
    save_weights,
)
from .config import Configurable, naming_config_errors, read_config
from .hub import resolve_folder
from .single_file import component_config, open_single_file


class PretrainedModel(torch.nn.Module, Configurable):
    """A network loadable from (and savable to) a diffusers-layout folder: config.json plus safetensors."""

    # Which part of Lightricks' original single-file checkpoints holds this network (see loading/key_map.py), and
    # the LTX versions whose files hold it there.
    single_file_component: ClassVar[str]
    single_file_versions: ClassVar[tuple[str, ...]] = VERSIONS
    # Class names of the blocks `compile_repeated_blocks` compiles, and extra layerwise-casting skip patterns
    # (diffusers' attributes of the same names).
    _repeated_blocks: ClassVar[tuple[str, ...]] = ()
    _skip_layerwise_casting_patterns: ClassVar[tuple[str, ...]] = ()

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the network computes in: the compute dtype under layerwise casting, else its weights'."""
        return fp8.compute_dtype(self) or next(self.parameters()).dtype

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
        keep_fp8: bool = False,
    ):
        """Load from a folder with config.json and diffusion_pytorch_model(.safetensors | shards + index).

        The model is built on the meta device and filled tensor by tensor from the memory-mapped files, so
        no second copy of the weights is made. Floating-point weights are cast to `torch_dtype`
        (float32 when None, as diffusers does). Keys and shapes must match exactly. With `keep_fp8`, FP8
        weights of Linear and convolution layers stay FP8 and those layers compute in `torch_dtype`.
        """
        folder = resolve_folder(path_or_repo_id, subfolder)
        config_path = folder / cls.config_name
        with open_weights(folder) as source:
            config = read_config(config_path)
            model = cls._build_and_fill(config, str(config_path), source, torch_dtype, device, keep_fp8)
            if keep_fp8:
                warn_without_fp8([model], source.description)
        return model

    @classmethod
    def from_single_file(
        cls,
        path_or_url: str | Path,
        torch_dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        keep_fp8: bool = False,
        **download_options: Any,
    ):
        """Load from one of Lightricks' original checkpoints (`ltx-2-19b-dev.safetensors`,
        `ltx-2.3-22b-distilled-1.1.safetensors`, fp8 variants, an upsampler's file, ...).

        `path_or_url` is a local file, `owner/repo/file.safetensors` or a Hub URL; the config comes from the
        file's header and the keys through ltx2's key map. FP8 weights are upcast to `torch_dtype`, or with
        `keep_fp8` stay FP8 (half the memory of bf16): their layers apply the file's `weight_scale` and
        compute in `torch_dtype` (see ltx2.transforms.fp8).
        """
        with open_single_file(path_or_url, **download_options) as source:
            model = cls.from_single_file_source(source, torch_dtype, device, keep_fp8)
            if keep_fp8:
                warn_without_fp8([model], source.description)
        return model

    @classmethod
    def from_single_file_source(
        cls,
        source,
        torch_dtype: torch.dtype | None,
        device: torch.device | str | None,
        keep_fp8: bool = False,
        text_width: int | None = None,
    ):
        """`from_single_file` on an already opened checkpoint (a pipeline reads all its networks from one, and
        knows its text encoder's `text_width`, which sizes the connectors where the file does not)."""
        config, mapped = component_config(
            source, cls.single_file_component, cls.__name__, cls.single_file_versions, text_width
        )
        return cls._build_and_fill(
            config, f"{source.description} (header config)", mapped, torch_dtype, device, keep_fp8
        )

    @classmethod
    def _build_and_fill(
        cls, config: dict[str, Any], origin: str, source, torch_dtype, device, keep_fp8: bool = False
    ):
        """Check the config (keys, types, then against the weights' header), build on meta, fill, check."""
        compute_dtype = torch_dtype or torch.float32
        if keep_fp8:
            fp8.check_dtypes(torch.float8_e4m3fn, compute_dtype)
        with naming_config_errors(origin):
            arguments = cls.resolve_config(config)
        check_layout(cls.config_layout(arguments), source, origin)
        with torch.device("meta"), naming_config_errors(origin):
            model = cls(**arguments)
        kept = fp8.stored_float8_weights(model, source) if keep_fp8 else []
        fill_from(model, source, compute_dtype, device, skip=set(kept))
        for key in kept:
            fp8.keep_stored_weight(model, key, source, compute_dtype, device)
        leftover = list(iter_meta_tensors(model))
        if leftover:
            raise CheckpointError(f"{source.description}: tensors left without weights: {', '.join(leftover[:5])}")
        return model.eval()

    def save_pretrained(self, save_directory: str | Path, max_shard_size: int | str = "5GB") -> None:
        """Write config.json and the weights (sharded above `max_shard_size`) in the diffusers layout."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        save_weights(fp8.portable_state_dict(self), folder, max_shard_size)
        write_text_atomic(folder / self.config_name, self.config_json())

    # -- memory and speed (transforms applied to the built model; see ltx2.transforms) ----------------------

    def enable_layerwise_casting(
        self,
        storage_dtype: torch.dtype = torch.float8_e4m3fn,
        compute_dtype: torch.dtype | None = None,
        skip_modules_pattern: tuple[str, ...] | None = None,
        skip_modules_classes: tuple[type[torch.nn.Module], ...] | None = None,
        non_blocking: bool = False,
    ) -> None:
        """Store weights in `storage_dtype` (FP8: half of bf16) and compute each layer in `compute_dtype`
        (default: the model's dtype), as diffusers does: norms, embeddings, `proj_in`/`proj_out` and the
        patterns of `_skip_layerwise_casting_patterns` keep their dtype (`skip_modules_pattern` replaces the
        defaults, not the class's patterns). `non_blocking` is accepted for diffusers' API: casts happen on
        the weights' own device.
        """
        patterns = fp8.DEFAULT_SKIP_MODULES_PATTERN if skip_modules_pattern is None else tuple(skip_modules_pattern)
        patterns = tuple(dict.fromkeys((*patterns, *self._skip_layerwise_casting_patterns)))
        fp8.apply_layerwise_casting(
            self, storage_dtype, compute_dtype or self.dtype, patterns, skip_modules_classes
        )

    def enable_group_offload(
        self,
        onload_device: torch.device | str,
        offload_device: torch.device | str = "cpu",
        offload_type: str = "block_level",
        num_blocks_per_group: int | None = None,
        non_blocking: bool = False,
        use_stream: bool = True,
        record_stream: bool = False,
        low_cpu_mem_usage: bool = False,
        offload_to_disk_path: str | Path | None = None,
    ) -> None:
        """Keep the weights on `offload_device` (pinned) or in files under `offload_to_disk_path`, and copy
        each group of layers to `onload_device` just before it runs, the next group on a side CUDA stream
        while one computes (see ltx2.transforms.group_offload). `non_blocking` is accepted for diffusers' API:
        copies from pinned memory never block.
        """
        group_offload.apply_group_offload(
            self, onload_device, offload_device, offload_type, num_blocks_per_group, use_stream, record_stream,
            low_cpu_mem_usage, offload_to_disk_path,
        )

    def set_attention_backend(self, backend: str) -> None:
        """Run this network's attention on `backend` ("native", "_native_cudnn", "_native_flash",
        "_native_efficient", "_native_math", "flash"); see ltx2.transforms.attention."""
        attention.set_attention_backend(self, backend)

    def reset_attention_backend(self) -> None:
        """Back to the default: on CUDA the fastest kernel that serves each call."""
        attention.set_attention_backend(self, None)

    def compile_repeated_blocks(self, **torch_compile_kwargs: Any) -> None:
        """torch.compile each repeated block (`_repeated_blocks`), once for all blocks and token counts."""
        regional_compile.compile_repeated_blocks(self, **torch_compile_kwargs)


def warn_without_fp8(models: list[torch.nn.Module], description: str) -> None:
    """keep_fp8=True on a checkpoint whose networks hold no FP8 weights loads them as usual; say so."""
    if not any(fp8.compute_dtype(model) for model in models):
        warnings.warn(f"keep_fp8=True: {description} holds no FP8 weights; loaded in torch_dtype", stacklevel=3)
