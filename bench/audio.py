"""Audio decoding, ltx2 vs diffusers 0.42.1: audio-VAE decode then vocoder, full-size models, same weights.

    python bench/audio.py                    # CPU: ~5 s of audio (126 latent frames -> 501 mel frames -> 120240 samples)
    python bench/audio.py --device cuda      # GPU, bf16

Prints the median seconds of each and the ratio ours / reference.
"""

from __future__ import annotations

import argparse

import torch
from diffusers import AutoencoderKLLTX2Audio as ReferenceAudioVAE
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder as ReferenceVocoder

from ltx2 import AutoencoderKLLTX2Audio, LTX2Vocoder
from timing import add_run_arguments, compare, run_dtype, twin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latent-frames", type=int, default=126)
    add_run_arguments(parser)
    args = parser.parse_args()
    dtype = run_dtype(args)
    torch.manual_seed(0)
    with torch.device(args.device):
        reference_vae, reference_vocoder = ReferenceAudioVAE().eval().to(dtype), ReferenceVocoder().eval().to(dtype)
    vae, vocoder = twin(AutoencoderKLLTX2Audio, reference_vae), twin(LTX2Vocoder, reference_vocoder)
    latents = torch.randn(1, 8, args.latent_frames, 16, device=args.device).to(dtype)
    print(f"latents={tuple(latents.shape)} device={args.device} dtype={dtype} threads={torch.get_num_threads()}")
    compare(
        lambda: vocoder(vae.decode(latents).sample),
        lambda: reference_vocoder(reference_vae.decode(latents).sample),
        args.device,
        args.repeats,
    )


if __name__ == "__main__":
    main()
