"""The one key map from Lightricks' original LTX-2 checkpoints to ltx2's (diffusers-layout) state dicts.

An original single file (`ltx-2-19b-dev.safetensors`, `ltx-2.3-22b-dev.safetensors`, `-distilled`, their fp8
variants, and LTX-2.5's in the combined layout diffusers' converter reads with `--version 2.5`) holds every network
under a prefix; the latent upsamplers and the LoRAs are separate files:

| original key (version where one)                     | component   | ltx2 key                                 |
|------------------------------------------------------|-------------|------------------------------------------|
| `model.diffusion_model.<path>`                       | transformer | `<path>`, TRANSFORMER_RENAMES            |
| `model.diffusion_model.{video,audio}_embeddings_connector.<path>` | connectors | `{video,audio}_connector.<path>` |
| `[model.diffusion_model.]text_embedding_projection.` |             |                                          |
|   `aggregate_embed.*` (2.0)                          | connectors  | `text_proj_in.*`                         |
|   `{video,audio}_aggregate_embed.*` (2.3)            | connectors  | `{video,audio}_text_proj_in.*`           |
| `vae.<path>`                                         | vae         | blocks regrouped (below), statistics     |
| `audio_vae.<path>`                                   | audio_vae   | `<path>`, statistics renamed             |
| `vocoder.<path>` (2.0: one generator)                | vocoder     | `<path>`, GENERATOR_RENAMES              |
| `vocoder.{vocoder,bwe_generator}.<path>` (2.3)       | vocoder     | the same prefix, GENERATOR_RENAMES       |
| `vocoder.mel_stft.<path>` (2.3)                      | vocoder     | `mel_stft.<path>` unchanged              |
| `duration_head.<path>` (2.5)                         | duration_head | `<path>`, DURATION_HEAD_RENAMES; its |
|                                                      |             | fused `cross_attn.in_proj_*` split in 3  |
| `vae.decoder.<path>` (2.5, a diffusion decoder)      | diffusion_decoder | `decoder.<path>`, renamed as     |
|                                                      |             | DIFFUSION_DECODER_RENAMES; fused         |
|                                                      |             | `.attn.qkv.*` split in 3, gates folded   |
| `vae.per_channel_statistics.*` (beside it)           | diffusion_decoder | `latents_mean` / `latents_std`   |
| `<path>` (an upsampler's own file)                   | upsampler   | `<path>` unchanged                       |
| `diffusion_model.<path>.lora_{A,B}.weight` (LoRA)    | transformer | `<path>` renamed as the transformer's    |

In the original video VAE the encoder is a flat list `down_blocks.0..2n` alternating ResNet groups and
downsamplers (ending in the mid block), and the decoder a flat list `up_blocks.0..2m` starting with the mid
block and alternating upsamplers and ResNet groups (LTX-2.0: m = 3, LTX-2.3: m = 4); diffusers nests each
sampler inside its block. Per-channel latent statistics become `latents_mean` / `latents_std`; the two unused
statistics are dropped. A vocoder generator (LTX-2.0's, and both of LTX-2.3's) renames its leading module
(`ups` -> `upsamplers`, `resblocks` -> `resnets`, `conv_pre` / `conv_post` / `act_post` -> `conv_in` /
`conv_out` / `act_out`) and drops the `lowpass` level of its anti-aliasing downsamplers
(`acts1.0.downsample.lowpass.filter` -> `acts1.0.downsample.filter`).
FP8 checkpoints add `<weight>_scale` / `input_scale` siblings, which the loader consumes (see single_file.py).

LTX-2.5's duration head and diffusion decoder follow diffusers' converter (`--version 2.5`, `--duration_head`,
`--diffusion_vae`). The duration head's pooler is a `torch.nn.MultiheadAttention` in the original (q, k, v fused in
`in_proj_*`, rows in that order; `out_proj`). A diffusion decoder sits where the conv decoder would, under
`vae.decoder.` (its `det_stages` mark it): its attentions fuse q, k, v in one `qkv` Linear, its timestep MLP is
`t_embedder.mlp.{0,2}`; a distilled file may hold static gates (`<block>.gate_msa`, `.gate_mlp`, `.gate_ctx`), each
folded into the Linear it gates (rows scaled, in float32, back to the stored dtype) since the decoder's residuals
are ungated, and preview heads (`coarse_*`), which are no part of the decoder. Such a file's `vae.encoder.*` belongs
to no network ltx2 builds from it (the conv VAE needs its decoder), so it is left out, as the converter leaves it.
Tensors made from part of one (a third of a fused projection) or from two (a folded gate) are `Piece`s.

LTX-2.5's transformer keys are LTX-2.3's (its video feed-forward has no biases, and since 2.5.1 it holds
`keyframes_abs_pos_embedding`, a name kept as is); its connectors, audio VAE and vocoder keys are LTX-2.3's.

Some keys exist in the files of some LTX versions only (VERSION_KEYS, MARKED_VERSIONS); a file holding keys of
versions that exclude each other is refused.
"""

