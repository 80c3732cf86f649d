"""One-shot GPU benchmark: ltx2 against diffusers 0.42.1 on the real 19B transformer and the video VAE.

    python bench/gpu.py                          # one H100/H200 (80+ GB): every section, under 6 minutes
    python bench/gpu.py --json results.json      # the same, results also written after every section
    python bench/gpu.py --only eager,fp8         # some sections: eager compile attention fp8 stream stream_fp8 vae
    python bench/gpu.py --dry-run                # any machine, CPU: tiny shapes through every section

Random weights (no download), built on the meta device and filled on the GPU. Ours and the reference run the
same inputs in one process, alternating, medians over --repeats. The transformer runs at the stage-1 shape of
a 768x512, 121-frame video: 6144 video + 126 audio tokens, 1024 text tokens, CFG batch 2.

Sections (rows of the table):
- eager: the full 48-block forward in bf16, default settings (ours: the default attention kernel).
- compile: both after `compile_repeated_blocks()` (inductor); the first call's seconds are printed apart.
- attention: one attention call at the video self-attention and masked text cross-attention shapes, per
  backend (ours; the reference's "native" is plain SDPA, the same as ours "native").
- fp8: both after `enable_layerwise_casting(torch.float8_e4m3fn, torch.bfloat16)`.
- stream / stream_fp8: the whole model offloaded, block-level group offloading with one block per group and a
  side stream (both), weights pre-pinned in CPU memory and shared; stream_fp8 with FP8 storage as well.
- vae: the video VAE decode of latents (1, 128, 16, 16, 24) (121 x 512 x 768) with tiling, bf16.

Peak GiB is what the model would hold alone: its own tensors on the GPU plus the growth of the allocator's peak
during the call. "rel diff" is ours against the reference (relative L2 of the outputs).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import diffusers
import torch
from diffusers import AutoencoderKLLTX2Video as ReferenceVAE
from diffusers import LTX2VideoTransformer3DModel as ReferenceTransformer
from timing import twin
from transformer import make_inputs, model_config

from ltx2 import AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel
from ltx2.transforms.attention import missing, run_kernel

SECTIONS = ("eager", "compile", "attention", "fp8", "stream", "stream_fp8", "vae")
GiB = 2**30
VAE_CONFIG = dict(decoder_causal=False, spatial_compression_ratio=32, temporal_compression_ratio=8)
DRY_VAE = dict(VAE_CONFIG, block_out_channels=(8, 16, 32, 64), decoder_block_out_channels=(8, 16, 32))


class Bench:
    """Runs the sections, collects the table rows, and keeps to the time budget."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.device = "cpu" if args.dry_run else "cuda"
        self.dtype = torch.bfloat16
        self.rows: list[dict] = []
        self.start = time.perf_counter()

    # -- measuring ----------------------------------------------------------------------------------------

    def sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def measure(self, run: Callable[[], object], model: torch.nn.Module | None) -> tuple[float, float, object]:
        """Seconds of one call, the GiB the model would need alone (its GPU tensors + peak growth), the output."""
        self.sync()
        own = resident_bytes(model) if model is not None else 0
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        start = time.perf_counter()
        with torch.inference_mode():
            output = run()
        self.sync()
        seconds = time.perf_counter() - start
        growth = torch.cuda.max_memory_allocated() - base if self.device == "cuda" else 0
        return seconds, (own + growth) / GiB, output

    def compare(self, section: str, what: str, ours: Callable, reference: Callable, ours_model, reference_model,
                repeats: int | None = None) -> None:
        """Warm up both (the first call's seconds are recorded), then alternate; one table row."""
        repeats = repeats or self.args.repeats
        first_ours, _, _ = self.measure(ours, ours_model)
        first_reference, _, _ = self.measure(reference, reference_model)
        runs = {"ours": [], "reference": []}
        outputs = {}
        for _ in range(repeats):
            for name, run, model in (("ours", ours, ours_model), ("reference", reference, reference_model)):
                seconds, gib, outputs[name] = self.measure(run, model)
                runs[name].append((seconds, gib))
        row = dict(section=section, what=what, repeats=repeats, first_call=[first_ours, first_reference])
        for name, values in runs.items():
            row[f"{name}_s"] = statistics.median(seconds for seconds, _ in values)
            row[f"{name}_gib"] = max(gib for _, gib in values)
        row["rel_diff"] = relative_l2(outputs["ours"], outputs["reference"])
        self.add(row)

    def add(self, row: dict) -> None:
        self.rows.append(row)
        print(format_row(row), flush=True)
        if self.args.json:
            Path(self.args.json).write_text(json.dumps(self.rows, indent=1, default=str) + "\n")

    def within_budget(self, section: str) -> bool:
        elapsed = time.perf_counter() - self.start
        if elapsed <= self.args.budget:
            return True
        self.add(dict(section=section, what=f"skipped: {elapsed:.0f} s spent, budget {self.args.budget:.0f} s"))
        return False

    # -- the models ----------------------------------------------------------------------------------------

    def transformer_config(self) -> dict:
        return model_config("tiny" if self.args.dry_run else "full", "2.0", 2 if self.args.dry_run else None)

    def inputs(self, reference: torch.nn.Module) -> dict:
        shape = "tiny" if self.args.dry_run else "full"
        return make_inputs(shape, reference.config, self.device, self.dtype)

    def random_reference(self, cls: type, config: dict) -> torch.nn.Module:
        """The reference network in bf16 on the device with random weights, never materialized in float32."""
        with torch.device("meta"):
            model = cls(**config).to(self.dtype)
        model.to_empty(device=self.device)
        fill_random_(model, seed=0)
        return model.eval()

    # -- sections -----------------------------------------------------------------------------------------

    def run(self) -> None:
        """The sections in order of importance, so that the budget cuts the extras: eager, compile, fp8, stream,
        vae, attention, stream_fp8 (FP8 casting replaces the bf16 weights, so streaming starts from a copy)."""
        wanted = self.args.only
        streaming = [name for name in ("stream", "stream_fp8") if name in wanted]
        if {"eager", "compile", "fp8", "attention", *streaming} & set(wanted):
            reference = self.random_reference(ReferenceTransformer, self.transformer_config())
            ours = twin(LTX2VideoTransformer3DModel, reference, **self.transformer_config())
            inputs = self.inputs(reference)
            print(f"transformer: {reference.num_parameters() / 1e9:.2f}B parameters, {len(ours.transformer_blocks)} "
                  f"blocks, video {tuple(inputs['hidden_states'].shape)}, audio "
                  f"{tuple(inputs['audio_hidden_states'].shape)}, text {tuple(inputs['encoder_hidden_states'].shape)}",
                  flush=True)
            for section in ("eager", "compile"):
                self.section(section, ours, reference, inputs)
            pinned = pinned_copy(reference, self.device) if streaming else None
            self.section("fp8", ours, reference, inputs)
            del ours, reference
            self.free()
            self.section("stream", pinned, inputs, False)
        self.section("vae")
        if "attention" in wanted:
            self.section("attention", inputs)
        if "stream_fp8" in wanted:
            self.section("stream_fp8", pinned, inputs, True)

    def section(self, name: str, *args) -> None:
        """Run one wanted section within the budget; a failing one is reported in the table and the others run."""
        if name not in self.args.only or not self.within_budget(name):
            return
        method = getattr(self, "section_" + ("stream" if name.startswith("stream") else name))
        try:
            method(*args)
        except Exception as error:  # noqa: BLE001 - the benchmark reports and goes on
            traceback.print_exc()
            self.add(dict(section=name, what=f"FAILED: {type(error).__name__}: {str(error)[:300]}"))
        self.free()

    def free(self) -> None:
        if self.device == "cuda":
            torch.cuda.empty_cache()

    def forward(self, model: torch.nn.Module, inputs: dict) -> Callable[[], torch.Tensor]:
        return lambda: torch.cat([part.flatten() for part in model(**inputs)])

    def section_eager(self, ours, reference, inputs) -> None:
        self.compare("eager", "transformer forward, bf16", self.forward(ours, inputs),
                     self.forward(reference, inputs), ours, reference)

    def section_compile(self, ours, reference, inputs) -> None:
        # Separate modules that share the weights, so the eager ones stay uncompiled for the FP8 section.
        config = self.transformer_config()
        compiled_reference = twin(ReferenceTransformer, reference, **config)
        compiled_ours = twin(LTX2VideoTransformer3DModel, reference, **config)
        backend = dict(backend="eager") if self.args.dry_run else {}
        compiled_ours.compile_repeated_blocks(**backend)
        compiled_reference.compile_repeated_blocks(**backend)
        self.compare("compile", "transformer forward, compile_repeated_blocks", self.forward(compiled_ours, inputs),
                     self.forward(compiled_reference, inputs), compiled_ours, compiled_reference)
        first_ours, first_reference = self.rows[-1]["first_call"]
        self.add(dict(section="compile", what=f"first call (compiling): ours {first_ours:.1f} s, diffusers "
                                              f"{first_reference:.1f} s"))
        # Ours compiled against the reference eager: the speed-up a user of diffusers' defaults sees.
        seconds, gib, _ = zip(*(self.measure(self.forward(compiled_ours, inputs), compiled_ours)
                                for _ in range(self.args.repeats)))
        eager = next(row for row in self.rows if row["section"] == "eager") if self.has("eager") else None
        if eager is not None:
            self.add(dict(section="compile", what="ours compiled vs reference eager", repeats=self.args.repeats,
                          ours_s=statistics.median(seconds), reference_s=eager["reference_s"], ours_gib=max(gib),
                          reference_gib=eager["reference_gib"]))
        torch._dynamo.reset()

    def has(self, section: str) -> bool:
        return any(row["section"] == section and "ours_s" in row for row in self.rows)

    def section_attention(self, inputs: dict) -> None:
        config = self.transformer_config()
        heads, head_dim = config.get("num_attention_heads", 32), config.get("attention_head_dim", 128)
        batch, tokens = inputs["hidden_states"].shape[:2]
        text = inputs["encoder_hidden_states"].shape[1]
        generator = torch.Generator(self.device).manual_seed(1)

        def qkv(keys: int) -> list[torch.Tensor]:
            return [torch.randn(batch, heads, n, head_dim, generator=generator, device=self.device, dtype=self.dtype)
                    for n in (tokens, keys, keys)]

        mask = torch.zeros(batch, 1, 1, text, device=self.device, dtype=self.dtype)
        mask[0, ..., : text // 4] = -10000.0  # a shorter prompt in one of the two rows, as with CFG
        cases = {"video self-attention": (qkv(tokens), None), "masked text cross-attention": (qkv(text), mask)}
        for what, ((query, key, value), case_mask) in cases.items():
            reference_run = lambda: torch.nn.functional.scaled_dot_product_attention(  # noqa: E731
                query, key, value, attn_mask=case_mask)
            for backend in (None, "_native_cudnn", "_native_flash", "_native_efficient", "flash"):
                name = backend or "default"
                if backend is not None and missing(backend) is not None:
                    self.add(dict(section="attention", what=f"{what}, {name}: n/a ({missing(backend)})"))
                    continue
                self.compare("attention", f"{what}, ours {name} vs native",
                             lambda backend=backend: run_kernel(backend, query, key, value, case_mask),
                             reference_run, None, None, repeats=self.args.repeats * 3)

    def section_fp8(self, ours, reference, inputs) -> None:
        for model in (ours, reference):
            model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
        self.compare("fp8", "transformer forward, FP8 storage", self.forward(ours, inputs),
                     self.forward(reference, inputs), ours, reference)

    def section_stream(self, pinned: dict, inputs: dict, fp8: bool) -> None:
        config = self.transformer_config()
        with torch.device("meta"):
            reference = ReferenceTransformer(**config)
        reference.load_state_dict(pinned, assign=True)
        ours = twin(LTX2VideoTransformer3DModel, reference, **config)
        if fp8:
            for model in (ours, reference):
                model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
        ours.enable_group_offload(self.device, offload_type="block_level", num_blocks_per_group=1, use_stream=True)
        # diffusers would pin its own copy of weights that are pinned already; with low_cpu_mem_usage it uses them
        # as they are (FP8 ones are new, unpinned tensors: there it pins its copy up front).
        reference.enable_group_offload(self.device, offload_type="block_level", num_blocks_per_group=1,
                                       use_stream=self.device == "cuda", low_cpu_mem_usage=not fp8)
        what = "whole model offloaded, one block per group, side stream" + (", FP8 storage" if fp8 else "")
        self.compare("stream_fp8" if fp8 else "stream", what, self.forward(ours, inputs),
                     self.forward(reference, inputs), ours, reference)

    def section_vae(self) -> None:
        config = DRY_VAE if self.args.dry_run else VAE_CONFIG
        reference = self.random_reference(ReferenceVAE, config)
        reference.latents_mean.zero_()
        reference.latents_std.fill_(1.0)
        ours = twin(AutoencoderKLLTX2Video, reference, **config)
        frames, height, width = (2, 2, 3) if self.args.dry_run else (16, 16, 24)
        generator = torch.Generator(self.device).manual_seed(2)
        latents = torch.randn(1, 128, frames, height, width, generator=generator, device=self.device,
                              dtype=self.dtype)
        for model in (ours, reference):
            model.enable_tiling()
        self.compare("vae", f"video VAE decode {tuple(latents.shape)}, tiled",
                     lambda: ours.decode(latents, return_dict=False)[0],
                     lambda: reference.decode(latents, return_dict=False)[0], ours, reference,
                     repeats=max(1, self.args.repeats - 1))


def fill_random_(model: torch.nn.Module, seed: int) -> None:
    """Weights with a sane scale (std 0.5 / sqrt(fan-in)), norm gains 1, biases and tables small."""
    generator = torch.Generator(next(model.parameters()).device).manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            for name, parameter in module.named_parameters(recurse=False):
                if name == "weight" and parameter.dim() >= 2:
                    std = 0.5 / math.sqrt(parameter[0].numel())
                elif name == "weight" and "norm" in type(module).__name__.lower():
                    parameter.fill_(1.0)
                    continue
                else:
                    std = 0.02
                parameter.normal_(0.0, std, generator=generator)


def resident_bytes(model: torch.nn.Module) -> int:
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers()) if t.device.type == "cuda"}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def pinned_copy(model: torch.nn.Module, device: str) -> dict[str, torch.Tensor]:
    """The state dict in (pinned, on CUDA machines) CPU memory, to build the streamed models from."""
    pin = device == "cuda"
    return {key: torch.empty(t.shape, dtype=t.dtype, pin_memory=pin).copy_(t) for key, t in model.state_dict().items()}


