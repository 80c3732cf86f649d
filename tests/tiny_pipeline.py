"""A tiny LTX-2 pipeline folder written by the reference (diffusers 0.42.1), with random weights.

Every component keeps the real model's structure (split RoPE with float64 grids, learnable registers,
patch-4 causal video VAE, causal audio VAE, vocoder) at widths that run in milliseconds. The tokenizer is
a small offline word-level tokenizer with a BOS post-processor (Gemma 3's), so nothing is downloaded.

version="2.5" writes LTX-2.5's: a tiny Gemma 4 text encoder (sliding-window and full-attention layers, the full
one with a wider head) whose tokenizer adds no BOS (as Gemma 4's), connectors sized from it, the 2.5 transformer
(no video feed-forward bias, the keyframe position embedding), the duration head (diffusers' LTX2DurationHead on
the connectors' outputs), and beside the pipeline the x2 spatial and the x2 temporal latent upsamplers.
"""

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLLTX2Audio,
    AutoencoderKLLTX2Video,
    FlowMatchEulerDiscreteScheduler,
    LTX2VideoTransformer3DModel,
)
from diffusers.pipelines.ltx2 import LTX2Pipeline
from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
from diffusers.pipelines.ltx2.duration_head import LTX2DurationHead
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder, LTX2VocoderWithBWE
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    Gemma3Config,
    Gemma3ForConditionalGeneration,
    Gemma3ImageProcessorPil,
    Gemma3Processor,
    Gemma4UnifiedConfig,
    Gemma4UnifiedForConditionalGeneration,
    PreTrainedTokenizerFast,
)

from parity import perturb_
from tiny_transformer import SWITCHES, TINY

WORDS = (
    "<pad> <eos> <bos> <unk> a robot dancing in the rain beautiful sunset over ocean cat dog shaky glitchy low "
    "quality worst blurry static"
).split()
# Gemma 3's chat and image tokens, for prompt enhancement; a tiny chat template in Gemma 3's layout.
CHAT_TOKENS = ["<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<start_of_turn>' + m['role'] + ' ' }}{% if m['content'] is string %}"
    "{{ m['content'] }}{% else %}{% for item in m['content'] %}{% if item['type'] == 'image' %}{{ '<start_of_image>' }}"
    "{% else %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<end_of_turn> ' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model ' }}{% endif %}"
)
TEXT_HIDDEN, TEXT_LAYERS = TINY["caption_channels"], 2  # the transformer takes the text encoder's width
MAX_SEQUENCE_LENGTH = 16

CONNECTORS = dict(
    caption_channels=TEXT_HIDDEN, text_proj_in_factor=TEXT_LAYERS + 1, video_connector_num_attention_heads=2,
    video_connector_attention_head_dim=8, video_connector_num_layers=1, video_connector_num_learnable_registers=8,
    audio_connector_num_attention_heads=2, audio_connector_attention_head_dim=8, audio_connector_num_layers=1,
    audio_connector_num_learnable_registers=8, connector_rope_base_seq_len=32, rope_type="split",
)
VIDEO_VAE = dict(
    latent_channels=4, block_out_channels=(8, 16), decoder_block_out_channels=(8, 16), layers_per_block=(1, 1, 1),
    decoder_layers_per_block=(1, 1, 1), spatio_temporal_scaling=(True, True), decoder_spatio_temporal_scaling=(True, True),
    decoder_inject_noise=(False, False, False), down_block_types=("LTX2VideoDownBlock3D",) * 2,
    downsample_type=("spatial", "spatiotemporal"), upsample_type=("spatiotemporal", "spatial"),
    upsample_residual=(True, True), upsample_factor=(2, 2), timestep_conditioning=False, patch_size=2, patch_size_t=1,
    encoder_causal=True, decoder_causal=False, spatial_compression_ratio=8, temporal_compression_ratio=2,
)
AUDIO_VAE = dict(
    base_channels=4, output_channels=2, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=None, in_channels=2,
    resolution=32, latent_channels=2, norm_type="pixel", causality_axis="height", dropout=0.0,
    mid_block_add_attention=False, sample_rate=16000, mel_hop_length=160, is_causal=True, mel_bins=8,
)
VOCODER = dict(
    in_channels=2 * 8, hidden_channels=32, out_channels=2, upsample_kernel_sizes=[4, 4], upsample_factors=[2, 2],
    resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]], leaky_relu_negative_slope=0.1, output_sampling_rate=16000,
)
UPSAMPLER = dict(in_channels=4, mid_channels=32, num_blocks_per_stage=1)
# LTX-2.3's switches on the tiny networks besides the transformer's (tiny_transformer.SWITCHES, with the text at
# its streams' widths from the connectors' per-modality projections, see ltx_2_3_connectors): the video VAE's zero
# padding and plain upsamplers; the vocoder with bandwidth extension.
LTX_2_3_VIDEO_VAE = dict(upsample_residual=(False, False), encoder_spatial_padding_mode="zeros",
                         decoder_spatial_padding_mode="zeros")
