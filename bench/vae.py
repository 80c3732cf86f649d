"""Video VAE decode, ltx2 vs diffusers 0.42.1: same weights and latents, alternating in one process.

    python bench/vae.py                              # CPU, float32: the real structure at 1/8 width
    python bench/vae.py --device cuda --full         # GPU, bf16: full size, 121 frames at 768x512, tiled

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

from ltx2.models.video_vae import AutoencoderKLLTX2Video  # noqa: E402

REDUCED = dict(block_out_channels=(32, 64, 128, 256), decoder_block_out_channels=(32, 64, 128))
FULL_CONFIG = dict(decoder_causal=False, spatial_compression_ratio=32, temporal_compression_ratio=8)


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


def build(full: bool, device: str, dtype: torch.dtype) -> tuple[torch.nn.Module, torch.nn.Module]:
    config = dict(FULL_CONFIG, **({} if full else REDUCED))
    torch.manual_seed(0)
    reference = ReferenceVAE(**config).eval()
    with torch.no_grad():
        for tensor in reference.parameters():
            tensor.add_(torch.randn_like(tensor) * 0.02)
    reference.to(device=device, dtype=dtype)
    with torch.device("meta"):
        ours = AutoencoderKLLTX2Video(**config)
    ours.load_state_dict(reference.state_dict(), assign=True)
    return ours.eval(), reference


def measure(model: torch.nn.Module, latents: torch.Tensor, device: str) -> tuple[float, float, int]:
    """Wall seconds, process CPU seconds and peak bytes of one decode."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        start, cpu_start = time.perf_counter(), time.process_time()
        model.decode(latents, return_dict=False)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        return time.perf_counter() - start, time.process_time() - cpu_start, peak
    with ResidentPeak() as resident:
        start, cpu_start = time.perf_counter(), time.process_time()
        model.decode(latents, return_dict=False)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return seconds, cpu_seconds, resident.growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--full", action="store_true", help="full-size VAE, latents 1x128x16x16x24, tiled only")
    parser.add_argument("--latent", default="4,16,24", help="latent frames,height,width for the reduced model")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    ours, reference = build(args.full, args.device, dtype)
    frames, height, width = (16, 16, 24) if args.full else map(int, args.latent.split(","))
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 128, frames, height, width, generator=generator).to(args.device, dtype)
    modes = ["tiled"] if args.full else ["untiled", "tiled"]
    print(f"{'full' if args.full else 'reduced-width'} VAE, latents {tuple(latents.shape)}, {dtype}, {args.device}, "
          f"threads {torch.get_num_threads()}, {args.repeats} repeats")
    with torch.inference_mode():
        for mode in modes:
            for model in (ours, reference):
                model.enable_tiling() if mode == "tiled" else model.disable_tiling()
            measure(ours, latents, args.device), measure(reference, latents, args.device)  # warm-up
            results = {"ours": [], "reference": []}
            for _ in range(args.repeats):
                results["ours"].append(measure(ours, latents, args.device))
                results["reference"].append(measure(reference, latents, args.device))
            (ours_s, ours_cpu, ours_b), (ref_s, ref_cpu, ref_b) = (
                (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), max(r[2] for r in runs))
                for runs in (results["ours"], results["reference"])
            )
            print(f"{mode:8s} wall: ours {ours_s:.3f} s, reference {ref_s:.3f} s, ratio {ours_s / ref_s:.3f} | "
                  f"cpu: ours {ours_cpu:.3f} s, reference {ref_cpu:.3f} s, ratio {ours_cpu / ref_cpu:.3f} | "
                  f"peak: ours {ours_b / 2**20:.0f} MiB, reference {ref_b / 2**20:.0f} MiB, ratio {ours_b / ref_b:.3f}")


if __name__ == "__main__":
    main()
