"""The README's Python examples that need no GPU, server or full-size file, run as written on this CPU-only machine
on a tiny pipeline (`ltx2 make-tiny`) in place of the Hub repo or placeholder path, as the README suggests for trying
them offline; only that name and the sizes (frames, steps) are changed, and each change is checked to apply, so an
edited example is not silently skipped. Also: the Layout section against the tree."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from commands import ENV, ltx2_command

README = Path(__file__).parents[1] / "README.md"


def examples(section: str) -> list[str]:
    """The ```python blocks under the README heading `section`, in order."""
    text = README.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start : end if end != -1 else None], flags=re.DOTALL)


def changed(code: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in code, f"the README example no longer has {old!r}"
        code = code.replace(old, new)
    return code


def run(code: str, cwd: Path) -> None:
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=ENV,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def tiny_with_loras(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme") / "tiny"
    result = ltx2_command("make-tiny", folder, "--with-loras")
    assert result.returncode == 0, result.stderr
    return folder


def test_two_stage_example(tiny_with_loras, tmp_path):
    """Two-stage generation with the distilled LoRA: the offload lines are guarded, so on a CPU it runs in float32."""
    (code,) = examples("Generate from Python")
    run(changed(code, {'"Lightricks/LTX-2"': repr(str(tiny_with_loras)),
                       "width=768, height=512, num_frames=121": "width=64, height=64, num_frames=9",
                       "num_inference_steps=40": "num_inference_steps=2"}), tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["sample.mp4"]


def test_network_examples(tiny_with_loras, tmp_path):
    """Loading the transformer alone, then building LTX-2.3's and LTX-2.5's on the meta device (one session: the
    second block uses the first's imports)."""
    loading, _, _, configs = examples("Networks and loading")
    run(changed(loading, {'"Lightricks/LTX-2"': repr(str(tiny_with_loras))}) + configs, tmp_path)


def test_layout_names_every_module_and_no_other():
    """The Layout section names each module of src/ltx2 (by file name; the __init__.py of a package aside) and only
    files that exist."""
    text = README.read_text()
    layout = text[text.index("\n## Layout\n"):]
    package = README.parent / "src" / "ltx2"
    modules = {path.name for path in package.rglob("*.py") if path.name != "__init__.py"}
    named = set(re.findall(r"`(\w+\.py)`", layout))
    assert modules - named == set()
    existing = modules | {path.name for path in (README.parent / "tests").rglob("*.py")}
    assert named - existing - {"__init__.py"} == set()


def test_memory_and_speed_example(tiny_with_loras, tmp_path):
    """FP8 storage and regional compile on a CPU; the GPU-only lines are guarded."""
    (code,) = examples("Memory and speed")
    run(changed(code, {'"Lightricks/LTX-2"': repr(str(tiny_with_loras))}), tmp_path)


def test_dfr_example(tmp_path):
    """One LTX2DFRPipeline pass on a tiny LTX-2.5 pipeline."""
    folder = tmp_path / "tiny-2.5"
    result = ltx2_command("make-tiny", folder, "--version", "2.5")
    assert result.returncode == 0, result.stderr
    (code,) = examples("LTX-2.5: DFR 1080p, temporal refine, HDR")
    run(changed(code, {'"path/to/LTX-2.5-Diffusers"': repr(str(folder)),
                       "height=544, width=960, num_frames=121": "height=64, width=64, num_frames=9"}), tmp_path)
