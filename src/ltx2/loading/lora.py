"""LoRA adapters for the ltx2 pipelines, applied in place on the model's own nn.Linear layers (no peft).

A LoRA adds `scale * B @ A` to the weight of some nn.Linear layers (A: (rank, in), B: (out, rank)).

Unfused (the default), each targeted Linear keeps its weight untouched and carries its adapters' A and B
as non-persistent buffers of its own, so `.to()`, dtype casts and module offloading move them along with
the layer and the model's state dict keeps exactly its keys. A forward hook adds, for every active adapter,
`weight * scale * (x @ A^T) @ B^T` to the layer's output. Memory: only the A/B factors (stored in the
layer's dtype and device); the rank-384 distilled LoRA needs no second copy of the transformer.

`fuse_lora` adds the deltas into the weights in place and keeps a CPU copy of every weight it changes, so
`unfuse_lora` restores them bit for bit. That copy is the price of fusing: as much CPU memory as the
fused layers' weights (for a LoRA on every Linear of the 19B transformer, about the transformer's size).

On layers that store FP8 weights (ltx2.transforms.fp8) the factors are kept in the layer's compute dtype, so
unfused adapters lose nothing; fusing dequantizes the weight, adds the deltas in float32 and re-quantizes
with the layer's scale, and warns that the fused weights carry FP8 rounding.

Key formats (each key ends in `.lora_A.weight` / `.lora_B.weight`, or `.lora_down.weight` / `.lora_up.weight`,
with an optional `.alpha` per module):
- diffusers / peft: `transformer.<diffusers module path>` and `connectors.<...>`;
- original LTX-2 / ComfyUI: `diffusion_model.<original module path>`, renamed to the diffusers layout
  (`patchify_proj` -> `proj_in`, `adaln_single` -> `time_embed`, ...); `text_embedding_projection.*` and
  the original connector modules go to the connectors.

Scale per module, as diffusers 0.42.1 with peft computes it:
- no alpha anywhere: 1 (diffusers mirrors each module's rank into its alpha, whatever the ranks);
- a peft config in the file's `lora_adapter_metadata`: lora_alpha / r (or / sqrt(r) with use_rslora), with
  peft's `rank_pattern` / `alpha_pattern` lookups;
- an `.alpha` key (kohya / ComfyUI convention, which diffusers rejects for LTX-2): alpha / rank.
Lightricks' own code ignores alpha; their LoRAs carry none, so every convention gives scale 1 for them.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..transforms import fp8
from .checkpoint import CheckpointError, TensorSource, _first
from .hub import resolve_file
from .key_map import LORA_PREFIX, connector_key, is_connector_key, transformer_key

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
METADATA_KEY = "lora_adapter_metadata"
COMPONENTS = ("transformer", "connectors")
DOWNLOAD_OPTIONS = ("revision", "cache_dir", "token", "local_files_only", "force_download", "proxies")

AdapterWeight = float | dict[str, float] | None

_ROLES = (
    (".lora_A.weight", "down"),
    (".lora_down.weight", "down"),
    (".lora_B.weight", "up"),
    (".lora_up.weight", "up"),
    (".alpha", "alpha"),
)
# ----------------------------------------------------------------------------------------------------------
# Reading a LoRA: where its tensors come from, which module each key targets, at what scale.


class _DictSource:
    """An in-memory state dict, read through the same interface as a safetensors file."""

    description = "the LoRA state dict"

    def __init__(self, state: dict[str, torch.Tensor]):
        self._state = state

    def keys(self) -> list[str]:
        return list(self._state)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._state[key].shape)

    def get(self, key: str) -> torch.Tensor:
        return self._state[key]

    def metadata(self) -> dict[str, str]:
        return {}

    def __enter__(self) -> _DictSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


def _default_weight_name(folder: Path) -> str:
    """diffusers' file name when present, else the folder's only .safetensors file."""
    if not folder.is_dir() or (folder / LORA_WEIGHT_NAME).is_file():
        return LORA_WEIGHT_NAME
    candidates = sorted(path.name for path in folder.glob("*.safetensors"))
    if len(candidates) != 1:
        raise ValueError(
            f"weight_name=None: {folder} holds {len(candidates)} .safetensors files ({', '.join(candidates)}); "
            "name the LoRA file with weight_name="
        )
    return candidates[0]


def open_lora(
    path_or_repo_id_or_state_dict: str | Path | dict[str, torch.Tensor],
    weight_name: str | None = None,
    subfolder: str | None = None,
    **download_options: Any,
) -> TensorSource | _DictSource:
    """A lazy view of a LoRA: a state dict, a .safetensors file, a folder + weight_name, or a Hub repo + weight_name."""
    if isinstance(path_or_repo_id_or_state_dict, dict):
        return _DictSource(path_or_repo_id_or_state_dict)
    path = Path(path_or_repo_id_or_state_dict)
    if not path.is_file():
        name = weight_name or _default_weight_name(path / subfolder if subfolder else path)
        path = resolve_file(path_or_repo_id_or_state_dict, name, subfolder, **download_options)
    if path.suffix != ".safetensors":
        raise ValueError(f"path_or_repo_id_or_state_dict={str(path)!r}: LoRA files must be .safetensors")
    return TensorSource([path], str(path))


def locate(key: str) -> tuple[str, str, str] | None:
    """(component, module path in the diffusers layout, role) that a LoRA key targets, or None if it is no LoRA key.

    role is "down" (A), "up" (B) or "alpha".
    """
    for suffix, role in _ROLES:
        if key.endswith(suffix):
            module = key[: -len(suffix)]
            break
    else:
        return None
    if module.startswith(LORA_PREFIX):
        module = module.removeprefix(LORA_PREFIX)
        if not is_connector_key(module):
            return "transformer", transformer_key(module), role
    if is_connector_key(module):
        return "connectors", connector_key(module), role
    component, _, path = module.partition(".")
    return (component, path, role) if component in COMPONENTS and path else None


def _pattern_value(patterns: dict[str, Any], module: str, default: Any) -> Any:
    """peft's per-module override: the first pattern that matches the end of the module path."""
    for pattern, value in patterns.items():
        if re.match(rf"(.*\.)?({pattern})$", module):
            return value
    return default


