"""Audio decoding, ltx2 vs diffusers 0.42.1: audio-VAE decode then vocoder, full-size models, same weights.

    python bench/audio.py                    # CPU: ~5 s of audio (126 latent frames -> 501 mel frames -> 120240 samples)
    python bench/audio.py --version 2.3      # LTX-2.3's vocoder with bandwidth extension (-> 240480 samples at 48 kHz)
    python bench/audio.py --vocoder-only     # the vocoder alone, on the audio VAE's output
    python bench/audio.py --device cuda      # GPU, bf16

Prints the median seconds of each and the ratio ours / reference.
"""

from __future__ import annotations

import argparse

import torch
from diffusers import AutoencoderKLLTX2Audio as ReferenceAudioVAE
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder as ReferenceVocoder
from diffusers.pipelines.ltx2.vocoder import LTX2VocoderWithBWE as ReferenceVocoderWithBWE

from ltx2 import AutoencoderKLLTX2Audio, LTX2Vocoder, LTX2VocoderWithBWE
from ltx2.configs import LTX_2_3_VOCODER
from timing import add_run_arguments, compare, run_dtype, twin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latent-frames", type=int, default=126)
    parser.add_argument("--version", choices=["2.0", "2.3"], default="2.0", help="whose vocoder (the audio VAE is one)")
    parser.add_argument("--vocoder-only", action="store_true", help="time the vocoder on a decoded mel spectrogram")
    add_run_arguments(parser)
    args = parser.parse_args()
    dtype = run_dtype(args)
    torch.manual_seed(0)
    ours_class, reference_class, config = {
        "2.0": (LTX2Vocoder, ReferenceVocoder, {}),
        "2.3": (LTX2VocoderWithBWE, ReferenceVocoderWithBWE, LTX_2_3_VOCODER),
    }[args.version]
    with torch.device(args.device):
        reference_vae = ReferenceAudioVAE().eval().to(dtype)
        reference_vocoder = reference_class(**config).eval().to(dtype)
    vae, vocoder = twin(AutoencoderKLLTX2Audio, reference_vae), twin(ours_class, reference_vocoder, **config)
    latents = torch.randn(1, 8, args.latent_frames, 16, device=args.device).to(dtype)
    print(f"latents={tuple(latents.shape)} vocoder={args.version} device={args.device} dtype={dtype} "
          f"threads={torch.get_num_threads()}")
    if args.vocoder_only:
        with torch.inference_mode():
            mel = reference_vae.decode(latents).sample
        compare(lambda: vocoder(mel), lambda: reference_vocoder(mel), args.device, args.repeats)
        return
    compare(
        lambda: vocoder(vae.decode(latents).sample),
        lambda: reference_vocoder(reference_vae.decode(latents).sample),
        args.device,
        args.repeats,
    )


if __name__ == "__main__":
    main()
