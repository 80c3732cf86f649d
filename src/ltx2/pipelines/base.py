"""What every ltx2 pipeline shares: named components, loading and saving, placement, offload, progress bars."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from tqdm.auto import tqdm

from ..files import give_plain_modes, write_text_atomic
from ..loading.hub import _repo_id, download, hub_offline, offline_error
from ..loading.key_map import OPTIONAL_COMPONENTS, held_components
from ..loading.pretrained import warn_without_fp8
from ..loading.single_file import file_version, open_single_file
from ..models import FOLDER_NETWORKS, NETWORKS, single_file_networks
from ..scheduler import LTX2_DISTILLED_SCHEDULER_CONFIG, LTX2_SCHEDULER_CONFIG, FlowMatchEulerDiscreteScheduler
from ..text import hidden_width
from ..versions import DEFAULT_REPO, LTX_2_5
from .offload import ModelOffload, SequentialOffload

# Class names that diffusers writes into model_index.json, and what loads each here. Connectors, vocoder and the
# duration head are pipeline-local classes, which diffusers files under the library "ltx2".
_OURS = {**NETWORKS, **FOLDER_NETWORKS, "FlowMatchEulerDiscreteScheduler": "ltx2.scheduler",
         "LTXEulerAncestralRFScheduler": "ltx2.scheduler"}


def _our_class(class_name: str) -> type:
    return getattr(importlib.import_module(_OURS[class_name]), class_name)


def _load_component(folder: Path, name: str, class_name: str, dtype: torch.dtype | None) -> Any:
    if class_name in _OURS:
        cls = _our_class(class_name)
        if class_name.endswith("Scheduler"):
            return cls.from_pretrained(folder, subfolder=name)
        return cls.from_pretrained(folder, subfolder=name, torch_dtype=dtype)
    if "Tokenizer" in class_name:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(folder / name)
    if class_name.endswith("Processor"):  # Gemma's chat and image processor, for prompt enhancement
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(folder / name)
    if class_name.startswith(("Gemma3", "Gemma4Unified")):
        from ..text import load_text_encoder

        return load_text_encoder(folder / name, dtype)
    raise ValueError(f"{folder / 'model_index.json'}: component {name!r} has class {class_name!r}, unknown to ltx2")


def _read_index(folder: Path) -> dict[str, Any]:
    index_path = folder / "model_index.json"
    try:
        return json.loads(index_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder}: no model_index.json, so this is not a pipeline folder") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{index_path}: not valid JSON ({error})") from None


def _class_in(folder: Path) -> str | None:
    """The `_class_name` of a component folder that model_index.json does not list (e.g. latent_upsampler/)."""
    config = folder / "config.json"
    return json.loads(config.read_text(encoding="utf-8")).get("_class_name") if config.is_file() else None


class Pipeline:
    """A set of named components run in stages. Subclasses list their components and the offload order."""

    component_names: ClassVar[tuple[str, ...]] = ()
    offload_sequence: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **components: Any):
        unknown = set(components) - set(self.component_names)
        if unknown:
            raise ValueError(f"{type(self).__name__} has no component(s) {sorted(unknown)}; "
                             f"its components are {list(self.component_names)}")
        for name in self.component_names:
            setattr(self, name, components.get(name))
        self._offload: ModelOffload | SequentialOffload | None = None
        self._progress_bar_config: dict[str, Any] = {}

    @property
    def components(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.component_names}

    def _modules(self) -> Iterable[tuple[str, nn.Module]]:
        return ((name, value) for name, value in self.components.items() if isinstance(value, nn.Module))

    @classmethod
    def from_pretrained(
        cls, path_or_repo_id: str | Path, torch_dtype: torch.dtype | None = None, **components: Any
    ) -> Pipeline:
        """Load every component listed in model_index.json from its subfolder; `components` replace any of them.

        Entries that are null (or absent) are left as None, unless the folder has a subfolder of that name
        with a config.json. From the Hub only model_index.json and the subfolders still needed are fetched.
        """
        folder = Path(path_or_repo_id)
        if not folder.is_dir():
            folder = cls._download(_repo_id(path_or_repo_id), set(components))
        index = _read_index(folder)
        loaded = dict(components)
        for name in cls.component_names:
            if name in loaded:
                continue
            entry = index.get(name) or [None, _class_in(folder / name)]
            if entry[1] is not None:
                loaded[name] = _load_component(folder, name, entry[1], torch_dtype)
        return cls(**loaded)

    @classmethod
    def _download(cls, repo_id: str, given: set[str]) -> Path:
        wanted = [name for name in cls.component_names if name not in given]
        try:
            index = _read_index(download(repo_id, ["model_index.json"]))
        except FileNotFoundError:
            if hub_offline():
                raise offline_error(repo_id, ["model_index.json", *(f"{name}/*" for name in wanted)]) from None
            raise
        listed = [name for name in wanted if (index.get(name) or [None, None])[1] is not None]
        return download(repo_id, ["model_index.json", *(f"{name}/*" for name in wanted)],
                        required=["model_index.json", *(f"{name}/*" for name in listed)])

    @classmethod
    def from_single_file(
        cls,
        path_or_url: str | Path,
        torch_dtype: torch.dtype | None = None,
        text_encoder: Any = None,
        tokenizer: Any = None,
        keep_fp8: bool = False,
        **components: Any,
    ) -> Pipeline:
        """Load the networks from one of Lightricks' original combined checkpoints (`ltx-2-19b-dev.safetensors`,
        `ltx-2.3-22b-dev.safetensors`, `-distilled`, fp8 variants); `path_or_url` is a local file,
        `owner/repo/file.safetensors` or a Hub URL. The header's LTX version picks the networks (LTX-2.3's vocoder
        is an LTX2VocoderWithBWE). With `keep_fp8`, an fp8 file's FP8 weights stay FP8 (computed in `torch_dtype`)
        instead of being upcast.

        The file holds no text encoder or tokenizer: pass them, or they are loaded from Lightricks/LTX-2 (Gemma 3,
        LTX-2.0's and 2.3's; an LTX-2.5 file needs its fine-tuned Gemma 4 passed). The scheduler is LTX-2's, with
        the distilled schedule when the file name says "distilled". An LTX-2.5 file's duration head and diffusion
        decoder are loaded where it holds them, else None; where its VAE's decoder is the diffusion decoder, `vae`
        is None (pass one to encode images).
        """
        loaded = dict(components)
        if "latent_upsampler" in cls.component_names and loaded.get("latent_upsampler") is None:
            raise ValueError("latent_upsampler=None: the combined checkpoint holds no upsampler; pass "
                             "latent_upsampler=LTX2LatentUpsamplerModel.from_single_file(<upscaler file>)")
        text_parts = [name for name in ("text_encoder", "tokenizer") if name in cls.component_names]
        given = {"text_encoder": text_encoder, "tokenizer": tokenizer}
        with open_single_file(path_or_url) as source:
            version = file_version(source)
            missing = [name for name in text_parts if given[name] is None]
            if missing and version == LTX_2_5:
                raise ValueError(
                    f"{', '.join(f'{name}=None' for name in missing)}: {source.description} is an LTX-2.5 file, whose "
                    f"text encoder is a fine-tuned Gemma 4 that {DEFAULT_REPO} does not hold; pass text_encoder= and "
                    "tokenizer= (e.g. ltx2.text.load_text_encoder and AutoTokenizer on an LTX-2.5 folder's "
                    "text_encoder/ and tokenizer/)"
                )
            networks = single_file_networks(version)
            held = held_components(source.keys())
            width = hidden_width(text_encoder)
            for name in cls.component_names:
                if name in networks and name not in loaded:
                    # LTX-2.5's optional networks, and the conv VAE where a diffusion decoder took its place, are
                    # None when the file lacks them (as in a folder without their subfolders).
                    optional = name in OPTIONAL_COMPONENTS or (name == "vae" and "diffusion_decoder" in held)
                    network = networks[name]
                    loaded[name] = (network.from_single_file_source(source, torch_dtype, None, keep_fp8, width)
                                    if name in held or not optional else None)
            distilled = "distilled" in Path(source.description).name
            if keep_fp8:
                networks_loaded = [value for value in loaded.values() if isinstance(value, nn.Module)]
                warn_without_fp8(networks_loaded, source.description)
        if "scheduler" in cls.component_names and "scheduler" not in loaded:
            config = LTX2_DISTILLED_SCHEDULER_CONFIG if distilled else LTX2_SCHEDULER_CONFIG
            loaded["scheduler"] = FlowMatchEulerDiscreteScheduler(**config)
        loaded.update(given)
        if missing:
            skipped = {name: None for name in cls.component_names if name not in missing}
            hub_parts = cls.from_pretrained(DEFAULT_REPO, torch_dtype, **skipped).components
            loaded.update({name: hub_parts[name] for name in missing})
        return cls(**{name: value for name, value in loaded.items() if name in cls.component_names})

    def save_pretrained(self, save_directory: str | Path) -> None:
        """Write model_index.json and each component in its subfolder (diffusers layout)."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        index: dict[str, Any] = {"_class_name": type(self).__name__}
        for name, component in self.components.items():
            if component is None:
                index[name] = [None, None]
                continue
            class_name = type(component).__name__
            if class_name in ("LTX2TextConnectors", "LTX2Vocoder", "LTX2VocoderWithBWE", "LTX2DurationHead"):
                library = "ltx2"
            else:
                library = "diffusers" if class_name in _OURS else "transformers"
            index[name] = [library, class_name]
            component.save_pretrained(folder / name)
            if library == "transformers":
                give_plain_modes(folder / name)
        write_text_atomic(folder / "model_index.json", json.dumps(index, indent=2) + "\n")

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Pipeline:
        for _, module in self._modules():
            module.to(device=device, dtype=dtype)
        return self

    @property
    def device(self) -> torch.device:
        """Where inputs are created and the computation runs (the offload device when offloading)."""
        if self._offload is not None:
            return self._offload.device
        for _, module in self._modules():
            for parameter in module.parameters():
                return parameter.device
        return torch.device("cpu")

    def enable_model_cpu_offload(self, gpu_id: int | None = None, device: torch.device | str = "cuda") -> None:
        """Keep components on the CPU and move each to `device` only while it runs (one at a time)."""
        self._reset_offload()
        self._offload = ModelOffload(_offload_device(device, gpu_id))
        self.to("cpu")

    def enable_sequential_cpu_offload(self, gpu_id: int | None = None, device: torch.device | str = "cuda") -> None:
        """Keep all weights on the CPU and stream them to `device` block by block: lowest memory, slowest."""
        self._reset_offload()
        offload = SequentialOffload(_offload_device(device, gpu_id))
        for _, module in self._modules():
            offload.attach(module)
        self._offload = offload

    def _reset_offload(self) -> None:
        if isinstance(self._offload, SequentialOffload):
            self._offload.detach()
        elif isinstance(self._offload, ModelOffload):
            self._offload.release()
        self._offload = None

    def _activate(self, name: str) -> Any:
        """The component `name`, placed on the execution device as the offload mode wants it."""
        component = getattr(self, name)
        if isinstance(self._offload, ModelOffload) and isinstance(component, nn.Module):
            self._offload.activate(component)
        return component

    def _release(self) -> None:
        if isinstance(self._offload, ModelOffload):
            self._offload.release()

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        """Options for the tqdm bar of each sampling loop, e.g. disable=True."""
        self._progress_bar_config = kwargs

    def progress_bar(self, total: int) -> tqdm:
        return tqdm(total=total, **self._progress_bar_config)


def _offload_device(device: torch.device | str, gpu_id: int | None) -> torch.device:
    device = torch.device(device)
    if gpu_id is not None:
        device = torch.device(device.type, gpu_id)
    return device
