"""`ltx2 generate --preset dfr`: LTX-2.5's 1080p recipe, composed of LTX2DFRPipeline passes.

1. stage 1 at half the output size: the canvas padded to whole keyframe segments, with a generated slot at each
   segment end (8 distilled steps);
2. x2 spatial latent upsampling of the canvas and of each slot;
3. stage 2 at the output size on the upsampled latents and slots, stage 1's canvas as reference (x2) and its audio
   frozen (the last 3 distilled steps);
4. optionally, --temporal-refine N rounds (LTX2DFRTemporalRefinePipeline): each doubles the frames and the rate;
5. the epilogue: one light pass (the last distilled sigma) over the whole canvas with the keyframes pinned, run tile
   by tile (`dfr_layout.epilogue_tiles`: halves in height and width, cut in time on a keyframe seam) so that its
   memory is a tile's, then the decode (VAE, or --decoder diffusion) trimmed to the request.
--image is a condition at frame 0 of every pass (the first frame replaced); --condition places others.
Each stage is timed and shows its own progress bar. The choices of steps for stages 2 and the epilogue and of the
epilogue's tiling are ltx2's: 0.42.1 ships the passes, not the composed recipe.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .versions import DISTILLED_SIGMA_VALUES, LTX_2_5, STAGE_2_DISTILLED_SIGMA_VALUES, VIDEO_VAE_COMPRESSION

# Output (width, height) when not given: 1080p on the 64-pixel grid stage 1 needs at half size.
OUTPUT_SIZE = (1920, 1088)
OUTPUT_MULTIPLE = 64
EPILOGUE_SIGMAS = STAGE_2_DISTILLED_SIGMA_VALUES[-1:]


def check(args: argparse.Namespace, usage_error: type[Exception]) -> None:
    """What --preset dfr cannot do, as one line each, before anything loads; and its sizes on `args`."""
    if args.version != LTX_2_5:
        raise usage_error(f"--preset dfr: the DFR recipe needs an LTX-2.5 model (keyframe slots); --model is "
                          f"LTX-{args.version}")
    if args.reference_video:
        raise usage_error("--reference-video: not with --preset dfr (stage 2's IC-LoRA reference is stage 1's "
                          "video, as in 0.42.1's DFR recipe; it has no place for another)")
    for option, given in (("--steps", args.steps), ("--guidance", args.guidance), ("--stg", args.stg)):
        if given:
            raise usage_error(f"{option}: not with --preset dfr (distilled, unguided passes)")
    if args.upscale != 2.0:
        raise usage_error(f"--upscale {args.upscale:g}: the DFR recipe upsamples x2")
    if args.temporal_refine < 0:
        raise usage_error(f"--temporal-refine {args.temporal_refine}: must be at least 0 (rounds)")
    local = Path(args.model or "")
    if args.temporal_refine and local.is_dir() and not (local / "temporal_latent_upsampler").is_dir():
        raise usage_error(f"--temporal-refine: no temporal_latent_upsampler/ in --model {args.model}")
    args.decoder = args.decoder or "vae"  # 0.42.1's DFR passes decode through the VAE
    args.width, args.height = args.width or OUTPUT_SIZE[0], args.height or OUTPUT_SIZE[1]
    for name in ("width", "height"):
        value = getattr(args, name)
        if value <= 0 or value % OUTPUT_MULTIPLE:
            raise usage_error(f"--{name} {value}: must be a positive multiple of {OUTPUT_MULTIPLE} for --preset dfr")
    if args.num_frames is not None and args.num_frames < VIDEO_VAE_COMPRESSION[0] + 1:
        raise usage_error(f"--num-frames {args.num_frames}: the DFR canvas needs at least one segment "
                          f"({VIDEO_VAE_COMPRESSION[0] + 1} frames)")
    args.stage_one = dict(width=args.width // 2, height=args.height // 2, sigmas=DISTILLED_SIGMA_VALUES)
    args.stage_two = dict(width=args.width, height=args.height, sigmas=STAGE_2_DISTILLED_SIGMA_VALUES)


def frame_tiles(latent_frames: int, seams: list[int]) -> int:
    """Two time tiles where an interior keyframe seam can cut the canvas, else one."""
    return 2 if any(0 < seam < latent_frames - 1 for seam in seams) else 1


def describe(args: argparse.Namespace) -> list[str]:
    """The stages, sizes, canvas padding and epilogue tiles, as --dry-run prints them."""
    from .dfr_layout import resolve_canvas, temporal_tile_plan  # torch, imported once the command runs

    temporal, spatial = VIDEO_VAE_COMPRESSION[0], VIDEO_VAE_COMPRESSION[1]
    rounds, width, height = args.temporal_refine, args.width, args.height
    lines = [f"stage 1        {width // 2}x{height // 2}, distilled {len(DISTILLED_SIGMA_VALUES)} steps, no guidance"]
    if args.num_frames is None:
        lines.append("canvas         after the predicted length: padded to whole 24- or 32-frame segments, a slot "
                     "at each segment end")
        frames = None
    else:
        canvas, segment, slots = resolve_canvas(args.num_frames, temporal)
        lines.append(f"canvas         {args.num_frames} frames padded to {canvas} ({canvas - args.num_frames} frames "
                     f"of padding): segments of {segment}, slots at frames {', '.join(map(str, slots))}")
        frames, positions = canvas, slots
    lines += ["upsampling     x2 spatial (latent_upsampler/), canvas and slots",
              f"stage 2        {width}x{height} on the x2 latents and slots, stage 1 as reference (x2), audio "
              f"frozen, {len(STAGE_2_DISTILLED_SIGMA_VALUES)} steps"]
    for round_index in range(1, rounds + 1):
        if frames is not None:
            frames, seams = 2 * (frames - 1) + 1, [2 * p for p in positions]
            windows = temporal_tile_plan(seams, frames, 2**round_index, temporal)
            positions = sorted(set(seams) | {slot for window in windows for slot in window.slots})
        size = f"{frames} frames, " if frames is not None else ""
        lines.append(f"temporal       round {round_index}: x2 temporal upsampler, {size}{args.fps * 2**round_index:g} "
                     f"fps, {2**round_index} windows cut on keyframes, ancestral steps (eta 0.5)")
    if frames is None:
        lines.append(f"epilogue       {width}x{height}, {len(EPILOGUE_SIGMAS)} step, keyframes pinned, tiled 2x2 in "
                     "space (and 2 in time where a keyframe seam cuts it)")
    else:
        latent = ((frames - 1) // temporal + 1, height // spatial, width // spatial)
        seams = [p // temporal for p in positions]
        tiles = epilogue_tiles_quietly(latent, frame_tiles(latent[0], seams), seams)
        spans = "; ".join(f"f{t.frames.start}-{t.frames.stop - 1} h{t.heights.start}-{t.heights.stop - 1} "
                          f"w{t.widths.start}-{t.widths.stop - 1}" for t in tiles)
        lines.append(f"epilogue       {width}x{height}, {len(EPILOGUE_SIGMAS)} step, {len(positions)} keyframes pinned,"
                     f" {len(tiles)} tiles of the {latent[0]}x{latent[1]}x{latent[2]} latent grid: {spans}")
    output_frames = None if args.num_frames is None else (args.num_frames - 1) * 2**rounds + 1
    decoder = "diffusion decoder" if args.decoder == "diffusion" else "VAE"
    lines.append(f"decoding       {decoder}, {output_frames or 'the predicted'} frames at {args.fps * 2**rounds:g} fps")
    return lines


def epilogue_tiles_quietly(latent: tuple[int, int, int], tiles: int, seams: list[int]) -> list:
    """epilogue_tiles without its warnings (small test sizes clamp the overlap; the plan shows the result)."""
    from .dfr_layout import epilogue_tiles  # torch, imported once the command runs

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return epilogue_tiles(latent, tiles, seams)


def run(pipe: Any, upsampler: Any, args: argparse.Namespace, common: dict[str, Any], timings: Any) -> tuple[Any, Any]:
    """The recipe on a loaded LTX2DFRPipeline; returns (frames (1, F, H, W, 3), waveform) of the last stage."""
    from .dfr_layout import trim_canvas  # torch, imported once the command runs

    import torch

    from . import LTX2DFRTemporalRefinePipeline, LTX2LatentUpsamplePipeline

    generator, prompt = common["generator"], common["prompt"]
    conditions = first_frame(common["image"], common["image_crf"]) if "image" in common else common.get("conditions")
    with timings.stage("stage 1"):
        video, audio, slots, positions = pipe(prompt=prompt, conditions=conditions, num_frames=args.num_frames,
                                              frame_rate=args.fps, generator=generator, output_type="latent",
                                              return_dict=False, **args.stage_one)
    temporal = pipe.vae_temporal_compression_ratio
    canvas_frames = (video.shape[2] - 1) * temporal + 1
    with timings.stage("upsampling"):
        upsample = LTX2LatentUpsamplePipeline(vae=pipe.vae, latent_upsampler=upsampler)
        upsample.to(pipe.device)

        def upsampled(latents: torch.Tensor) -> torch.Tensor:
            return upsample(latents=latents, output_type="latent", return_dict=False)[0]

        big_video = upsampled(video)
        big_slots = torch.cat([upsampled(slot) for slot in slots.split(1, dim=2)], dim=2)  # independent stills
    with timings.stage("stage 2"):
        video, _, slots, positions = pipe(
            prompt=prompt, conditions=conditions, num_frames=args.num_frames, frame_rate=args.fps, latents=big_video,
            keyframes_latents=big_slots, keyframe_positions=positions, reference_latents=video,
            reference_downscale_factor=2, audio_latents=audio, freeze_audio=True, generator=generator,
            output_type="latent", return_dict=False, **args.stage_two)
    frames, fps = canvas_frames, args.fps
    if args.temporal_refine:
        parts = {**pipe.components, "scheduler": temporal_scheduler(),
                 "temporal_latent_upsampler": args.temporal_upsampler().to(pipe.device)}
        refine = LTX2DFRTemporalRefinePipeline(**parts)
        refine.set_progress_bar_config(**pipe._progress_bar_config)
    for round_index in range(1, args.temporal_refine + 1):
        with timings.stage(f"temporal {round_index}"):
            video, _, slots, positions = refine(
                prompt=prompt, latents=video, keyframes_latents=slots, keyframe_positions=positions,
                audio_latents=audio, conditions=conditions, height=args.height, width=args.width, num_frames=frames,
                frame_rate=fps, source_seconds=canvas_frames / args.fps, condition_num_frames=args.num_frames,
                round_index=round_index, generator=generator, output_type="latent", return_dict=False)
        frames, fps = 2 * (frames - 1) + 1, 2 * fps
    latent = tuple(video.shape[2:])
    seams = [p // temporal for p in positions]
    tiles = epilogue_tiles_quietly(latent, frame_tiles(latent[0], seams), seams)
    with timings.stage("epilogue"):
        video = pipe(prompt=prompt, num_frames=frames, frame_rate=fps, latents=video, generate_slots=False,
                     guidance_keyframe_latents=slots, guidance_keyframe_positions=positions, audio_latents=audio,
                     freeze_audio=True, video_tiles=tiles, sigmas=EPILOGUE_SIGMAS, generator=generator,
                     height=args.height, width=args.width, output_type="latent", return_dict=False)[0]
    requested = (args.num_frames - 1) * 2**args.temporal_refine + 1
    with timings.stage("decoding"):
        frames_out, waveform = decode(pipe, trim_canvas(video, requested, temporal), audio,
                                      requested / fps, generator, args.decoder)
    args.num_frames, args.fps = requested, fps
    return frames_out, waveform


def first_frame(image: str, crf: int | None) -> list[Any]:
    """--image as the DFR passes take it: a condition at frame 0, which replaces the first frame."""
    from . import LTX2VideoCondition
    from .pipelines.images import read_image

    return [LTX2VideoCondition(read_image(image), 0, 1.0, crf)]


def decode(pipe: Any, video: Any, audio: Any, seconds: float, generator: Any, decoder: str) -> tuple[Any, Any]:
    """Raw latents -> (frames as numpy (1, F, H, W, 3), the waveform cut to `seconds`) through the VAE or, for
    decoder "diffusion", LTX-2.5's diffusion decoder (its noise drawn from `generator`)."""
    from .pipelines.latents import normalize_audio_latents, pack_audio_latents

    audio_vae = pipe.audio_vae
    packed = normalize_audio_latents(pack_audio_latents(audio.to(pipe.device)), audio_vae.latents_mean,
                                     audio_vae.latents_std)
    output = pipe.deliver(pipe.normalized(video, pipe.device), packed, None, None, seconds, "np", 0.0, None,
                          generator, pipe.vae.dtype, decoder)
    return output.frames, output.audio


def temporal_upsampler_loader(model: str, dtype: Any) -> Any:
    """A function that loads the x2 temporal upsampler beside --model (a folder's or repo's
    temporal_latent_upsampler/)."""
    from functools import partial

    from . import LTX2LatentUpsamplerModel

    if Path(model).is_dir():
        return partial(LTX2LatentUpsamplerModel.from_pretrained, Path(model) / "temporal_latent_upsampler",
                       torch_dtype=dtype)
    return partial(LTX2LatentUpsamplerModel.from_pretrained, model, subfolder="temporal_latent_upsampler",
                   torch_dtype=dtype)


def temporal_scheduler() -> Any:
    from . import LTXEulerAncestralRFScheduler
    from .scheduler import TEMPORAL_ANCESTRAL_ETA

    return LTXEulerAncestralRFScheduler(eta=TEMPORAL_ANCESTRAL_ETA)