from __future__ import annotations

import re
from typing import NamedTuple

TRANSFORMER_PREFIX = "model.diffusion_model."
LORA_PREFIX = "diffusion_model."
CONNECTOR_ROOTS = ("video_embeddings_connector.", "audio_embeddings_connector.", "text_embedding_projection.")
QUANTIZATION_SUFFIXES = ("weight_scale", "input_scale")

# Substring replacements, in this order: the longer AdaLN names must go before any shorter one they contain.
TRANSFORMER_RENAMES = (
    ("patchify_proj", "proj_in"),
    ("av_ca_video_scale_shift_adaln_single", "av_cross_attn_video_scale_shift"),
    ("av_ca_a2v_gate_adaln_single", "av_cross_attn_video_a2v_gate"),
    ("av_ca_audio_scale_shift_adaln_single", "av_cross_attn_audio_scale_shift"),
    ("av_ca_v2a_gate_adaln_single", "av_cross_attn_audio_v2a_gate"),
    ("scale_shift_table_a2v_ca_video", "video_a2v_cross_attn_scale_shift_table"),
    ("scale_shift_table_a2v_ca_audio", "audio_a2v_cross_attn_scale_shift_table"),
    ("q_norm", "norm_q"),
    ("k_norm", "norm_k"),
    ("prompt_adaln_single", "prompt_adaln"),  # LTX-2.3's (audio_)prompt_adaln_single
)
# The two main timestep embedders are renamed by prefix only: their names are substrings of the ones above.
TRANSFORMER_PREFIX_RENAMES = (("adaln_single.", "time_embed."), ("audio_adaln_single.", "audio_time_embed."))
CONNECTOR_RENAMES = (
    ("text_embedding_projection.aggregate_embed", "text_proj_in"),
    ("text_embedding_projection.video_aggregate_embed", "video_text_proj_in"),
    ("text_embedding_projection.audio_aggregate_embed", "audio_text_proj_in"),
    ("video_embeddings_connector", "video_connector"),
    ("audio_embeddings_connector", "audio_connector"),
    ("transformer_1d_blocks", "transformer_blocks"),
    ("q_norm", "norm_q"),
    ("k_norm", "norm_k"),
)
# A generator's leading module; then its anti-aliased activations' downsamplers lose a level.
GENERATOR_RENAMES = (("ups.", "upsamplers."), ("resblocks.", "resnets."), ("conv_pre.", "conv_in."),
                     ("conv_post.", "conv_out."), ("act_post.", "act_out."))
