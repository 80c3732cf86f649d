"""A tiny LTX2Pipeline with random weights, for a smoke run that needs no download and no GPU.

`make_tiny_pipeline(folder, version=...)` writes a pipeline folder of an LTX version that
`LTX2Pipeline.from_pretrained(folder)` loads offline; with `with_loras`, a distilled LoRA and an IC-LoRA beside it. Every component has the real model's structure and rules (video compressed 32x in space and 8x in
time, audio latents at 25 per second, a 24 kHz vocoder, Gemma 3 hidden states through the connectors) at
widths that run in seconds on a laptop CPU. The weights are random: the video and audio it makes are noise.

LTX-2.5's has LTX-2.3's switches plus the 2.5 transformer, a Gemma 4 text encoder whose tokenizer adds no BOS, a
duration head that predicts about 1.5 s whatever the prompt, a diffusion decoder in diffusion_decoder/ (not in
model_index.json, as diffusers' converter writes it) and the distilled scheduler (no dynamic shifting).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from .files import atomic_write, write_text_atomic
from .models.audio_vae import AutoencoderKLLTX2Audio
from .models.connectors import LTX2TextConnectors
from .models.diffusion_decoder import LTX2VideoDiffusionDecoderModel
from .models.duration_head import LTX2DurationHead
from .models.transformer import LTX2VideoTransformer3DModel
from .models.upsampler import LTX2LatentUpsamplerModel
from .models.video_vae import AutoencoderKLLTX2Video
from .configs import LTX_2_3_VOCODER
from .models.vocoder import LTX2Vocoder, LTX2VocoderWithBWE
from .pipelines import LTX2Pipeline
from .scheduler import LTX2_DISTILLED_SCHEDULER_CONFIG, LTX2_SCHEDULER_CONFIG, FlowMatchEulerDiscreteScheduler
from .versions import LTX_2_0, LTX_2_3, LTX_2_5, RELEASES

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
# Gemma 3's chat and image tokens, so that prompt enhancement runs: a turn is <start_of_turn>ROLE ... <end_of_turn>,
# an image <start_of_image>, which the processor expands to one soft token per image embedding.
CHAT_TOKENS = ("<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>")
VOCABULARY = (*SPECIAL_TOKENS, *".,!?;:'\"-()", *"0123456789", *COMMON_WORDS.split(), *CHAT_TOKENS)
# Gemma 3's chat layout: the system prompt opens the first user turn, the assistant speaks as "model", an image is
# shown where its part stands. No BOS: the tokenizer adds it (a second one would be a token Gemma never saw there).
CHAT_TEMPLATE = (
    "{% set system = messages[0]['content'] + '\\n\\n' if messages[0]['role'] == 'system' else '' %}"
    "{% for message in messages if message['role'] != 'system' %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% if loop.first %}{{ system }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{{ '<start_of_image>' if part['type'] == 'image' else part['text'] }}{% endfor %}{% endif %}"
    "<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
MAX_SEQUENCE_LENGTH = 1024  # the pipeline's default; a multiple of the connectors' 128 registers, as in LTX-2

TEXT_HIDDEN, TEXT_LAYERS = 32, 2
TEXT_ENCODER = {
    "text_config": {
        "vocab_size": len(VOCABULARY), "hidden_size": TEXT_HIDDEN, "intermediate_size": 64,
        "num_hidden_layers": TEXT_LAYERS, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
        "max_position_embeddings": MAX_SEQUENCE_LENGTH, "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2,
    },
    # The vision tower runs only to enhance a prompt with an image: an 8x8 picture in 4 patches, 4 image tokens.
    "vision_config": {
        "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 8,
        "patch_size": 4,
    },
    "mm_tokens_per_image": 4,
    "image_token_index": VOCABULARY.index("<image_soft_token>"),
    "boi_token_index": VOCABULARY.index("<start_of_image>"), "eoi_token_index": VOCABULARY.index("<end_of_image>"),
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
# LTX-2.5's text encoder, a Gemma 4: two sliding-window layers and a full-attention one with a wider head.
GEMMA_4_LAYERS = 3
GEMMA_4_TEXT = {
    "vocab_size": len(VOCABULARY), "hidden_size": TEXT_HIDDEN, "intermediate_size": 64,
    "num_hidden_layers": GEMMA_4_LAYERS, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
    "global_head_dim": 32, "sliding_window": 64, "max_position_embeddings": MAX_SEQUENCE_LENGTH,
    "layer_types": ["sliding_attention", "sliding_attention", "full_attention"], "pad_token_id": 0,
    "eos_token_id": 1, "bos_token_id": 2,
}
# LTX-2.5's duration head over the connectors' outputs (each stream's cross-attention width).
DURATION_HEAD = {"video_cross_attention_dim": TRANSFORMER["cross_attention_dim"],
                 "audio_cross_attention_dim": TRANSFORMER["audio_cross_attention_dim"], "pooler_hidden_dim": 16,
                 "num_queries": 1, "num_pooler_heads": 2, "mlp_hidden_dim": 16}
DURATION_SECONDS = 1.5  # what the tiny head predicts, about: a length inside the default 1 to 20 s
# LTX-2.5's diffusion decoder layout (patch 4, then x2 in space, x2 in time, twice x2 in both: 32x and 8x, as the
# VAE) with few channels and 3x3x3 neighbourhoods (whose ghost frames let a 2-latent-frame video decode).
DIFFUSION_DECODER = {
    "out_channels": 3, "latent_channels": VIDEO_LATENT_CHANNELS, "patch_size": 4, "decoder_head_dim": 8,
    "decoder_stage_channels": (32, 16, 16, 8, 8), "decoder_stage_depths": (1, 1, 1, 1, 1),
    "decoder_stage_kernels": ((3, 3, 3),) * 4,
    "decoder_upsample_strides": ((1, 2, 2), (2, 1, 1), (2, 2, 2), (2, 2, 2)),
    "decoder_upsample_channel_reductions": (2, 1, 2, 1), "decoder_stage5_kernel": (3, 3, 3),
    "decoder_t_emb_dim": 16, "spatial_compression_ratio": 32, "temporal_compression_ratio": 8,
}


@dataclass(frozen=True)
class TinyVersion:
    """What an LTX version changes in the tiny pipeline: config values over the LTX-2.0 tiny configs above, the
    vocoder class and config, whether the text encoder is a Gemma 4 (LTX-2.5), the networks only some versions
    have (component name -> class and config), and the scheduler config. A later version is one more entry in
    TINY_VERSIONS."""

    transformer: dict[str, Any] = field(default_factory=dict)
    connectors: dict[str, Any] = field(default_factory=dict)
    video_vae: dict[str, Any] = field(default_factory=dict)
    vocoder: tuple[type[nn.Module], dict[str, Any]] = (LTX2Vocoder, VOCODER)
    upsampler: dict[str, Any] = field(default_factory=dict)
    # Upsamplers written beside the folder as original single files under their release names, by scale (each
    # config over UPSAMPLER, and the header config the original files carry).
    single_file_upsamplers: dict[float, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    gemma_4: bool = False
    extra_networks: dict[str, tuple[type[nn.Module], dict[str, Any]]] = field(default_factory=dict)
    scheduler: dict[str, Any] = field(default_factory=lambda: dict(LTX2_SCHEDULER_CONFIG))


# LTX-2.3 at the tiny widths: gated attention, cross-attention modulation and perturbed attention (STG); the text
# projected per stream, straight to each stream's cross-attention width; the video VAE's zero padding and plain
# upsamplers; the vocoder with bandwidth extension to 48 kHz; the sub-pixel x2 upsampler.
TINY_2_3 = TinyVersion(
        transformer={"gated_attn": True, "audio_gated_attn": True, "cross_attn_mod": True,
                     "audio_cross_attn_mod": True, "perturbed_attn": True, "use_prompt_embeddings": False},
        connectors={"per_modality_projections": True, "video_hidden_dim": TRANSFORMER["cross_attention_dim"],
                    "audio_hidden_dim": TRANSFORMER["audio_cross_attention_dim"],
                    "video_connector_attention_head_dim": TRANSFORMER["cross_attention_dim"] // 2,
                    "audio_connector_attention_head_dim": TRANSFORMER["audio_cross_attention_dim"] // 2,
                    "video_gated_attn": True, "audio_gated_attn": True, "proj_bias": True},
        video_vae={"upsample_residual": (False, False, False), "encoder_spatial_padding_mode": "zeros",
                   "decoder_spatial_padding_mode": "zeros"},
        vocoder=(LTX2VocoderWithBWE, {**LTX_2_3_VOCODER, "in_channels": 2 * MEL_BINS, "hidden_channels": 128,
                                      "bwe_in_channels": 16, "bwe_hidden_channels": 64, "num_mel_channels": 8}),
        upsampler={"use_rational_resampler": False},
        single_file_upsamplers={1.5: ({"rational_spatial_scale": 1.5, "use_rational_resampler": True},
                                      {"dims": 3, "spatial_upsample": True, "temporal_upsample": False,
                                       "spatial_scale": 1.5, "rational_resampler": True})},
)
# LTX-2.5 on top of LTX-2.3: no video feed-forward bias, the keyframe position embedding; the text of a Gemma 4
# (its layers + 1 hidden states stacked); the duration head and the diffusion decoder; the distilled scheduler.
TINY_VERSIONS = {
    LTX_2_0: TinyVersion(),
    LTX_2_3: TINY_2_3,
    LTX_2_5: dataclasses.replace(
        TINY_2_3,
        transformer={**TINY_2_3.transformer, "ff_bias": False, "use_keyframes_abs_pos_embedding": True},
        connectors={**TINY_2_3.connectors, "text_proj_in_factor": GEMMA_4_LAYERS + 1},
        gemma_4=True,
        extra_networks={"duration_head": (LTX2DurationHead, DURATION_HEAD),
                        "diffusion_decoder": (LTX2VideoDiffusionDecoderModel, DIFFUSION_DECODER)},
        scheduler=dict(LTX2_DISTILLED_SCHEDULER_CONFIG),
        single_file_upsamplers={},  # LTX-2.5 has no x1.5 upsampler
    ),
}
IC_LORA_FILE = "tiny-ic-lora.safetensors"  # an IC-LoRA asking for references at half size


def make_tiny_pipeline(folder: str | Path, seed: int = 0, version: str = LTX_2_0, with_loras: bool = False) -> Path:
    """Write a tiny LTX2Pipeline of LTX `version` with random weights drawn from `seed` to `folder` and return its
    path. With `with_loras`, random LoRAs in Lightricks' original format go beside it: the version's distilled
    LoRA (under its release file name, so that the two-stage preset finds it) and an IC-LoRA (IC_LORA_FILE).

    `folder` is created if missing; an existing non-empty folder is only overwritten if it holds a tiny pipeline.
    """
    if version not in TINY_VERSIONS:
        raise ValueError(f"version {version!r}: ltx2 makes tiny pipelines of LTX {', '.join(TINY_VERSIONS)}")
    folder = Path(folder)
    _check_target(folder)
    pipeline = _build_pipeline(seed, TINY_VERSIONS[version])
    # As diffusers' converter writes an LTX-2.5 folder: the diffusion decoder in its subfolder, not in the index.
    decoder, pipeline.diffusion_decoder = pipeline.diffusion_decoder, None
    pipeline.save_pretrained(folder)
    if decoder is not None:
        decoder.save_pretrained(folder / "diffusion_decoder")
    _build_upsampler(seed, TINY_VERSIONS[version].upsampler).save_pretrained(folder / "latent_upsampler")
    for scale, (config, header) in TINY_VERSIONS[version].single_file_upsamplers.items():
        state = {key: value.contiguous() for key, value in _build_upsampler(seed, config).state_dict().items()}
        metadata = {"config": json.dumps(header)}
        target = folder / RELEASES[version].upsamplers[scale]
        atomic_write(target, lambda name, state=state, metadata=metadata: save_file(state, name, metadata=metadata))
    if with_loras:
        generator = torch.Generator().manual_seed(seed + 2)
        _save_lora(pipeline.transformer, folder / RELEASES[version].distilled_lora, generator, {})
        _save_lora(pipeline.transformer, folder / IC_LORA_FILE, generator, {"reference_downscale_factor": "2"})
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    index = {name: entry for name, entry in index.items() if name != "diffusion_decoder"}
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


def _build_pipeline(seed: int, version: TinyVersion) -> LTX2Pipeline:
    """The tiny pipeline in memory, float32, weights drawn from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    vocoder, vocoder_config = version.vocoder
    builders = {
        "transformer": lambda: LTX2VideoTransformer3DModel(**{**TRANSFORMER, **version.transformer}),
        "connectors": lambda: LTX2TextConnectors(**{**CONNECTORS, **version.connectors}),
        "vae": lambda: AutoencoderKLLTX2Video(**{**VIDEO_VAE, **version.video_vae}),
        "audio_vae": lambda: AutoencoderKLLTX2Audio(**AUDIO_VAE),
        "vocoder": lambda: vocoder(**vocoder_config),
        "text_encoder": _gemma_4_text_encoder if version.gemma_4 else _text_encoder,
        **{name: (lambda network=network, config=config: network(**config))
           for name, (network, config) in version.extra_networks.items()},
    }
    components = {}
    for name, build in builders.items():
        # Constructors initialise from the global RNG; fork it so the caller's random state is left alone.
        with torch.random.fork_rng(devices=[]):
            module = build()
        components[name] = _randomize_(module.to(torch.float32).eval(), generator)
    if "duration_head" in components:
        _predict_about_(components["duration_head"], DURATION_SECONDS)
    scheduler = FlowMatchEulerDiscreteScheduler(**version.scheduler)
    return LTX2Pipeline(scheduler=scheduler, tokenizer=_tokenizer(bos=not version.gemma_4), **components)