def relative_l2(ours: object, reference: object) -> float:
    if not (torch.is_tensor(ours) and torch.is_tensor(reference)):
        return float("nan")
    ours, reference = ours.double().flatten(), reference.double().flatten()
    return ((ours - reference).norm() / reference.norm()).item()


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def format_row(row: dict) -> str:
    if "ours_s" not in row:
        return f"| {row['section']:<10} | {row['what']} |"
    parts = [
        f"{row['section']:<10}", f"{row['what']:<62}", f"{row['ours_s']:9.4f}", f"{row['reference_s']:9.4f}",
        f"{ratio(row['ours_s'], row['reference_s']):6.3f}", f"{row['ours_gib']:7.2f}", f"{row['reference_gib']:7.2f}",
        f"{ratio(row['ours_gib'], row['reference_gib']):6.3f}", f"{row['rel_diff']:.1e}" if "rel_diff" in row else "-",
    ]
    return "| " + " | ".join(parts) + " |"


def goals(rows: list[dict]) -> list[str]:
    """The issue's targets, from whichever rows were measured."""
    found = {(row["section"], row["what"].split(",")[0]): row for row in rows if "ours_s" in row}
    eager = found.get(("eager", "transformer forward"))
    compiled = found.get(("compile", "ours compiled vs reference eager"))
    fp8 = found.get(("fp8", "transformer forward"))
    stream = found.get(("stream", "whole model offloaded"))
    lines = []
    if eager:
        speed = f"eager {ratio(eager['reference_s'], eager['ours_s']):.2f}x"
        if compiled:
            speed += f", ours compiled {ratio(compiled['reference_s'], compiled['ours_s']):.2f}x"
        lines.append(f"goal: transformer speed vs diffusers bf16 >= 1.3x: {speed}")
    if eager and fp8:
        memory, seconds = ratio(fp8["ours_gib"], eager["ours_gib"]), ratio(fp8["ours_s"], eager["ours_s"])
        lines.append(f"goal: FP8 peak <= 0.55x bf16 at <= 1.1x its time: {memory:.2f}x memory, {seconds:.2f}x time")
    if eager and stream:
        lines.append(f"goal: streamed step <= 1.3x resident at <= 8 GB: {ratio(stream['ours_s'], eager['ours_s']):.2f}x"
                     f" time, {stream['ours_gib'] * GiB / 1e9:.1f} GB")
    return lines