GENERATOR_DOWNSAMPLER = (".downsample.lowpass.", ".downsample.")
# LTX-2.3's vocoder: two generators (16 kHz, then the bandwidth extension to 48 kHz) and the mel filters between.
VOCODER_GENERATORS = ("vocoder.", "bwe_generator.")
STATISTICS_RENAMES = (
    ("per_channel_statistics.mean-of-means", "latents_mean"),
    ("per_channel_statistics.std-of-means", "latents_std"),
)
DROPPED_STATISTICS = ("per_channel_statistics.channel", "per_channel_statistics.mean-of-stds")
VIDEO_VAE_RENAMES = (
    ("res_blocks.", "resnets."),
    ("last_time_embedder.", "time_embedder."),
    ("last_scale_shift_table", "scale_shift_table"),
)
DURATION_HEAD_PREFIX = "duration_head."
# Components a pipeline may lack (LTX-2.5's): a file without them loads with them None.
OPTIONAL_COMPONENTS = ("duration_head", "diffusion_decoder")
DURATION_HEAD_RENAMES = (("attention_pooler.cross_attn.out_proj.", "attention_pooler.to_out."),)
DURATION_HEAD_FUSED = "attention_pooler.cross_attn.in_proj_"  # + weight / bias
# The fused projections' row blocks, in their order, and where each goes (a prefix + weight / bias).
DURATION_HEAD_SPLIT = ("attention_pooler.to_q.", "attention_pooler.to_k.", "attention_pooler.to_v.")
DIFFUSION_DECODER_MARKER = "vae.decoder.det_stages."
DIFFUSION_DECODER_RENAMES = (
    ("t_embedder.mlp.0.", "t_embedder.timestep_embedder.linear_1."),
    ("t_embedder.mlp.2.", "t_embedder.timestep_embedder.linear_2."),
    (".attn.proj.", ".attn.to_out.0."),
    (".attn.q_norm.", ".attn.norm_q."),
    (".attn.k_norm.", ".attn.norm_k."),
)
# Each gated Linear's parameters (renamed) and the gate beside them in the same block.
DIFFUSION_DECODER_GATES = {
    ".attn.to_out.0.weight": ".gate_msa", ".attn.to_out.0.bias": ".gate_msa", ".mlp.w_down.weight": ".gate_mlp",
    ".context_proj.weight": ".gate_ctx", ".context_proj.bias": ".gate_ctx",
}
DIFFUSION_DECODER_FUSED = ".attn.qkv."  # + weight / bias, split into to_q, to_k, to_v
# Original keys (with `model.diffusion_model.` removed) that mark an LTX version's files: LTX-2.3 moved the caption
# projections into the connectors, one per stream, and added bandwidth extension to the vocoder (LTX-2.5 keeps
# both); LTX-2.5 added the keyframe marker and the duration head.
VERSION_KEYS = {
    "2.0": ("text_embedding_projection.aggregate_embed.", "caption_projection.", "audio_caption_projection.",
            "vocoder.conv_pre."),
    "2.3": ("text_embedding_projection.video_aggregate_embed.", "text_embedding_projection.audio_aggregate_embed.",
            "vocoder.vocoder.", "vocoder.bwe_generator.", "vocoder.mel_stft."),
    "2.5": ("keyframes_abs_pos_embedding", DURATION_HEAD_PREFIX, DIFFUSION_DECODER_MARKER),
}
# The versions whose files may hold each version's marker keys.
MARKED_VERSIONS = {"2.0": ("2.0",), "2.3": ("2.3", "2.5"), "2.5": ("2.5",)}
# LTX-2.5's video feed-forward has no biases: a file with the first block's weight and without its bias is 2.5's.
VIDEO_FF_WEIGHT = TRANSFORMER_PREFIX + "transformer_blocks.0.ff.net.0.proj.weight"
_VAE_BLOCK = re.compile(r"^(encoder\.down_blocks|decoder\.up_blocks)\.(\d+)\.")


class Piece(NamedTuple):
    """An ltx2 tensor that is not one original tensor as stored: row block `index` of `parts` equal blocks of
    `original` (a fused projection), and/or `original` with each output row scaled by the vector `gate`."""

    original: str
    index: int = 0
    parts: int = 1
    gate: str | None = None


def original_keys(names: dict[str, str | Piece]) -> list[str]:
    """The original keys that a component's {ltx2 key: original key or Piece} reads, each once."""
    found: dict[str, None] = {}
    for name in names.values():
        if isinstance(name, Piece):
            found.update(dict.fromkeys(key for key in (name.original, name.gate) if key))
        else:
            found[name] = None
    return list(found)


def _replace_all(name: str, renames: tuple[tuple[str, str], ...]) -> str:
    for old, new in renames:
        name = name.replace(old, new)
    return name


def _replace_leading(name: str, renames: tuple[tuple[str, str], ...]) -> str:
    for old, new in renames:
        if name.startswith(old):
            return new + name.removeprefix(old)
    return name


def is_connector_key(name: str) -> bool:
    """Whether a key (with its `model.diffusion_model.` / `diffusion_model.` prefix removed) is a connector's."""
    return name.startswith(CONNECTOR_ROOTS)