def _adapter_configs(source: TensorSource | _DictSource) -> dict[str, dict[str, Any]]:
    """The peft LoraConfig per component stored by diffusers in the file metadata, if any."""
    raw = source.metadata().get(METADATA_KEY)
    if not raw:
        return {}
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{source.description}: {METADATA_KEY} is not valid JSON ({error})") from None
    configs: dict[str, dict[str, Any]] = {}
    for key, value in metadata.items():
        component, _, name = key.partition(".")
        if component in COMPONENTS:
            configs.setdefault(component, {})[name] = value
    for component, config in configs.items():
        for unsupported in ("use_dora", "lora_bias"):
            if config.get(unsupported):
                raise CheckpointError(f"{source.description}: {component} adapter has {unsupported}=True (unsupported)")
    return configs


@dataclass
class _ModuleKeys:
    """The keys holding one module's factors in a LoRA file."""

    down: str | None = None
    up: str | None = None
    alpha: str | None = None


@dataclass
class ModuleLora:
    """One module's share of an adapter, checked against the model: where it goes and at what scale."""

    component: str
    path: str
    down_key: str
    up_key: str
    scale: float


def _group_keys(source: TensorSource | _DictSource) -> tuple[dict[tuple[str, str], _ModuleKeys], list[str]]:
    """The file's keys grouped by (component, module path), and the keys that are no LoRA keys at all."""
    groups: dict[tuple[str, str], _ModuleKeys] = {}
    unmatched, dora = [], []
    for key in source.keys():
        if "dora_scale" in key:
            dora.append(key)
            continue
        located = locate(key)
        if located is None:
            unmatched.append(key)
            continue
        component, path, role = located
        keys = groups.setdefault((component, path), _ModuleKeys())
        if getattr(keys, role) is not None:
            raise CheckpointError(f"{source.description}: {getattr(keys, role)} and {key} target the same tensor")
        setattr(keys, role, key)
    if dora:
        warnings.warn(
            f"{source.description}: ignoring {len(dora)} DoRA magnitude keys (unsupported), as diffusers does"
        )
    return groups, unmatched