@torch.no_grad()
def _predict_about_(head: nn.Module, seconds: float) -> None:
    """Make the duration head predict about `seconds` whatever the prompt (its last layer nearly constant)."""
    head.mlp_out.weight.mul_(0.01)
    head.mlp_out.bias.fill_(math.log(seconds))


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


def _build_upsampler(seed: int, config: dict[str, Any]) -> LTX2LatentUpsamplerModel:
    """A tiny latent upsampler (`config` over UPSAMPLER), so that the two-stage flow runs on the tiny pipeline too."""
    with torch.random.fork_rng(devices=[]):
        module = LTX2LatentUpsamplerModel(**{**UPSAMPLER, **config})
    return _randomize_(module.eval(), torch.Generator().manual_seed(seed + 1))


def _save_lora(transformer: nn.Module, path: Path, generator: torch.Generator, metadata: dict[str, str]) -> None:
    """A rank-2 LoRA in the original layout (diffusion_model.*) on every attention's query projection."""
    tensors = {}
    for name, module in transformer.named_modules():
        if name.endswith(".to_q") and isinstance(module, nn.Linear):
            key = f"diffusion_model.{name}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(2, module.in_features, generator=generator) * 0.1
            tensors[f"{key}.lora_B.weight"] = torch.randn(module.out_features, 2, generator=generator) * 0.1
    atomic_write(path, lambda name: save_file(tensors, name, metadata={"format": "pt", **metadata}))


