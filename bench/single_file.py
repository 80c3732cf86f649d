"""Loading the DiT from an original single-file checkpoint: ltx2 vs diffusers 0.42.1 `from_single_file`.

    python bench/single_file.py --layers 4 --repeats 3      # full width, 4 of the 48 blocks, bf16 file

Writes one synthetic file in the original layout (full-width LTX-2 DiT, `--layers` blocks, bf16, with the
header config), then loads it alternately with each library, every load in a fresh process so that the
peak resident memory is that load's own. Prints median seconds, peak RSS and the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def write_checkpoint(folder: Path, layers: int) -> Path:
    """The original-layout file, and the reference's config.json beside it (diffusers needs one)."""
    from diffusers import LTX2VideoTransformer3DModel as ReferenceTransformer

    from original_checkpoint import HEADER_CONFIG, to_original, write_single_file

    with torch.device("meta"):
        reference = ReferenceTransformer(num_layers=layers, rope_type="split")
    state = {key: torch.randn(value.shape, dtype=torch.bfloat16) * 0.02 for key, value in reference.state_dict().items()}
    header = {"transformer": {**{key: value for key, value in HEADER_CONFIG["transformer"].items()
                                 if not key.startswith("connector_")},
                              "num_attention_heads": 32, "attention_head_dim": 128, "in_channels": 128,
                              "out_channels": 128, "num_layers": layers, "cross_attention_dim": 4096,
                              "caption_channels": 3840, "audio_num_attention_heads": 32, "audio_attention_head_dim": 64,
                              "audio_in_channels": 128, "audio_out_channels": 128, "audio_cross_attention_dim": 2048}}
    path = write_single_file(folder / "ltx-2-19b-dev.safetensors", to_original("transformer", state), header)
    config_folder = folder / "config" / "transformer"
    config_folder.mkdir(parents=True)
    (config_folder / "config.json").write_text(json.dumps({**dict(reference.config), "num_layers": layers}))
    return path


def load(library: str, path: Path) -> None:
    """One load, run inside the child process; prints its seconds and peak RSS as JSON."""
    start = time.perf_counter()
    if library == "ours":
        from ltx2 import LTX2VideoTransformer3DModel

        model = LTX2VideoTransformer3DModel.from_single_file(path, torch_dtype=torch.bfloat16)
    else:
        from diffusers import LTX2VideoTransformer3DModel

        model = LTX2VideoTransformer3DModel.from_single_file(
            str(path), config=str(path.parent / "config"), subfolder="transformer", torch_dtype=torch.bfloat16,
            local_files_only=True)
    seconds = time.perf_counter() - start
    assert next(model.parameters()).dtype == torch.bfloat16
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"seconds": seconds, "rss_gib": rss}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", choices=["ours", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load(args.load, args.path)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = write_checkpoint(Path(folder), args.layers)
        print(f"file: {path.stat().st_size / 2**30:.2f} GiB, {args.layers} blocks at full width, bf16")
        results: dict[str, list[dict]] = {"ours": [], "reference": []}
        for _ in range(args.repeats):
            for library in results:
                child = subprocess.run([sys.executable, __file__, "--load", library, "--path", str(path)],
                                       capture_output=True, text=True, check=True)
                results[library].append(json.loads(child.stdout.strip().splitlines()[-1]))
    medians = {library: {field: statistics.median(run[field] for run in runs) for field in ("seconds", "rss_gib")}
               for library, runs in results.items()}
    for library, median in medians.items():
        print(f"{library:>9}: median {median['seconds']:.2f} s, peak RSS {median['rss_gib']:.2f} GiB "
              f"over {args.repeats}")
    print(f"ratio ours/reference: time {medians['ours']['seconds'] / medians['reference']['seconds']:.3f}, "
          f"peak RSS {medians['ours']['rss_gib'] / medians['reference']['rss_gib']:.3f}")


if __name__ == "__main__":
    main()