def _scale(source: TensorSource | _DictSource, keys: _ModuleKeys, config: dict | None, path: str, rank: int) -> float:
    """The module's alpha / rank under the file's convention (see the module docstring)."""
    if keys.alpha is not None:
        return float(source.get(keys.alpha)) / rank
    if config is None:
        return 1.0
    config_rank = _pattern_value(config.get("rank_pattern") or {}, path, config.get("r", 8))
    if config_rank != rank:
        raise CheckpointError(f"{source.description}: {keys.down} has rank {rank}, its adapter config r={config_rank}")
    alpha = _pattern_value(config.get("alpha_pattern") or {}, path, config.get("lora_alpha", 8))
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def plan_adapter(source: TensorSource | _DictSource, models: dict[str, nn.Module | None]) -> list[ModuleLora]:
    """Match every key of `source` to an nn.Linear of `models` (by component) and compute each module's scale.

    Raises CheckpointError naming the source and the offending keys when any key matches no Linear, a factor
    is missing or a shape does not fit. Only shapes and alphas are read here.
    """
    groups, unmatched = _group_keys(source)
    if not groups and not unmatched:
        raise CheckpointError(f"{source.description}: holds no LoRA keys")
    configs = _adapter_configs(source)
    problems, planned = [], []
    for (component, path), keys in groups.items():
        linear = _linear_at(models.get(component), path)
        if linear is None:
            unmatched.extend(key for key in (keys.down, keys.up, keys.alpha) if key is not None)
            continue
        if keys.down is None or keys.up is None:
            missing = " and ".join(name for name, key in (("A", keys.down), ("B", keys.up)) if key is None)
            problems.append(f"{component}.{path}: LoRA factor {missing} missing from the file")
            continue
        down_shape, up_shape = source.shape(keys.down), source.shape(keys.up)
        rank = down_shape[0] if down_shape else 0
        if down_shape != (rank, linear.in_features) or up_shape != (linear.out_features, rank):
            problems.append(
                f"{keys.down} {down_shape} / {keys.up} {up_shape} do not fit {component}.{path} "
                f"(Linear {linear.in_features} -> {linear.out_features}: expects ({rank}, {linear.in_features}) "
                f"and ({linear.out_features}, {rank}))"
            )
            continue
        scale = _scale(source, keys, configs.get(component), path, rank)
        planned.append(ModuleLora(component, path, keys.down, keys.up, scale))
    if unmatched:
        problems.insert(
            0, f"{len(unmatched)} keys match no Linear layer of {'/'.join(COMPONENTS)}: {_first(unmatched)}"
        )
    if problems:
        raise CheckpointError(f"{source.description}: cannot load this LoRA: " + "; ".join(problems))
    return planned


def _linear_at(model: nn.Module | None, path: str) -> nn.Linear | None:
    try:
        module = model.get_submodule(path) if model is not None else None
    except AttributeError:
        return None
    return module if isinstance(module, nn.Linear) else None


# ----------------------------------------------------------------------------------------------------------
# One Linear's adapters: factors as buffers on the layer, a forward hook, fusing with an exact undo.