# The tiny Gemma 4: two sliding-window layers (window 4, shorter than the prompts) and a full-attention one with
# a head twice as wide, as Gemma 4 has.
GEMMA_4_LAYERS = 3
GEMMA_4_TEXT = dict(
    vocab_size=len(WORDS), hidden_size=TEXT_HIDDEN, intermediate_size=32, num_hidden_layers=GEMMA_4_LAYERS,
    num_attention_heads=2, num_key_value_heads=1, head_dim=8, global_head_dim=16, sliding_window=4,
    max_position_embeddings=64, layer_types=["sliding_attention", "sliding_attention", "full_attention"],
)
UPSAMPLER_X2_TEMPORAL = dict(UPSAMPLER, spatial_upsample=False, temporal_upsample=True)
# LTX-2.5's duration head on the tiny connectors' outputs (as wide as the transformer's text: 16 video, 8 audio).
DURATION_HEAD = dict(video_cross_attention_dim=TINY["cross_attention_dim"],
                     audio_cross_attention_dim=TINY["audio_cross_attention_dim"], pooler_hidden_dim=16,
                     num_queries=2, num_pooler_heads=4, mlp_hidden_dim=8)
VOCODER_WITH_BWE = dict(
    in_channels=2 * 8, hidden_channels=32, upsample_kernel_sizes=[11, 4], upsample_factors=[5, 2],
    bwe_in_channels=2 * 8, bwe_hidden_channels=32, bwe_upsample_kernel_sizes=[12, 11], bwe_upsample_factors=[6, 5],
    filter_length=32, hop_length=10, window_length=32, num_mel_channels=8,
)


def ltx_2_3_connectors(transformer: dict) -> dict:
    """LTX-2.3's connectors for `transformer`: gated, and as wide per stream as its cross-attention, which the
    per-modality projections feed directly."""
    video, audio = transformer["cross_attention_dim"], transformer["audio_cross_attention_dim"]
    return dict(
        CONNECTORS, per_modality_projections=True, video_hidden_dim=video, audio_hidden_dim=audio,
        video_connector_attention_head_dim=video // CONNECTORS["video_connector_num_attention_heads"],
        audio_connector_attention_head_dim=audio // CONNECTORS["audio_connector_num_attention_heads"],
        video_gated_attn=True, audio_gated_attn=True, proj_bias=True,
    )


