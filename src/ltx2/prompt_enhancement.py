"""Prompt enhancement: Gemma 3 rewrites a short prompt into the detailed kind LTX-2 was trained on.

LTX-2.0 and LTX-2.3 use their own text encoder for this. ltx2 loads only Gemma's language model to encode
prompts (see text.py), so the parts generation needs besides it (the LM head, tied to the token embeddings, and
for image-to-video the vision tower and its projector) are put together here for the call that asks for
enhancement and dropped afterwards: a pipeline that never enhances holds none of them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import PIL.Image
import torch
from torch import nn

from .text import _quiet_transformers

# Decoding as Lightricks' Gemma 3 enhancer runs it (ltx-core), which diffusers 0.42.1 keeps for LTX-2.0/2.3.
GENERATION_KWARGS = {"do_sample": True, "temperature": 0.7}
MAX_NEW_TOKENS = 512
SEED = 10
# The reference image is shown to Gemma with its long side at this size (before the processor's own resize).
IMAGE_LONG_SIDE = 896
# Typographic characters Gemma likes to emit, and their plain replacements.
_PLAIN = str.maketrans("\u2018\u2019\u201c\u201d\u2014\u2013\u00a0\u2032\u2212", "''\"\"-- '-")


@cache
def _system_prompt(name: str) -> str:
    return (Path(__file__).parent / "prompts" / f"{name}.txt").read_text(encoding="utf-8")


def default_system_prompt(image_to_video: bool) -> str:
    """Lightricks' system prompt for Gemma 3 enhancement (ltx-core's text, byte for byte)."""
    return _system_prompt("image_to_video" if image_to_video else "text_to_video")


def clean_response(text: str) -> str:
    """Plain quotes and dashes, and nothing before the first letter."""
    text = text.translate(_PLAIN)
    start = next((index for index, char in enumerate(text) if char.isalpha()), 0)
    return text[start:]


def enhancer_image(image: PIL.Image.Image) -> PIL.Image.Image:
    """The reference image as the enhancer sees it: RGB, long side scaled to IMAGE_LONG_SIDE (bicubic)."""
    if not isinstance(image, PIL.Image.Image):
        raise ValueError(f"image-to-video prompt enhancement needs a PIL image (or a path), got {type(image).__name__}")
    image = image.convert("RGB")
    scale = IMAGE_LONG_SIDE / max(image.size)
    size = (int(image.width * scale), int(image.height * scale))
    return image if size == image.size else image.resize(size, resample=PIL.Image.BICUBIC)


def messages(prompt: str, system_prompt: str, image: bool) -> list[dict[str, Any]]:
    """The chat Gemma answers: the system prompt, then the user's prompt (after the image, for image-to-video)."""
    if not image:
        return [{"role": "system", "content": system_prompt}, {"role": "user", "content": f"user prompt: {prompt}"}]
    user = [{"type": "image"}, {"type": "text", "text": f"User Raw Input Prompt: {prompt}."}]
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]


def left_pad(inputs: dict[str, torch.Tensor], pad_token_id: int, multiple: int = 8) -> dict[str, torch.Tensor]:
    """Left-pad one tokenized chat to a multiple of `multiple` tokens (masked out), as Lightricks' enhancer does."""
    missing = -inputs["input_ids"].shape[1] % multiple
    if missing:
        for name, value in (("input_ids", pad_token_id), ("attention_mask", 0), ("token_type_ids", 0)):
            if inputs.get(name) is not None:
                tensor = inputs[name]
                inputs[name] = torch.cat([tensor.new_full((tensor.shape[0], missing), value), tensor], dim=1)
    return inputs