HEADER = (f"| {'section':<10} | {'what':<62} | {'ours s':>9} | {'diff. s':>9} | {'ratio':>6} | {'ours GiB':>7} | "
          f"{'diff. GiB':>7} | {'ratio':>6} | rel diff |")


def preflight(args: argparse.Namespace) -> None:
    """Clear reasons to stop before any work: no GPU, too little memory, another diffusers."""
    if diffusers.__version__ != "0.42.1":
        print(f"warning: the reference is diffusers {diffusers.__version__}, not 0.42.1", flush=True)
    if args.dry_run:
        return
    if not torch.cuda.is_available():
        sys.exit("bench/gpu.py needs a CUDA GPU (torch.cuda.is_available() is False); --dry-run checks the script "
                 "on the CPU")
    free, total = torch.cuda.mem_get_info()
    if free < 75 * GiB:
        sys.exit(f"bench/gpu.py needs about 75 GiB of free GPU memory (the 19B transformer in bf16, shared by both, "
                 f"plus FP8 copies); {free / GiB:.0f} of {total / GiB:.0f} GiB are free")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=330.0, help="seconds after which further sections are skipped")
    parser.add_argument("--json", default=None, help="also write the rows to this file after every section")
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU: checks the script end to end")
    args = parser.parse_args()
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        parser.error(f"--only: unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    preflight(args)
    device = "cpu (dry run)" if args.dry_run else torch.cuda.get_device_name()
    print(f"bench/gpu.py on {device}, torch {torch.__version__}, diffusers {diffusers.__version__}, "
          f"{args.repeats} repeats, sections {', '.join(args.only)}", flush=True)
    print(HEADER, flush=True)
    bench = Bench(args)
    bench.run()
    print(f"\n{HEADER}\n" + "\n".join(format_row(row) for row in bench.rows), flush=True)
    print("\n".join(goals(bench.rows)))
    print(f"total {time.perf_counter() - bench.start:.0f} s", flush=True)
    if any(row["what"].startswith("FAILED") for row in bench.rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
