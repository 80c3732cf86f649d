"""Video VAE decode, ltx2 vs diffusers 0.42.1: same weights and latents, alternating in one process.

    python bench/vae.py                              # CPU, float32: the real structure at 1/8 width
    python bench/vae.py --device cuda --full         # GPU, bf16: full size, 121 frames at 768x512, tiled
    python bench/vae.py --decoder diffusion          # LTX-2.5's diffusion decoder, reduced (see DIFFUSION)
    python bench/vae.py --decoder diffusion --attention 41,16,24   # one stage-5 neighborhood attention

The diffusion decoder decodes with one x0 step from a fixed generator. On CPU the reference's neighborhood
attention is FlexAttention without torch.compile, which holds the whole (heads, tokens, tokens) score matrix:
at the real kernels the smallest latent it accepts (3 x 7 x 7) is 53k stage-5 tokens, beyond this machine, so
the decode comparison uses smaller kernels and the real structure otherwise (DIFFUSION). `--attention` times one
stage-5 attention module at full width (256 channels, 4 heads, kernel 11^3) on a token grid of frames,rows,columns
(41,16,24 is the pixel grid of a 41-frame 64x96 video); `--skip-reference` measures ours alone.

Prints, per mode (untiled / tiled), the median wall-clock seconds, the median CPU seconds of the process (on
CPU: steadier than wall time on a shared machine) and the peak memory of each, and the ratios ours /
reference. Peak memory is torch's allocator peak on CUDA; on CPU it is the peak resident-set growth over the
decode, sampled every 0.2 ms (large blocks are unmapped when freed, see MALLOC_MMAP_THRESHOLD_ below).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time

# glibc otherwise raises its mmap threshold as blocks are freed and keeps freed memory mapped, which would
# make the resident set a poor measure of live tensors. It reads the setting at start-up, hence the re-exec.
if os.environ.get("MALLOC_MMAP_THRESHOLD_") != "131072":
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "131072"
    os.execv(sys.executable, [sys.executable, *sys.argv])

import torch  # noqa: E402
from diffusers import AutoencoderKLLTX2Video as ReferenceVAE  # noqa: E402
from diffusers.models.autoencoders.ltx2_diffusion_decoder import (  # noqa: E402
    LTX2VideoDiffusionDecoderModel as ReferenceDiffusionDecoder,
)
from diffusers.models.autoencoders.ltx2_diffusion_decoder import LTX2VideoVaeNeighborhoodAttention  # noqa: E402

from ltx2.models.diffusion_decoder import LTX2VideoDiffusionDecoderModel, NeighborhoodAttention  # noqa: E402
from ltx2.models.video_vae import AutoencoderKLLTX2Video  # noqa: E402

REDUCED = dict(block_out_channels=(32, 64, 128, 256), decoder_block_out_channels=(32, 64, 128))
FULL_CONFIG = dict(decoder_causal=False, spatial_compression_ratio=32, temporal_compression_ratio=8)
# LTX-2.5's diffusion decoder at 1/4 width (heads of 64 as in the real one) and its real depths, strides and
# channel reductions, with kernels small enough for a latent the reference's dense attention can hold.
DIFFUSION = dict(
    decoder_stage_channels=(512, 256, 128, 128, 64),
    decoder_stage_kernels=((3, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    decoder_stage5_kernel=(5, 7, 7),
)


class ResidentPeak:
    """Peak growth of this process's resident set while the block runs, sampled on a thread."""

    def __enter__(self) -> "ResidentPeak":
        self.base = self.peak = self._resident()
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._running = False
        self._thread.join()
        self.growth = self.peak - self.base

    def _sample(self) -> None:
        while self._running:
            self.peak = max(self.peak, self._resident())
            time.sleep(0.0002)

    @staticmethod
    def _resident() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build(
    full: bool, device: str, dtype: torch.dtype, diffusion: bool = False
) -> tuple[torch.nn.Module, torch.nn.Module]:
    config = DIFFUSION if diffusion else dict(FULL_CONFIG, **({} if full else REDUCED))
    reference_class, our_class = (ReferenceVAE, AutoencoderKLLTX2Video)
    if diffusion:
        reference_class, our_class = ReferenceDiffusionDecoder, LTX2VideoDiffusionDecoderModel
    torch.manual_seed(0)
    reference = reference_class(**config).eval()
    with torch.no_grad():
        for tensor in reference.parameters():
            tensor.add_(torch.randn_like(tensor) * 0.02)
    reference.to(device=device, dtype=dtype)
    with torch.device("meta"):
        ours = our_class(**config)
    ours.load_state_dict(reference.state_dict(), assign=True)
    return ours.eval(), reference


