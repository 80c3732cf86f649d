"""Prompt encoding around transformers' Gemma: tokenization as LTX-2 does it, and all hidden states stacked.

A prompt becomes (B, L, hidden * (layers + 1)) features: every hidden state of the text encoder's language model
(the embedding output and each layer), stacked per token. LTX-2.0 and 2.3 use Gemma 3 12B (3840 x 49); LTX-2.5
uses Gemma 4 (`Gemma4UnifiedForConditionalGeneration`, whose text part alternates sliding-window and
full-attention layers, the full ones with a wider head). The connectors normalize and project them. Only the
language model runs: the vision parts are never needed (and not loaded by `load_text_encoder`), nor the LM head.

Tokens are as diffusers 0.42.1 makes them for every version: the stripped prompt with the tokenizer's own special
tokens, left-padded to `max_sequence_length`. Gemma 3's tokenizer starts a prompt with BOS; Gemma 4's adds none,
and ltx2 adds none either (as 0.42.1), although Lightricks' own Gemma 4 wrapper in ltx-core prepends one: LTX-2.5
prompt embeddings therefore follow diffusers, not ltx-core.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

# The language-model weights inside a Gemma3ForConditionalGeneration or Gemma4UnifiedForConditionalGeneration
# checkpoint, under either naming scheme.
_LANGUAGE_MODEL_KEYS = {r"^model\.language_model\.": "", r"^language_model\.model\.": ""}
# transformers' class for the language model of each Gemma an LTX folder's text_encoder/ holds: the multimodal model
# (diffusers' folders) or its language model alone (ltx2's save_pretrained).
_LANGUAGE_MODELS = {"gemma3": "Gemma3TextModel", "gemma3_text": "Gemma3TextModel",
                    "gemma4_unified": "Gemma4UnifiedTextModel", "gemma4_unified_text": "Gemma4UnifiedTextModel"}
# LTX-2's prompts are left-padded (tokenize pads them so); the connectors of LTX-2.0 read the side.
PADDING_SIDE = "left"


@contextlib.contextmanager
def _quiet_transformers():
    """Loading only the language model leaves the vision weights unused; that is expected, so no report, and
    a few megabytes of Gemma need no progress bar of their own between ltx2's stages."""
    from transformers.utils import logging

    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def load_text_encoder(folder: str | Path, dtype: torch.dtype | None = None) -> nn.Module:
    """The language model alone from a text_encoder/ folder: a Gemma3ForConditionalGeneration checkpoint (LTX-2.0,
    2.3) or a Gemma4UnifiedForConditionalGeneration one (LTX-2.5), or that language model saved alone."""
    import transformers

    from .loading.config import read_config

    config_path = Path(folder) / "config.json"
    model_type = read_config(config_path).get("model_type")
    if model_type not in _LANGUAGE_MODELS:
        raise ValueError(f"{config_path}: model_type {model_type!r} is not a text encoder of LTX-2 "
                         f"(it loads {', '.join(map(repr, _LANGUAGE_MODELS))})")
    model_class = getattr(transformers, _LANGUAGE_MODELS[model_type])
    with _quiet_transformers():
        return model_class.from_pretrained(folder, dtype=dtype, key_mapping=_LANGUAGE_MODEL_KEYS).eval()


def language_model(text_encoder: nn.Module) -> nn.Module:
    """The part of a Gemma model that produces hidden states: the language model of a multimodal model."""
    inner = getattr(text_encoder, "model", None)
    if inner is not None and hasattr(inner, "language_model"):
        return inner.language_model
    return getattr(text_encoder, "language_model", text_encoder)


def hidden_width(text_encoder: Any) -> int | None:
    """The width of a Gemma text encoder's hidden states (its text config's hidden_size); None for an object
    without such a config."""
    config = getattr(text_encoder, "config", None)
    width = getattr(getattr(config, "text_config", config), "hidden_size", None)
    return width if isinstance(width, int) else None


def tokenize(tokenizer: Any, prompts: list[str], max_sequence_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """LTX-2's tokenization: stripped prompts with the tokenizer's special tokens (Gemma 3's BOS; Gemma 4's
    tokenizer adds none, and none is prepended here: see the module docstring), truncation, left padding to
    max_sequence_length (with the pad token, or EOS for a tokenizer without one). The tokenizer is not changed:
    padding is done here."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = tokenizer([prompt.strip() for prompt in prompts], max_length=max_sequence_length, truncation=True,
                     add_special_tokens=True)["input_ids"]
    ids = torch.tensor([[pad] * (max_sequence_length - len(row)) + list(row) for row in rows], dtype=torch.long)
    mask = torch.tensor([[0] * (max_sequence_length - len(row)) + [1] * len(row) for row in rows], dtype=torch.long)
    return ids, mask


class PromptEncoder:
    """Gemma hidden states for prompts, with a small cache so repeated prompts do not run Gemma again.

    The cache holds the most recent `cache_size` prompts (per max_sequence_length and text encoder) on the CPU.
    """

    def __init__(self, cache_size: int = 4):
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def clear(self) -> None:
        self._cache.clear()

    def encode(
        self, tokenizer: Any, text_encoder: nn.Module, prompts: list[str], max_sequence_length: int,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, hidden * (layers + 1)) stacked hidden states in the text encoder's dtype, and the (B, L) mask.

        Gemma runs on `device` (where its inputs go); the results come back on the CPU.
        """
        keys = [(prompt, max_sequence_length, id(text_encoder)) for prompt in prompts]
        missing = list(dict.fromkeys(key for key in keys if key not in self._cache))
        if missing:
            prompts_to_run = [key[0] for key in missing]
            embeds, masks = self._run(tokenizer, text_encoder, prompts_to_run, max_sequence_length, device)
            for key, embed, mask in zip(missing, embeds, masks):
                self._cache[key] = (embed.cpu(), mask.cpu())
        for key in keys:
            self._cache.move_to_end(key)
        rows = [self._cache[key] for key in keys]
        while len(self._cache) > max(self.cache_size, len(set(keys))):
            self._cache.popitem(last=False)
        return torch.stack([row[0] for row in rows]), torch.stack([row[1] for row in rows])

    @staticmethod
    @torch.no_grad()
    def _run(
        tokenizer: Any, text_encoder: nn.Module, prompts: list[str], max_sequence_length: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        input_ids, attention_mask = tokenize(tokenizer, prompts, max_sequence_length)
        model = language_model(text_encoder)
        outputs = model(
            input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), output_hidden_states=True
        )
        # (layers + 1) x (B, L, hidden) -> (B, L, hidden, layers + 1) -> (B, L, hidden * (layers + 1))
        stacked = torch.stack(outputs.hidden_states, dim=-1).flatten(2)
        return stacked.to(next(model.parameters()).dtype), attention_mask