class LoraLayer:
    """The adapters attached to one nn.Linear, and the hook that applies the active, unfused ones."""

    attribute = "_ltx2_lora"

    def __init__(self, linear: nn.Linear):
        self.buffers: dict[str, tuple[str, str]] = {}  # adapter -> names of its A and B buffers on the Linear
        self.scales: dict[str, float] = {}  # adapter -> alpha / rank (or the format's equivalent)
        self.fused: dict[str, float] = {}  # adapter -> factor added into the weight
        self.original_weight: torch.Tensor | None = None  # CPU copy taken by the first fuse
        self.plan: list[tuple[str, str, float]] = []  # (A buffer, B buffer, factor) added by each forward
        # First among the layer's forward hooks, so an offloader's hook cannot take the factors away before it.
        self._hook = linear.register_forward_hook(self._add_adapters, prepend=True)
        linear.__dict__[self.attribute] = self

    @classmethod
    def of(cls, linear: nn.Linear) -> LoraLayer | None:
        return linear.__dict__.get(cls.attribute)

    def attach(self, linear: nn.Linear, adapter: str, down: torch.Tensor, up: torch.Tensor, scale: float) -> None:
        slot = next(index for index in range(len(self.buffers) + 1) if f"lora_A_{index}" not in linear._buffers)
        names = (f"lora_A_{slot}", f"lora_B_{slot}")
        weight = linear.weight
        # Weights streamed in by an offloader may sit on the meta device between calls; the hook fetches from CPU.
        device = "cpu" if weight.is_meta else weight.device
        # Factors of a layer stored in FP8 are kept in the dtype it computes in.
        dtype = fp8.compute_dtype(linear) or weight.dtype
        for name, factor in zip(names, (down, up)):
            factor = factor.to(device=device, dtype=dtype, copy=True).contiguous()
            linear.register_buffer(name, factor, persistent=False)
        self.buffers[adapter] = names
        self.scales[adapter] = scale

    def detach(self, linear: nn.Linear, adapter: str) -> None:
        for name in self.buffers.pop(adapter):
            del linear._buffers[name]
        del self.scales[adapter]
        if not self.buffers:
            self.remove(linear)

    def remove(self, linear: nn.Linear) -> None:
        """Drop every adapter and the hook, and with them any saved original weight (fused deltas stay)."""
        for names in self.buffers.values():
            for name in names:
                del linear._buffers[name]
        self._hook.remove()
        del linear.__dict__[self.attribute]

    def activate(self, factors: dict[str, float]) -> None:
        """Apply these adapters (each with factor = adapter weight * scale) on every forward, unless fused."""
        self.plan = [(*self.buffers[name], factor) for name, factor in factors.items() if name not in self.fused]

    def _add_adapters(self, linear: nn.Linear, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        if not self.plan:
            return output
        features = inputs[0]
        output = output.contiguous()
        flat_output = output.view(-1, output.shape[-1])
        for down_name, up_name, factor in self.plan:
            # .to() is free when offloading moved the buffers with the layer; otherwise it fetches them.
            down = linear._buffers[down_name].to(device=features.device, dtype=features.dtype)
            up = linear._buffers[up_name].to(device=output.device, dtype=output.dtype)
            hidden = F.linear(features, down).reshape(-1, down.shape[0])  # (..., in) -> (tokens, rank)
            flat_output.addmm_(hidden.to(output.dtype), up.T, alpha=factor)
        return output

    def fused_weight(self, linear: nn.Linear, factors: dict[str, float]) -> torch.Tensor:
        """The weight with these adapters' deltas added, summed in float32 and rounded once into its storage
        (an FP8 weight is dequantized, summed and re-quantized with its scale)."""
        total = fp8.dequantized_weight(linear)
        for name, factor in factors.items():
            down, up = (linear._buffers[buffer].to(total.device, torch.float32) for buffer in self.buffers[name])
            total = total.addmm(up, down, alpha=factor)
        return fp8.quantized_like(linear, total)

    def fuse(self, linear: nn.Linear, factors: dict[str, float]) -> None:
        if not factors:
            return
        weight = linear.weight
        if weight.is_meta:
            raise ValueError(f"cannot fuse a LoRA into {linear}: its weight is on the meta device")
        if self.original_weight is None:
            self.original_weight = weight.detach().to("cpu", copy=True)
        with torch.no_grad():
            weight.copy_(self.fused_weight(linear, factors))
        self.fused.update(factors)

    def unfuse(self, linear: nn.Linear) -> None:
        if self.original_weight is None:
            return
        with torch.no_grad():
            linear.weight.copy_(self.original_weight)
        self.original_weight = None
        self.fused.clear()


def lora_layers(model: nn.Module) -> Iterator[tuple[nn.Linear, LoraLayer]]:
    for module in model.modules():
        layer = LoraLayer.of(module)
        if layer is not None:
            yield module, layer


# ----------------------------------------------------------------------------------------------------------
# The pipeline API (diffusers-compatible).


@dataclass
class _Adapters:
    """Pipeline-wide bookkeeping: the loaded adapters, the active ones and their weights."""

    components: dict[str, list[str]] = field(default_factory=dict)  # adapter -> components it touches
    active: list[str] = field(default_factory=list)
    weights: dict[str, AdapterWeight] = field(default_factory=dict)
    enabled: bool = True


def _component_weight(weight: AdapterWeight, component: str) -> float:
    if isinstance(weight, dict):
        weight = weight.get(component)
    return 1.0 if weight is None else float(weight)


class LoraLoaderMixin:
    """LoRA loading for pipelines with a `transformer` (and optionally `connectors`), with diffusers' API.

    See the module docstring for the formats, the alpha conventions and the memory each mode costs.
    """

    _lora_loadable_modules = COMPONENTS

    @property
    def _lora_adapters(self) -> _Adapters:
        if "_lora_state" not in self.__dict__:
            self.__dict__["_lora_state"] = _Adapters()
        return self.__dict__["_lora_state"]

    def _lora_models(self, components: list[str] | None = None) -> dict[str, nn.Module | None]:
        names = COMPONENTS if components is None else components
        unknown = [name for name in names if name not in COMPONENTS]
        if unknown:
            raise ValueError(f"components={components!r}: LoRA components are {list(COMPONENTS)}")
        return {name: getattr(self, name, None) for name in names}

    def _lora_layers(self, components: list[str] | None = None) -> Iterator[tuple[str, nn.Linear, LoraLayer]]:
        for component, model in self._lora_models(components).items():
            if model is not None:
                for linear, layer in lora_layers(model):
                    yield component, linear, layer

    def _refresh_lora(self) -> None:
        state = self._lora_adapters
        active = state.active if state.enabled else []
        for component, _, layer in self._lora_layers():
            layer.activate(
                {
                    name: _component_weight(state.weights[name], component) * layer.scales[name]
                    for name in active
                    if name in layer.buffers
                }
            )

    def _adapter_names(self, adapter_names: str | list[str], argument: str) -> list[str]:
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        unknown = [name for name in names if name not in self._lora_adapters.components]
        if unknown:
            raise ValueError(
                f"{argument}={adapter_names!r}: unknown adapters {unknown}; loaded: {list(self._lora_adapters.components)}"
            )
        return names

    def load_lora_weights(
        self,
        path_or_repo_id_or_state_dict: str | Path | dict[str, torch.Tensor],
        weight_name: str | None = None,
        adapter_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Load a LoRA (file, folder or Hub repo + weight_name, or a state dict) as a new, solely active adapter.

        Accepts diffusers' keywords `subfolder`, the Hub download options, and `low_cpu_mem_usage` (no effect:
        loading always streams the file tensor by tensor).
        """
        if kwargs.pop("hotswap", False):
            raise ValueError("hotswap=True: not supported; delete_adapters() then load_lora_weights() instead")
        if kwargs.pop("use_safetensors", None) is False:
            raise ValueError("use_safetensors=False: only .safetensors LoRA files are supported")
        kwargs.pop("low_cpu_mem_usage", None)
        subfolder = kwargs.pop("subfolder", None)
        unknown = [name for name in kwargs if name not in DOWNLOAD_OPTIONS]
        if unknown:
            raise TypeError(f"load_lora_weights() got unexpected keyword arguments {unknown}")
        state = self._lora_adapters
        if adapter_name is None:
            numbers = itertools.count(len(state.components))
            adapter_name = next(name for name in (f"default_{n}" for n in numbers) if name not in state.components)
        if adapter_name in state.components:
            raise ValueError(f"adapter_name={adapter_name!r}: already loaded; delete_adapters() it first")

        models = self._lora_models()
        with open_lora(path_or_repo_id_or_state_dict, weight_name, subfolder, **kwargs) as source:
            plan = plan_adapter(source, models)
            try:
                for module in plan:
                    linear = models[module.component].get_submodule(module.path)
                    layer = LoraLayer.of(linear) or LoraLayer(linear)
                    layer.attach(
                        linear, adapter_name, source.get(module.down_key), source.get(module.up_key), module.scale
                    )
            except BaseException:
                self._detach(adapter_name)
                raise
        state.components[adapter_name] = sorted({module.component for module in plan}, key=COMPONENTS.index)
        state.weights[adapter_name] = 1.0
        state.active = [adapter_name]
        self._refresh_lora()

    def _detach(self, adapter_name: str) -> None:
        for _, linear, layer in list(self._lora_layers()):
            if adapter_name in layer.buffers:
                layer.detach(linear, adapter_name)

    def set_adapters(
        self, adapter_names: str | list[str], adapter_weights: AdapterWeight | list[AdapterWeight] = None
    ) -> None:
        """Make exactly these adapters active, each with its weight (default 1.0; a dict gives one per component)."""
        names = self._adapter_names(adapter_names, "adapter_names")
        weights = list(adapter_weights) if isinstance(adapter_weights, list) else [adapter_weights] * len(names)
        if len(weights) != len(names):
            raise ValueError(f"adapter_weights={adapter_weights!r}: {len(weights)} weights for {len(names)} adapters")
        for weight in weights:
            per_component = weight.items() if isinstance(weight, dict) else [(COMPONENTS[0], weight)]
            for component, value in per_component:
                if component not in COMPONENTS or not (value is None or isinstance(value, (int, float))):
                    raise ValueError(
                        f"adapter_weights={adapter_weights!r}: each weight is a number, None, or a dict "
                        f"{{component: number}} over {list(COMPONENTS)}"
                    )
        state = self._lora_adapters
        state.active = names
        state.weights.update(zip(names, weights))
        self._refresh_lora()

    def get_active_adapters(self) -> list[str]:
        return list(self._lora_adapters.active)

    def get_list_adapters(self) -> dict[str, list[str]]:
        """The loaded adapters per component, in load order."""
        listing: dict[str, list[str]] = {}
        for adapter, components in self._lora_adapters.components.items():
            for component in components:
                listing.setdefault(component, []).append(adapter)
        return listing

    def disable_lora(self) -> None:
        """Run the base model: stop applying adapters and unfuse any fused ones (as peft does)."""
        self.unfuse_lora()
        self._lora_adapters.enabled = False
        self._refresh_lora()

    def enable_lora(self) -> None:
        """Apply the active adapters again (unfused)."""
        self._lora_adapters.enabled = True
        self._refresh_lora()

    def fuse_lora(
        self,
        components: list[str] | None = None,
        lora_scale: float = 1.0,
        safe_fusing: bool = False,
        adapter_names: list[str] | None = None,
    ) -> None:
        """Add the adapters (default: the active ones) into the weights, each scaled by lora_scale * its weight.

        Keeps a CPU copy of every weight it changes so that `unfuse_lora` restores it exactly. With
        `safe_fusing`, nothing is written if any fused weight would be non-finite. Unlike diffusers,
        `lora_scale` is not remembered by the unfused adapters afterwards. Weights stored in FP8 are
        dequantized, summed and re-quantized (with a warning): the fused layer carries FP8 rounding of the sum.
        """
        state = self._lora_adapters
        if not state.enabled:
            raise ValueError("fuse_lora(): LoRA is disabled; call enable_lora() first")
        names = state.active if adapter_names is None else self._adapter_names(adapter_names, "adapter_names")
        work = []
        for component, linear, layer in self._lora_layers(components):
            factors = {
                name: lora_scale * _component_weight(state.weights[name], component) * layer.scales[name]
                for name in names
                if name in layer.buffers and name not in layer.fused
            }
            work.append((linear, layer, factors))
        if safe_fusing:
            for linear, layer, factors in work:
                if factors and not torch.isfinite(layer.fused_weight(linear, factors).float()).all():
                    raise ValueError(
                        f"fuse_lora(): adapters {list(factors)} give non-finite weights; nothing was fused"
                    )
        requantized = sum(1 for linear, _, factors in work if factors and linear.weight.dtype in fp8.FLOAT8)
        if requantized:
            warnings.warn(
                f"fuse_lora(): {requantized} layers store FP8 weights; they were dequantized, summed with the LoRA "
                "and re-quantized to FP8, so the fused weights carry FP8 rounding (unfuse_lora restores the "
                "originals exactly; unfused adapters add the LoRA in the compute dtype instead)",
                stacklevel=2,
            )
        for linear, layer, factors in work:
            layer.fuse(linear, factors)
        self._refresh_lora()

    def unfuse_lora(self, components: list[str] | None = None) -> None:
        """Restore the weights saved by `fuse_lora`, bit for bit; the adapters apply unfused again."""
        for _, linear, layer in self._lora_layers(components):
            layer.unfuse(linear)
        self._refresh_lora()

    def unload_lora_weights(self) -> None:
        """Remove every adapter, hook and saved weight. Fused deltas stay in the weights (diffusers' behaviour)."""
        for _, linear, layer in list(self._lora_layers()):
            layer.remove(linear)
        self.__dict__["_lora_state"] = _Adapters()

    def delete_adapters(self, adapter_names: str | list[str]) -> None:
        """Remove these adapters. If they were all the active ones, the first remaining adapter becomes active."""
        names = self._adapter_names(adapter_names, "adapter_names")
        fused = sorted({name for _, _, layer in self._lora_layers() for name in layer.fused if name in names})
        if fused:
            raise ValueError(f"adapter_names={adapter_names!r}: {fused} are fused; call unfuse_lora() first")
        state = self._lora_adapters
        for name in names:
            self._detach(name)
            del state.components[name], state.weights[name]
        state.active = [name for name in state.active if name not in names]
        if not state.active and state.components:
            state.active = [next(iter(state.components))]
        self._refresh_lora()