def decode(model: torch.nn.Module, latents: torch.Tensor) -> None:
    if isinstance(model, (ReferenceDiffusionDecoder, LTX2VideoDiffusionDecoderModel)):
        model.decode(latents, generator=torch.Generator().manual_seed(0), return_dict=False)
    elif isinstance(model, (NeighborhoodAttention, LTX2VideoVaeNeighborhoodAttention)):
        model(latents)  # one attention module on a (B, T, H, W, C) grid
    else:
        model.decode(latents, return_dict=False)


def measure(model: torch.nn.Module, latents: torch.Tensor, device: str) -> tuple[float, float, int]:
    """Wall seconds, process CPU seconds and peak bytes of one decode."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        start, cpu_start = time.perf_counter(), time.process_time()
        decode(model, latents)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        return time.perf_counter() - start, time.process_time() - cpu_start, peak
    with ResidentPeak() as resident:
        start, cpu_start = time.perf_counter(), time.process_time()
        decode(model, latents)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return seconds, cpu_seconds, resident.growth


def attention_modules() -> tuple[torch.nn.Module, torch.nn.Module]:
    """LTX-2.5's stage-5 attention, ours and the reference's, with the same random weights."""
    torch.manual_seed(0)
    reference = LTX2VideoVaeNeighborhoodAttention(256, (11, 11, 11), head_dim=64).eval()
    ours = NeighborhoodAttention(256, (11, 11, 11), 64).eval()
    ours.load_state_dict(reference.state_dict())
    return ours, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--full", action="store_true", help="full-size VAE, latents 1x128x16x16x24, tiled only")
    parser.add_argument("--latent", default=None,
                        help="latent frames,height,width for the reduced model (default 4,16,24; diffusion 2,3,4)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--decoder", default="vae", choices=["vae", "diffusion"],
                        help="the convolutional VAE decoder, or LTX-2.5's diffusion decoder")
    parser.add_argument("--attention", default=None, help="frames,rows,columns: one stage-5 attention instead")
    parser.add_argument("--skip-reference", action="store_true", help="with --attention: measure ours alone")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    if args.attention:
        ours, reference = attention_modules()
        ours.to(args.device, dtype), reference.to(args.device, dtype)
        grid = tuple(map(int, args.attention.split(",")))
        latents = torch.randn(1, *grid, 256, generator=torch.Generator().manual_seed(0)).to(args.device, dtype)
        description = f"stage-5 neighborhood attention (256 channels, kernel 11^3), grid {grid}"
        modes = ["attention"]
    else:
        ours, reference = build(args.full, args.device, dtype, diffusion=args.decoder == "diffusion")
        default = "2,3,4" if args.decoder == "diffusion" else "4,16,24"
        frames, height, width = (16, 16, 24) if args.full else map(int, (args.latent or default).split(","))
        generator = torch.Generator().manual_seed(0)
        latents = torch.randn(1, 128, frames, height, width, generator=generator).to(args.device, dtype)
        name = "full VAE" if args.full else "reduced-width VAE"
        name = "diffusion decoder (DIFFUSION)" if args.decoder == "diffusion" else name
        description = f"{name}, latents {tuple(latents.shape)}"
        modes = ["tiled"] if args.full else ["untiled"] if args.decoder == "diffusion" else ["untiled", "tiled"]
    print(f"{description}, {dtype}, {args.device}, threads {torch.get_num_threads()}, {args.repeats} repeats")
    models = (ours,) if args.skip_reference else (ours, reference)
    with torch.inference_mode():
        for mode in modes:
            for model in models:
                if hasattr(model, "enable_tiling"):
                    model.enable_tiling() if mode == "tiled" else model.disable_tiling()
            for model in models:  # warm-up
                measure(model, latents, args.device)
            results = {model: [] for model in models}
            for _ in range(args.repeats):
                for model in models:
                    results[model].append(measure(model, latents, args.device))
            summary = [
                (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), max(r[2] for r in runs))
                for runs in results.values()
            ]
            (ours_s, ours_cpu, ours_b) = summary[0]
            if args.skip_reference:
                print(f"{mode:8s} ours: {ours_s:.3f} s wall, {ours_cpu:.3f} s cpu, peak {ours_b / 2**20:.0f} MiB")
                continue
            (ref_s, ref_cpu, ref_b) = summary[1]
            print(f"{mode:8s} wall: ours {ours_s:.3f} s, reference {ref_s:.3f} s, ratio {ours_s / ref_s:.3f} | "
                  f"cpu: ours {ours_cpu:.3f} s, reference {ref_cpu:.3f} s, ratio {ours_cpu / ref_cpu:.3f} | "
                  f"peak: ours {ours_b / 2**20:.0f} MiB, reference {ref_b / 2**20:.0f} MiB, ratio {ours_b / ref_b:.3f}")


if __name__ == "__main__":
    main()
