"""Regional compilation: torch.compile on the repeated block only, one graph for every block and token count.

Every block of a class named in the model's `_repeated_blocks` gets its `forward` compiled (the module hooks of
offloading and the like stay outside the graph). The blocks share their code, so torch.compile traces once and
all of them reuse the graph. Sizes are dynamic by default (`dynamic=True`), so stage 1, stage 2 and every
guidance pass with the same batch size run the same graph; torch specializes sizes 0 and 1, so a batch of one
has a graph of its own. Duck shaping (torch's guess that two equal sizes are one size) is off while tracing: a
token count that happens to equal a width (4096 video tokens at 512x512) would otherwise be fixed to it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.fx.experimental import _config as shape_config

_HOOK = "_ltx2_compile_hook"


def _plain(value: Any) -> Any:
    """`value` with every tensor that is a view replaced by a plain alias (nested tuples, lists, dicts).

    With dynamic sizes torch.compile guards on whether an input is a view: the first block receives the view a
    Linear returns, the others their predecessor's plain output, which would make the first a graph of its own.
    """
    if isinstance(value, torch.Tensor):
        return value.detach() if value._base is not None else value
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_plain(item) for item in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _plain_inputs(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    return _plain(args), _plain(kwargs)


def _without_duck_shapes(compiled: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with shape_config.patch(use_duck_shape=False):
        return compiled(*args, **kwargs)


def compile_repeated_blocks(model: nn.Module, **torch_compile_kwargs: Any) -> None:
    """Compile each block of `model` whose class name is in `model._repeated_blocks` (module docstring)."""
    names = tuple(getattr(model, "_repeated_blocks", ()))
    if not names:
        raise ValueError(f"{type(model).__name__} has no repeated blocks to compile (its _repeated_blocks is empty)")
    blocks = [module for module in model.modules() if type(module).__name__ in names]
    if not blocks:
        raise ValueError(f"{type(model).__name__} holds no module of the classes {list(names)}")
    torch_compile_kwargs.setdefault("dynamic", True)
    for block in blocks:
        if _HOOK in block.__dict__:  # compiled before: start again from the plain forward
            block.__dict__.pop(_HOOK).remove()
            del block.forward
        block.forward = partial(_without_duck_shapes, torch.compile(block.forward, **torch_compile_kwargs))
        block.__dict__[_HOOK] = block.register_forward_pre_hook(_plain_inputs, with_kwargs=True)