def transformer_key(name: str) -> str:
    """The ltx2 transformer key of an original DiT key (prefix already removed)."""
    return _replace_leading(_replace_all(name, TRANSFORMER_RENAMES), TRANSFORMER_PREFIX_RENAMES)


def connector_key(name: str) -> str:
    """The ltx2 connectors key of an original connector or text-projection key (prefix already removed)."""
    return _replace_all(name, CONNECTOR_RENAMES)


def video_vae_key(name: str, num_down_blocks: int) -> str:
    """The ltx2 video VAE key of an original `vae.` key (prefix removed), for a VAE with `num_down_blocks`."""
    match = _VAE_BLOCK.match(name)
    if match:
        group, index = match.group(1), int(match.group(2))
        rest = name[match.end():]
        if group == "encoder.down_blocks":
            stage, is_sampler = divmod(index, 2)
            block = "encoder.mid_block" if index == 2 * num_down_blocks else f"encoder.down_blocks.{stage}"
            name = f"{block}.downsamplers.0.{rest}" if is_sampler else f"{block}.{rest}"
        elif index == 0:
            name = f"decoder.mid_block.{rest}"
        else:
            stage, is_group = divmod(index - 1, 2)
            block = f"decoder.up_blocks.{stage}"
            name = f"{block}.{rest}" if is_group else f"{block}.upsamplers.0.{rest}"
    return _replace_all(_replace_all(name, STATISTICS_RENAMES), VIDEO_VAE_RENAMES)


def audio_vae_key(name: str) -> str:
    """The ltx2 audio VAE key of an original `audio_vae.` key (prefix removed)."""
    return _replace_all(name, STATISTICS_RENAMES)


def vocoder_key(name: str) -> str:
    """The ltx2 vocoder key of an original `vocoder.` key (prefix removed): LTX-2.0's `conv_pre.weight`, or
    LTX-2.3's `vocoder.conv_pre.weight`, `bwe_generator.ups.0.weight`, `mel_stft.mel_basis`."""
    if name.startswith("mel_stft."):
        return name
    generator = next((prefix for prefix in VOCODER_GENERATORS if name.startswith(prefix)), "")
    path = _replace_leading(name.removeprefix(generator), GENERATOR_RENAMES)
    return generator + path.replace(*GENERATOR_DOWNSAMPLER)


def duration_head_names(keys: list[str]) -> dict[str, str | Piece]:
    """{ltx2 key: original key or Piece} of the `duration_head.` keys among `keys`."""
    names: dict[str, str | Piece] = {}
    for original in keys:
        name = original.removeprefix(DURATION_HEAD_PREFIX)
        if name.startswith(DURATION_HEAD_FUSED):
            leaf = name.removeprefix(DURATION_HEAD_FUSED)
            for index, target in enumerate(DURATION_HEAD_SPLIT):
                names[target + leaf] = Piece(original, index, len(DURATION_HEAD_SPLIT))
        else:
            names[_replace_all(name, DURATION_HEAD_RENAMES)] = original
    return names


def diffusion_decoder_names(keys: list[str]) -> dict[str, str | Piece]:
    """{ltx2 key: original key or Piece} of a diffusion decoder from the `vae.` keys among `keys` (the encoder's and
    the preview heads' are left out, the gates folded into what they gate)."""
    decoder = [key for key in keys if key.startswith("vae.decoder.")]
    gates = {key for key in decoder if key.endswith(tuple(set(DIFFUSION_DECODER_GATES.values())))}
    names: dict[str, str | Piece] = {}
    for original in keys:
        if original.startswith("vae.per_channel_statistics."):
            names[_replace_all(original.removeprefix("vae."), STATISTICS_RENAMES)] = original
    for original in decoder:
        path = original.removeprefix("vae.decoder.")
        if original in gates or path.startswith("coarse_") or ".coarse_" in path:
            continue
        name = "decoder." + _replace_all(path, DIFFUSION_DECODER_RENAMES)
        if DIFFUSION_DECODER_FUSED in name:
            head, _, leaf = name.partition(DIFFUSION_DECODER_FUSED)
            for index, target in enumerate(("to_q", "to_k", "to_v")):
                names[f"{head}.attn.{target}.{leaf}"] = Piece(original, index, 3)
            continue
        gated = next((leaf for leaf in DIFFUSION_DECODER_GATES if name.endswith(leaf)), None)
        # The renames touch only the leaf, so the block's original prefix is "vae." + the renamed one.
        gate = f"vae.{name.removesuffix(gated)}{DIFFUSION_DECODER_GATES[gated]}" if gated else None
        names[name] = Piece(original, gate=gate) if gate in gates else original
    return names


