"""`ltx2 generate --hdr --reference-video SDR.mp4 --lora HDR_IC_LORA`: an SDR video made HDR by an HDR IC-LoRA.

One LTX2HDRPipeline pass at the output size on the distilled schedule without guidance (0.42.1's documented call).
The linear-light result is written three ways: --output, the tone-mapped 8-bit sRGB MP4 any player shows (0.42.1's
encode_hdr_tensor_to_mp4); <output stem>.hdr.mp4, a 10-bit BT.2020 MP4 in --hdr-transfer (PQ or HLG); and
<output stem>.exr/, one half-float OpenEXR file per frame for grading. No audio.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .versions import DISTILLED_SIGMA_VALUES, VIDEO_VAE_COMPRESSION


def outputs(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """(tone-mapped SDR MP4, 10-bit HDR MP4, EXR folder)."""
    sdr = Path(args.output)
    return sdr, sdr.with_suffix(".hdr.mp4"), sdr.with_suffix(".exr")


def check(args: argparse.Namespace, usage_error: type[Exception]) -> None:
    """What --hdr needs, as one line each, before anything loads; its single stage on `args`."""
    if len(args.reference_video) != 1:
        raise usage_error("--hdr: give the SDR video to convert as exactly one --reference-video")
    for option, given in (("--image", args.image), ("--condition", args.condition), ("--steps", args.steps),
                          ("--guidance", args.guidance), ("--stg", args.stg)):
        if given:
            raise usage_error(f"{option}: not with --hdr (one distilled, unguided pass on the reference video)")
    if args.preset not in (None, "one-stage"):
        raise usage_error(f"--preset {args.preset}: not with --hdr (one pass at the output size)")
    if args.decoder == "diffusion":
        raise usage_error("--decoder diffusion: --hdr decodes through the VAE (the inverse LogC3 needs its output)")
    args.preset, args.decoder = "one-stage", "vae"
    if args.num_frames is None:  # the reference video's length, on the 8k+1 grid
        from .cli import read_media

        step = VIDEO_VAE_COMPRESSION[0]
        args.num_frames = (len(read_media(args.reference_video[0].path, None, "--reference-video")) - 1) // step * step + 1


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The HDR pass's call arguments."""
    return dict(width=args.width, height=args.height, num_inference_steps=len(DISTILLED_SIGMA_VALUES),
                sigmas=DISTILLED_SIGMA_VALUES)


def describe(args: argparse.Namespace) -> list[str]:
    sdr, hdr, exr = outputs(args)
    return [f"hdr            LTX2HDRPipeline, {args.width}x{args.height}, distilled {len(DISTILLED_SIGMA_VALUES)} "
            f"steps, no guidance; reference downscaled x{args.reference_downscale_factor}, no audio",
            f"writes         {sdr} (tone-mapped sRGB, 8-bit), {hdr} (10-bit BT.2020 {args.hdr_transfer.upper()}), "
            f"{exr}/ (half-float OpenEXR frames)"]


def run(pipe: Any, args: argparse.Namespace, common: dict[str, Any], timings: Any, write: bool) -> None:
    """The HDR pass and the three files."""
    from . import LTX2HDRReferenceCondition
    from .hdr import encode_hdr_tensor_to_mp4, encode_hdr_video, write_exr_sequence

    reference = args.reference_video[0]
    with timings.stage("hdr pass"):
        frames = pipe(prompt=common["prompt"], negative_prompt=common["negative_prompt"],
                      reference_conditions=[LTX2HDRReferenceCondition(reference.frames, reference.strength)],
                      reference_downscale_factor=args.reference_downscale_factor, num_frames=args.num_frames,
                      frame_rate=args.fps, generator=common["generator"], output_type="pt", return_dict=False,
                      **args.stage_one)[0]
    if not write:
        return
    sdr, hdr, exr = outputs(args)
    with timings.stage("writing"):
        encode_hdr_tensor_to_mp4(frames[0], sdr, args.fps)
        encode_hdr_video(frames[0], hdr, args.fps, transfer=args.hdr_transfer)
        write_exr_sequence(frames[0], exr)
