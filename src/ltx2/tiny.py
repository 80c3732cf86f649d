"""A tiny LTX2Pipeline with random weights, for a smoke run that needs no download and no GPU.

`make_tiny_pipeline(folder)` writes a pipeline folder that `LTX2Pipeline.from_pretrained(folder)` loads
offline. Every component has the real model's structure and rules (video compressed 32x in space and 8x in
time, audio latents at 25 per second, a 24 kHz vocoder, Gemma 3 hidden states through the connectors) at
widths that run in seconds on a laptop CPU. The weights are random: the video and audio it makes are noise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .files import write_text_atomic
from .models.audio_vae import AutoencoderKLLTX2Audio
from .models.connectors import LTX2TextConnectors
from .models.transformer import LTX2VideoTransformer3DModel
from .models.upsampler import LTX2LatentUpsamplerModel
from .models.video_vae import AutoencoderKLLTX2Video
from .models.vocoder import LTX2Vocoder
from .pipelines import LTX2Pipeline
from .scheduler import LTX2_SCHEDULER_CONFIG, FlowMatchEulerDiscreteScheduler

MARKER = "_ltx2_tiny_random"

README = """\
Tiny LTX-2 pipeline with RANDOM weights, written by ltx2.tiny.make_tiny_pipeline.

This is not a model. It has the structure of LTX-2 (same latent compression, sample rates and input rules)
at a tiny width, so that LTX2Pipeline.from_pretrained(<this folder>) and a full generation can be tried
offline on a CPU in seconds. Whatever the prompt, the video and the audio it produces are noise.
"""

# Common English words, so that arbitrary prompts tokenize into mostly known words; the rest become <unk>.
COMMON_WORDS = """
a about above across after again against air all alone along always an and angle animal any are arm around as
at autumn away baby back background bad ball beach beautiful bed before behind below between big bird black
blue blurry boat body book bottom box boy bread bridge bright brown building but by cake calm camera can car
carefully cat chair child city clear close closeup cloud cold color come cup dance dancing dark day deep desert
detailed dinner distance do dog door down dress drink drive during each ear early earth eat empty end evening
every eye face fall far fast field fire fish floor flower fly fog food for forest free from front full game
garden girl glass glitchy go gold good grass gray green ground group hair hand happy hat he head hear her here
high hill him his hold home horse hot house how i ice in inside into is it its jump just keep kitchen lake lamp
large late laugh leaf left light like little long look loud love low man many market moon morning motion
mountain mouth move music my near neon new night no noise not now ocean of off old on one open or orange other
our out outside over paint paper park people person piano picture pink place plant play quality quick quiet
rain red ride right river road robot rock room run sad sand say sea seen shadow shaky she shirt shot shoulder
sing sit sky slow slowly small smile snow soft song sound speak spring stand star static still stone street
strong summer sun sunset sweet table talk tall tea the their them then there they this through to together top
toward town train tree under up very video view walk wall warm water wave way we wear wet white wide wind window
winter with woman wood world worst yellow you young
"""
SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>")
VOCABULARY = (*SPECIAL_TOKENS, *".,!?;:'\"-()", *"0123456789", *COMMON_WORDS.split())
MAX_SEQUENCE_LENGTH = 1024  # the pipeline's default; a multiple of the connectors' 128 registers, as in LTX-2

TEXT_HIDDEN, TEXT_LAYERS = 32, 2
TEXT_ENCODER = {
    "text_config": {
        "vocab_size": len(VOCABULARY), "hidden_size": TEXT_HIDDEN, "intermediate_size": 64,
        "num_hidden_layers": TEXT_LAYERS, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
        "max_position_embeddings": MAX_SEQUENCE_LENGTH, "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2,
    },
    # The vision tower is never run (ltx2 loads only the language model) but the checkpoint class has one.
    "vision_config": {
        "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 8,
        "patch_size": 4,
    },
    "mm_tokens_per_image": 4,
}
# Heads x head_dim must be TEXT_HIDDEN: the connectors work at the text encoder's width.
CONNECTORS = {
    "caption_channels": TEXT_HIDDEN, "text_proj_in_factor": TEXT_LAYERS + 1,
    "video_connector_num_attention_heads": 2, "video_connector_attention_head_dim": 16,
    "video_connector_num_layers": 1, "video_connector_num_learnable_registers": 128,
    "audio_connector_num_attention_heads": 2, "audio_connector_attention_head_dim": 16,
    "audio_connector_num_layers": 1, "audio_connector_num_learnable_registers": 128,
    "connector_rope_base_seq_len": 4096, "rope_type": "split",
}
# LTX-2's video VAE layout (patch 4, then spatial, temporal and two spatiotemporal halvings: 32x space, 8x time)
# at 1/16 of its widths, with one resnet per block.
VIDEO_LATENT_CHANNELS = 8
VIDEO_VAE = {
    "latent_channels": VIDEO_LATENT_CHANNELS, "patch_size": 4,
    "block_out_channels": (16, 32, 64, 128), "layers_per_block": (1, 1, 1, 1, 1),
    "downsample_type": ("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
    "spatio_temporal_scaling": (True, True, True, True),
    "decoder_block_out_channels": (16, 32, 64), "decoder_layers_per_block": (1, 1, 1, 1),
    "upsample_type": ("spatiotemporal",) * 3, "decoder_spatio_temporal_scaling": (True, True, True),
    "decoder_inject_noise": (False,) * 4, "upsample_residual": (True, True, True), "upsample_factor": (2, 2, 2),
    "timestep_conditioning": False, "spatial_compression_ratio": 32, "temporal_compression_ratio": 8,
}
# LTX-2's audio VAE layout: 16 kHz, hop 160, three levels (4x in time and mel). Its latents_mean/std are
# sized base_channels, which must equal the packed latent width latent_channels * mel_bins / 4.
AUDIO_LATENT_CHANNELS, MEL_BINS = 4, 16
AUDIO_LATENT_WIDTH = AUDIO_LATENT_CHANNELS * MEL_BINS // 4
AUDIO_VAE = {
    "base_channels": AUDIO_LATENT_WIDTH, "output_channels": 2, "ch_mult": (1, 2, 4), "num_res_blocks": 1,
    "in_channels": 2, "latent_channels": AUDIO_LATENT_CHANNELS, "mel_bins": MEL_BINS, "sample_rate": 16000,
    "mel_hop_length": 160, "causality_axis": "height", "is_causal": True,
}
# LTX-2's vocoder layout: x240 upsampling to 24 kHz, so that 240 samples at 24 kHz last as long as one 160-sample
# mel hop at 16 kHz and the audio is as long as the video.
VOCODER = {
    "in_channels": 2 * MEL_BINS, "hidden_channels": 64, "out_channels": 2,
    "upsample_kernel_sizes": (16, 15, 8, 4, 4), "upsample_factors": (6, 5, 2, 2, 2),
    "resnet_kernel_sizes": (3, 7, 11), "resnet_dilations": ((1, 3, 5),) * 3, "output_sampling_rate": 24000,
}
# cross_attention_dim is each stream's own width (text is projected to it); both streams need the same head count.
TRANSFORMER = {
    "in_channels": VIDEO_LATENT_CHANNELS, "out_channels": VIDEO_LATENT_CHANNELS,
    "num_attention_heads": 2, "attention_head_dim": 16, "cross_attention_dim": 32,
    "audio_in_channels": AUDIO_LATENT_WIDTH, "audio_out_channels": AUDIO_LATENT_WIDTH,
    "audio_num_attention_heads": 2, "audio_attention_head_dim": 8, "audio_cross_attention_dim": 16,
    "num_layers": 2, "caption_channels": TEXT_HIDDEN, "rope_type": "split",
}
# LTX-2's spatial x2 upsampler (rational resampler) on the tiny video latents.
UPSAMPLER = {"in_channels": VIDEO_LATENT_CHANNELS, "mid_channels": 32, "num_blocks_per_stage": 1}
BIAS_STD = 0.02  # small random biases: non-trivial, without shifting activations far from zero


def make_tiny_pipeline(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny LTX2Pipeline with random weights drawn from `seed` to `folder` and return its path.

    `folder` is created if missing; an existing non-empty folder is only overwritten if it holds a tiny pipeline.
    """
    folder = Path(folder)
    _check_target(folder)
    _build_pipeline(seed).save_pretrained(folder)
    _build_upsampler(seed).save_pretrained(folder / "latent_upsampler")
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    write_text_atomic(index_path, json.dumps({**index, MARKER: True}, indent=2) + "\n")
    write_text_atomic(folder / "README.txt", README)
    return folder