def without_video_ff_bias(keys: list[str]) -> bool:
    """Whether an original file's transformer has a video feed-forward without biases (LTX-2.5's)."""
    names = set(keys)
    return VIDEO_FF_WEIGHT in names and VIDEO_FF_WEIGHT.replace(".weight", ".bias") not in names


def version_keys(keys: list[str]) -> dict[str, list[str]]:
    """{LTX version: the VERSION_KEYS prefixes of that version among `keys`, as `keys` spell them, with a `*`}."""
    found: dict[str, dict[str, None]] = {version: {} for version in VERSION_KEYS}
    for key in keys:
        name = key.removeprefix(TRANSFORMER_PREFIX)
        for version, prefixes in VERSION_KEYS.items():
            for prefix in prefixes:
                if name.startswith(prefix):
                    found[version][f"{key[: len(key) - len(name)]}{prefix}*"] = None
    return {version: list(prefixes) for version, prefixes in found.items()}


def is_dropped(key: str) -> bool:
    """Keys of the original files that no ltx2 network holds: FP8 scales and unused VAE statistics."""
    return key.rpartition(".")[2] in QUANTIZATION_SUFFIXES or any(part in key for part in DROPPED_STATISTICS)


def _num_down_blocks(keys: list[str]) -> int:
    """The video VAE's down blocks: its flat encoder list ends at index 2n with the mid block."""
    indices = [int(match.group(1)) for key in keys if (match := re.match(r"^vae\.encoder\.down_blocks\.(\d+)\.", key))]
    return max(indices, default=0) // 2


def held_components(keys: list[str]) -> set[str]:
    """The components (not "unknown") an original combined checkpoint with these keys holds weights of."""
    return {name for name, names in split_single_file(keys).items() if names and name != "unknown"}


def split_single_file(keys: list[str]) -> dict[str, dict[str, str | Piece]]:
    """Group the keys of an original combined checkpoint by component: {component: {ltx2 key: original key or
    Piece}}.

    Keys under no known prefix are returned under "unknown" with their own names, so that callers can
    name them in an error.
    """
    components: dict[str, dict[str, str | Piece]] = {
        name: {} for name in ("transformer", "connectors", "vae", "audio_vae", "vocoder", "duration_head",
                              "diffusion_decoder", "unknown")
    }
    kept = [key for key in keys if not is_dropped(key)]
    components["duration_head"] = duration_head_names([key for key in kept if key.startswith(DURATION_HEAD_PREFIX)])
    # A diffusion decoder in the VAE's place takes the VAE's keys.
    diffusion_vae = any(key.startswith(DIFFUSION_DECODER_MARKER) for key in kept)
    if diffusion_vae:
        components["diffusion_decoder"] = diffusion_decoder_names([key for key in kept if key.startswith("vae.")])
    num_down_blocks = _num_down_blocks(keys)
    for original in kept:
        name = original.removeprefix(TRANSFORMER_PREFIX)
        if original.startswith(DURATION_HEAD_PREFIX) or (diffusion_vae and original.startswith("vae.")):
            continue
        if is_connector_key(name):
            components["connectors"][connector_key(name)] = original
        elif original.startswith(TRANSFORMER_PREFIX):
            components["transformer"][transformer_key(name)] = original
        elif original.startswith("vae."):
            components["vae"][video_vae_key(name.removeprefix("vae."), num_down_blocks)] = original
        elif original.startswith("audio_vae."):
            components["audio_vae"][audio_vae_key(name.removeprefix("audio_vae."))] = original
        elif original.startswith("vocoder."):
            components["vocoder"][vocoder_key(name.removeprefix("vocoder."))] = original
        else:
            components["unknown"][original] = original
    return components