def make_tokenizer(chat: bool = False, bos: bool = True) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over WORDS; with `chat`, also Gemma 3's chat and image tokens and a chat template.
    Without `bos` it adds no BOS, as Gemma 4's tokenizer."""
    words = WORDS + CHAT_TOKENS if chat else WORDS
    tokenizer = Tokenizer(models.WordLevel({word: i for i, word in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos:
        tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    chat_options = dict(
        chat_template=CHAT_TEMPLATE,
        extra_special_tokens={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                              "image_token": "<image_soft_token>"},
    ) if chat else {}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        # Left padding as Gemma's tokenizer: diffusers' condition pipelines read it once, when they are built.
        model_max_length=MAX_SEQUENCE_LENGTH, padding_side="left", **chat_options,
    )
    if chat:
        tokenizer.add_special_tokens({"additional_special_tokens": CHAT_TOKENS})
    return tokenizer


def make_text_encoder(chat: bool = False) -> Gemma3ForConditionalGeneration:
    """A tiny Gemma 3 with a vision tower; with `chat`, its vocabulary also has the chat and image tokens."""
    vocabulary = {word: i for i, word in enumerate(WORDS + CHAT_TOKENS)}
    image_tokens = dict(
        image_token_index=vocabulary["<image_soft_token>"], boi_token_index=vocabulary["<start_of_image>"],
        eoi_token_index=vocabulary["<end_of_image>"],
    ) if chat else {}
    config = Gemma3Config(
        text_config=dict(
            vocab_size=len(vocabulary) if chat else len(WORDS), hidden_size=TEXT_HIDDEN, intermediate_size=32,
            num_hidden_layers=TEXT_LAYERS, num_attention_heads=2, num_key_value_heads=1, head_dim=8,
            max_position_embeddings=512 if chat else 64,
        ),
        vision_config=dict(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                           image_size=8, patch_size=4),
        mm_tokens_per_image=4,
        **image_tokens,
    )
    return Gemma3ForConditionalGeneration(config).eval()


def make_gemma_4_text_encoder() -> Gemma4UnifiedForConditionalGeneration:
    """A tiny Gemma 4 (text only: no vision or audio embedder), LTX-2.5's text encoder."""
    config = Gemma4UnifiedConfig(text_config=GEMMA_4_TEXT, vision_config=None, audio_config=None)
    return Gemma4UnifiedForConditionalGeneration(config).eval()


def ltx_2_5_connectors(transformer: dict) -> dict:
    """LTX-2.5's connectors: 2.3's layout, sized from the Gemma 4 text encoder (its width, its layers + 1)."""
    return dict(ltx_2_3_connectors(transformer), caption_channels=GEMMA_4_TEXT["hidden_size"],
                text_proj_in_factor=GEMMA_4_LAYERS + 1)


def make_processor(tokenizer: PreTrainedTokenizerFast) -> Gemma3Processor:
    """Gemma 3's processor for the tiny text encoder: 8x8 images, 4 image tokens."""
    return Gemma3Processor(Gemma3ImageProcessorPil(size={"height": 8, "width": 8}), tokenizer, image_seq_length=4)


def make_reference_pipeline(
    scheduler_config: dict | None = None, chat: bool = False, version: str = "2.0"
) -> LTX2Pipeline:
    """The reference pipeline with seeded, perturbed random weights (every table far from zero). With `chat`, its
    text encoder and tokenizer know Gemma's chat tokens and it has a processor, for prompt enhancement. With
    version="2.3", its networks have LTX-2.3's switches on; with "2.5", LTX-2.5's (and Gemma 4; no chat)."""
    later = version in ("2.3", "2.5")
    transformer = {**TINY, **SWITCHES[version]}
    video_vae = {**VIDEO_VAE, **(LTX_2_3_VIDEO_VAE if later else {})}
    connectors = ltx_2_3_connectors(transformer) if later else CONNECTORS
    if version == "2.5":
        connectors = ltx_2_5_connectors(transformer)
    components = {}
    for seed, (name, build) in enumerate([
        ("transformer", lambda: LTX2VideoTransformer3DModel(**transformer)),
        ("connectors", lambda: LTX2TextConnectors(**connectors)),
        ("vae", lambda: AutoencoderKLLTX2Video(**video_vae)),
        ("audio_vae", lambda: AutoencoderKLLTX2Audio(**AUDIO_VAE)),
        ("vocoder", lambda: LTX2VocoderWithBWE(**VOCODER_WITH_BWE) if later else LTX2Vocoder(**VOCODER)),
        ("text_encoder", lambda: make_gemma_4_text_encoder() if version == "2.5" else make_text_encoder(chat)),
        *([("duration_head", lambda: LTX2DurationHead(**DURATION_HEAD))] if version == "2.5" else []),
    ]):
        torch.manual_seed(seed)
        components[name] = perturb_(build().eval(), seed=seed, scale=0.05)
    components["vae"].latents_std.abs_().add_(0.5)
    components["audio_vae"].latents_std.abs_().add_(0.5)
    tokenizer = make_tokenizer(chat, bos=version != "2.5")
    return LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**(scheduler_config or {})),
        tokenizer=tokenizer,
        processor=make_processor(tokenizer) if chat else None,
        **components,
    )


def make_reference_upsampler(config: dict = UPSAMPLER, seed: int = 7) -> LTX2LatentUpsamplerModel:
    torch.manual_seed(seed)
    return perturb_(LTX2LatentUpsamplerModel(**config).eval(), seed=seed, scale=0.05)


def write_pipeline_folder(folder: Path, scheduler_config: dict | None = None, version: str = "2.0") -> LTX2Pipeline:
    """The reference pipeline saved to `folder`, with its x2 spatial latent upsampler in latent_upsampler/ and, for
    LTX-2.5, the x2 temporal one in temporal_latent_upsampler/ (the component name of 0.42.1's
    LTX2DFRTemporalRefinePipeline)."""
    reference = make_reference_pipeline(scheduler_config, version=version)
    reference.save_pretrained(folder)
    make_reference_upsampler().save_pretrained(folder / "latent_upsampler")
    if version == "2.5":
        make_reference_upsampler(UPSAMPLER_X2_TEMPORAL, seed=8).save_pretrained(folder / "temporal_latent_upsampler")
    return reference
