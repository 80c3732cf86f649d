"""What the pipeline tests share: the tiny calls of each LTX version, a test picture, a random LoRA."""

import numpy as np
import PIL.Image
import torch


CALL = dict(
    prompt="a robot dancing in the rain", negative_prompt="blurry low quality", height=32, width=32, num_frames=9,
    frame_rate=25.0, num_inference_steps=3, guidance_scale=4.0, max_sequence_length=16,
)


def make_lora(transformer, path, rank: int = 4):
    """A diffusers-format LoRA on every attention projection of the transformer, with random A and B."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(11)
    tensors = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in ("to_q", "to_k", "to_v", "0"):
            tensors[f"transformer.{name}.lora_A.weight"] = torch.randn(rank, module.in_features, generator=generator) * 0.1
            tensors[f"transformer.{name}.lora_B.weight"] = torch.randn(module.out_features, rank, generator=generator) * 0.1
    save_file(tensors, str(path))
    return path


def photo(height: int = 44, width: int = 58) -> PIL.Image.Image:
    """A smooth picture with some texture, of another size (and aspect) than the 32x32 video."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([128 + 100 * np.sin(x / 7), 128 + 100 * np.cos(y / 5), (x * y) % 256], axis=-1)
    noise = np.random.default_rng(3).normal(0, 12, rgb.shape)
    return PIL.Image.fromarray(np.clip(rgb + noise, 0, 255).astype(np.uint8))


# Small and short; the only non-default: an STG block that exists in the two-block tiny model.
LTX_2_3_CALL = dict(
    prompt="a robot dancing in the rain", negative_prompt="blurry low quality", height=32, width=32, num_frames=9,
    frame_rate=25.0, num_inference_steps=3, max_sequence_length=16, spatio_temporal_guidance_blocks=[1],
)