def generation_model(text_encoder: nn.Module, vision: bool, device: torch.device | None = None) -> nn.Module:
    """A Gemma3ForConditionalGeneration that shares the text encoder's weights and can `generate()`.

    A full Gemma3ForConditionalGeneration is used as it is. A language model loaded by `load_text_encoder` gets the
    LM head (the token embeddings, tied) and, when `vision`, the vision tower and projector from the folder it was
    loaded from, placed on `device` (default: the text encoder's); without `vision` those stay out (text-only
    chats never run them).
    """
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, GenerationConfig

    if isinstance(text_encoder, Gemma3ForConditionalGeneration):
        return text_encoder
    folder = Path(getattr(text_encoder, "name_or_path", "") or "")
    if not (folder / "config.json").is_file():
        raise ValueError("prompt enhancement needs the text encoder's folder (its config and weights); this text "
                         "encoder was not loaded from one: pass a Gemma3ForConditionalGeneration as text_encoder")
    config = Gemma3Config.from_pretrained(folder)
    if config.text_config.vocab_size != text_encoder.config.vocab_size:
        raise ValueError(f"{folder}/config.json does not describe the loaded text encoder")
    if not getattr(config, "tie_word_embeddings", True):
        raise ValueError(f"{folder}/config.json: tie_word_embeddings=false; ltx2 builds Gemma 3's LM head from its "
                         "token embeddings (pass a Gemma3ForConditionalGeneration as text_encoder instead)")
    config.text_config = text_encoder.config
    with torch.device("meta"):
        model = Gemma3ForConditionalGeneration(config)
    model.model.language_model = text_encoder
    model.lm_head.weight = text_encoder.embed_tokens.weight  # Gemma 3 ties its LM head to the embeddings
    if vision:
        parameter = next(text_encoder.parameters())
        _load_vision(model, folder, parameter.dtype, device or parameter.device)
    else:
        model.model.vision_tower = model.model.multi_modal_projector = None
    if (folder / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(folder)
    return model.eval()


def _load_vision(model: nn.Module, folder: Path, dtype: torch.dtype, device: torch.device) -> None:
    """The vision tower and its projector from the text encoder's folder, where and as its weights are."""
    from transformers import AutoModel
    from transformers.models.gemma3.modeling_gemma3 import Gemma3MultiModalProjector

    from .loading.checkpoint import CheckpointError, TensorSource

    with _quiet_transformers():
        tower, report = AutoModel.from_pretrained(folder, config=model.config.vision_config, dtype=dtype,
                                                  key_mapping={r"^(model\.)?vision_tower\.": ""},
                                                  output_loading_info=True)
    missing = sorted(report["missing_keys"])
    if missing:
        raise CheckpointError(f"{folder}: no weights for the vision tower ({', '.join(missing[:3])}, ...), which "
                              "image-to-video prompt enhancement needs")
    with torch.device(device):
        projector = Gemma3MultiModalProjector(model.config).to(dtype)
    with TensorSource(sorted(folder.glob("*.safetensors")), str(folder)) as source:
        state = {key.rpartition("multi_modal_projector.")[2]: source.get(key) for key in source.keys()
                 if key.startswith(("model.multi_modal_projector.", "multi_modal_projector."))}
    missing = set(projector.state_dict()) - set(state)
    if missing:
        raise CheckpointError(f"{folder}: no weights for the vision projector ({', '.join(sorted(missing))}), which "
                              "image-to-video prompt enhancement needs")
    projector.load_state_dict(state)
    model.model.vision_tower, model.model.multi_modal_projector = tower.to(device).eval(), projector


def processor_for(processor: Any, tokenizer: Any, model: nn.Module) -> Any:
    """The Gemma 3 processor to tokenize chats (and prepare images) with: the pipeline's, or one built from its
    tokenizer, with the image size and token count of the model's vision config."""
    if processor is not None:
        return processor
    if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("prompt enhancement needs a chat template: the tokenizer has none; pass processor= "
                         "(a Gemma3Processor) to the pipeline")
    config = model.config
    size = config.vision_config.image_size
    with _quiet_transformers():  # also its note, on import, that without torchvision the PIL image processor runs
        from transformers import Gemma3ImageProcessor, Gemma3Processor

        images = Gemma3ImageProcessor(size={"height": size, "width": size})
        return Gemma3Processor(images, tokenizer, image_seq_length=config.mm_tokens_per_image)


@torch.no_grad()
def enhance(
    model: nn.Module,
    processor: Any,
    prompt: str,
    system_prompt: str,
    image: PIL.Image.Image | None,
    max_new_tokens: int,
    seed: int,
    generation_kwargs: dict[str, Any],
    device: torch.device,
) -> str:
    """One prompt rewritten by Gemma (sampled with its own seeded random stream; the global one is untouched).

    `image` is the first frame as `enhancer_image` prepares it, for image-to-video.
    """
    chat = processor.tokenizer.apply_chat_template(
        messages(prompt, system_prompt, image is not None), tokenize=False, add_generation_prompt=True
    )
    inputs = processor(text=chat, images=image, return_tensors="pt").to(device)
    pad = processor.tokenizer.pad_token_id
    inputs = left_pad(inputs, pad if pad is not None else 0)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        tokens = model.generate(**inputs, max_new_tokens=max_new_tokens, **generation_kwargs)
    text = processor.tokenizer.decode(tokens[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return clean_response(text)