def is_tiny_pipeline(folder: str | Path) -> bool:
    """Whether `folder` holds a pipeline written by make_tiny_pipeline (its model_index.json has the marker)."""
    try:
        index = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return False
    return isinstance(index, dict) and index.get(MARKER) is True


def _check_target(folder: Path) -> None:
    """Refuse to write over anything but an empty folder or an earlier tiny pipeline."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file; make_tiny_pipeline needs a folder")
    if folder.exists() and any(folder.iterdir()) and not is_tiny_pipeline(folder):
        raise ValueError(f"{folder} is not empty and does not hold a tiny pipeline; choose an empty or new folder")


def _build_pipeline(seed: int) -> LTX2Pipeline:
    """The tiny pipeline in memory, float32, weights drawn from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    builders = {
        "transformer": lambda: LTX2VideoTransformer3DModel(**TRANSFORMER),
        "connectors": lambda: LTX2TextConnectors(**CONNECTORS),
        "vae": lambda: AutoencoderKLLTX2Video(**VIDEO_VAE),
        "audio_vae": lambda: AutoencoderKLLTX2Audio(**AUDIO_VAE),
        "vocoder": lambda: LTX2Vocoder(**VOCODER),
        "text_encoder": _text_encoder,
    }
    components = {}
    for name, build in builders.items():
        # Constructors initialise from the global RNG; fork it so the caller's random state is left alone.
        with torch.random.fork_rng(devices=[]):
            module = build()
        components[name] = _randomize_(module.to(torch.float32).eval(), generator)
    scheduler = FlowMatchEulerDiscreteScheduler(**LTX2_SCHEDULER_CONFIG)
    return LTX2Pipeline(scheduler=scheduler, tokenizer=_tokenizer(), **components)


