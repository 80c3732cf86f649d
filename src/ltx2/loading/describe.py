"""What a checkpoint is, read from its headers alone: format, components, dtypes, parameter counts, version."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..versions import VERSIONS, folder_version
from .checkpoint import CheckpointError, TensorSource, check_layout
from .config import read_config
from .key_map import QUANTIZATION_SUFFIXES, original_keys, split_single_file
from .lora import locate
from .single_file import file_version, read_metadata

_DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64", "F8_E4M3": "float8_e4m3fn",
           "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32", "U8": "uint8", "BOOL": "bool"}


def _count(number: int) -> str:
    for factor, unit in ((10**9, "B"), (10**6, "M"), (10**3, "K")):
        if number >= factor:
            return f"{number / factor:.2f}{unit}"
    return str(number)


def _numel(shape: tuple[int, ...]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def _summary(source: TensorSource, keys: list[str]) -> str:
    """"<parameters> parameters, <dtypes>" over `keys`; FP8 scale tensors are not counted as parameters."""
    weights = [key for key in keys if key.rpartition(".")[2] not in QUANTIZATION_SUFFIXES]
    dtypes = Counter(_DTYPES.get(source.dtype(key), source.dtype(key)) for key in weights)
    parameters = sum(_numel(source.shape(key)) for key in weights)
    mix = ", ".join(f"{name} x{count}" if len(dtypes) > 1 else name for name, count in dtypes.most_common())
    return f"{_count(parameters)} parameters, {mix}"


def _safetensors_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def describe(path: str | Path) -> list[str]:
    """Lines describing a pipeline folder, a model folder, or a single .safetensors checkpoint or LoRA."""
    path = Path(path)
    if path.is_dir():
        if (path / "model_index.json").is_file():
            return _describe_pipeline(path)
        if (path / "config.json").is_file():
            return [f"{path}: diffusers model folder", *_describe_component(path, "  ")]
        raise CheckpointError(f"{path}: neither a pipeline folder (model_index.json) nor a model folder (config.json)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: not a .safetensors file")
    with TensorSource([path], str(path)) as source:
        return _describe_file(path, source)


def _describe_pipeline(folder: Path) -> list[str]:
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    lines = [f"{folder}: diffusers pipeline folder ({index.get('_class_name', 'unknown class')}), "
             f"{_folder_version(folder)}"]
    if index.get("_ltx2_tiny_random"):
        lines.append("  random weights written by `ltx2 make-tiny`: a smoke-test pipeline, not a model")
    names = [name for name in index if not name.startswith("_")]
    names += [path.name for path in sorted(folder.iterdir()) if path.is_dir() and path.name not in index]
    for name in names:
        entry = index.get(name) or [None, None]
        class_name = entry[1] or _folder_class(folder / name)
        details = _describe_component(folder / name, "    ") if _safetensors_files(folder / name) else [""]
        lines.append(f"  {name:<16} {class_name or '-':<32} {details[0].strip()}".rstrip())
        lines += details[1:]
    return lines


def _folder_version(folder: Path) -> str:
    version = folder_version(folder)
    return f"LTX version {version}" if version in VERSIONS else f"LTX version {version}, later than ltx2 implements"


def _folder_class(folder: Path) -> str | None:
    config = folder / "config.json"
    return read_config(config).get("_class_name") if config.is_file() else None


def _describe_component(folder: Path, indent: str) -> list[str]:
    files = _safetensors_files(folder)
    if not files:
        return [f"{indent}no safetensors weights"]
    with TensorSource(files, str(folder)) as source:
        shards = f" in {len(files)} files" if len(files) > 1 else ""
        return [f"{indent}{_summary(source, source.keys())}{shards}", *_config_problems(folder, source, indent)]


def _config_problems(folder: Path, source: TensorSource, indent: str) -> list[str]:
    """A line flagging an ltx2 network's config.json that is invalid or disagrees with the weights' header."""
    from ..models import NETWORKS, network_class  # the classes' own layout rules; imported when asked

    config_path = folder / "config.json"
    class_name = _folder_class(folder) if config_path.is_file() else None
    if class_name not in NETWORKS:
        return []
    cls = network_class(class_name)
    try:
        check_layout(cls.config_layout(cls.resolve_config(read_config(config_path))), source, str(config_path))
    except ValueError as error:
        return [f"{indent}bad config: {error}"]
    return []


def _describe_file(path: Path, source: TensorSource) -> list[str]:
    keys = source.keys()
    metadata = read_metadata(source)
    config = metadata.get("config") if isinstance(metadata.get("config"), dict) else {}
    if any(".lora_" in key for key in keys):
        return _describe_lora(path, source, keys)
    named = source.metadata().get("model_version")
    if "initial_conv.weight" in keys:
        version = f", model_version {named}" if named else ""
        return [f"{path}: LTX-2 latent upsampler (original single file){version}", f"  {_summary(source, keys)}",
                f"  config: {json.dumps(config, sort_keys=True)}" if config else "  config: none in the header"]
    groups = split_single_file(keys)
    found = {name: names for name, names in groups.items() if names and name != "unknown"}
    if not found:
        raise CheckpointError(f"{path}: no LTX-2 keys (not an original LTX-2 checkpoint, upsampler or LoRA)")
    try:
        version = file_version(source)
        classes = _network_classes(version)
        named = f"model_version {named}" if named else "the header names no model_version"
        heading = f"LTX version {version} ({named})"
    except CheckpointError as error:
        classes = {}
        heading = f"not loadable by ltx2: {str(error).partition(': ')[2]}"
    lines = [f"{path}: LTX-2 single-file checkpoint (original layout), {heading}"]
    for name, names in found.items():
        originals = original_keys(names)
        weights = set(originals)
        scales = [key for key in keys if key.endswith(".weight_scale") and key.removesuffix("_scale") in weights]
        fp8 = f", FP8 with {len(scales)} weight scales" if scales else ""
        lines.append(f"  {name:<12} {classes.get(name, '-'):<28} {_summary(source, originals)}{fp8}")
    if groups["unknown"]:
        lines.append(f"  unrecognised keys: {len(groups['unknown'])}")
    return lines


def _network_classes(version: str) -> dict[str, str]:
    """Component -> the name of the ltx2 class that loads it from a single file of `version`."""
    from ..models import single_file_networks  # the classes' own records of what they load; imported when asked

    return {component: cls.__name__ for component, cls in single_file_networks(version).items()}


def _describe_lora(path: Path, source: TensorSource, keys: list[str]) -> list[str]:
    targets: Counter[str] = Counter()
    ranks: set[int] = set()
    for key in keys:
        located = locate(key)
        if located is None:
            continue
        component, _, role = located
        if role == "down":
            targets[component] += 1
            ranks.add(source.shape(key)[0])
    layout = "original (diffusion_model.*)" if any(key.startswith("diffusion_model.") for key in keys) else "diffusers"
    lines = [f"{path}: LoRA, {layout} key names, rank {', '.join(map(str, sorted(ranks))) or '-'}",
             f"  {_summary(source, keys)}"]
    lines += [f"  {component:<12} {count} adapted layers" for component, count in targets.items()]
    return lines