def _text_encoder() -> nn.Module:
    """A tiny Gemma 3 (text and vision), the checkpoint class of LTX-2's text encoder."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    return Gemma3ForConditionalGeneration(Gemma3Config(**TEXT_ENCODER))


def _gemma_4_text_encoder() -> nn.Module:
    """A tiny Gemma 4 (text only), the checkpoint class of LTX-2.5's text encoder."""
    from transformers import Gemma4UnifiedConfig, Gemma4UnifiedForConditionalGeneration

    config = Gemma4UnifiedConfig(text_config=GEMMA_4_TEXT, vision_config=None, audio_config=None)
    return Gemma4UnifiedForConditionalGeneration(config)


def _tokenizer(bos: bool = True) -> Any:
    """A lowercase word-level tokenizer over VOCABULARY that prepends <bos> as Gemma 3's does (with `bos`; Gemma 4's
    adds none), with Gemma 3's chat template and image tokens; built offline."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    ids = {token: i for i, token in enumerate(VOCABULARY)}
    tokenizer = Tokenizer(models.WordLevel(ids, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos:
        special = [("<bos>", ids["<bos>"])]
        tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=special)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        model_max_length=MAX_SEQUENCE_LENGTH, chat_template=CHAT_TEMPLATE,
        extra_special_tokens={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                              "image_token": "<image_soft_token>"},
    )
    # Whole tokens, never split at their brackets by the word pre-tokenizer (nor lowercased).
    tokenizer.add_special_tokens({"additional_special_tokens": list(CHAT_TOKENS)})
    return tokenizer