@torch.no_grad()
def _randomize_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Redraw every weight matrix and bias from `generator`, in place; norm scales and latent statistics keep
    their constructed constants (ones and zeros), so the result depends on the generator alone.

    Matrices get std 1/sqrt(fan_in), which keeps activations near unit scale through the random layers.
    """
    for name, tensor in module.state_dict(keep_vars=True).items():
        if not tensor.is_floating_point():
            continue
        if tensor.ndim >= 2:
            std = tensor[0].numel() ** -0.5
        elif name.endswith("bias"):
            std = BIAS_STD
        else:
            continue
        tensor.copy_(torch.randn(tensor.shape, generator=generator) * std)
    return module


def _build_upsampler(seed: int) -> LTX2LatentUpsamplerModel:
    """A tiny x2 spatial latent upsampler, so that the two-stage flow runs on the tiny pipeline too."""
    with torch.random.fork_rng(devices=[]):
        module = LTX2LatentUpsamplerModel(**UPSAMPLER)
    return _randomize_(module.eval(), torch.Generator().manual_seed(seed + 1))


def _text_encoder() -> nn.Module:
    """A tiny Gemma 3 (text and vision), the checkpoint class of LTX-2's text encoder."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    return Gemma3ForConditionalGeneration(Gemma3Config(**TEXT_ENCODER))


def _tokenizer() -> Any:
    """A lowercase word-level tokenizer over VOCABULARY that prepends <bos>, as Gemma's does; built offline."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    ids = {token: i for i, token in enumerate(VOCABULARY)}
    tokenizer = Tokenizer(models.WordLevel(ids, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    bos = ("<bos>", ids["<bos>"])
    tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[bos])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        model_max_length=MAX_SEQUENCE_LENGTH,
    )
