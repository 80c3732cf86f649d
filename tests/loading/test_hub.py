"""Hub downloads, with the network replaced: what is requested, the cache, and the offline error."""

import shutil

import huggingface_hub
import pytest
import torch
from huggingface_hub import constants
from original_checkpoint import write_combined

from ltx2 import LTX2LatentUpsamplePipeline, LTX2Pipeline, LTX2VideoTransformer3DModel, LTX2Vocoder

PIPELINE_PATTERNS = ["model_index.json", "scheduler/*", "vae/*", "audio_vae/*", "text_encoder/*", "tokenizer/*",
                     "connectors/*", "transformer/*", "vocoder/*", "processor/*",
                     # LTX-2.5's optional components, asked for whether or not the repo has them
                     "duration_head/*", "diffusion_decoder/*"]


@pytest.fixture
def fake_snapshot(monkeypatch, pipeline_folder):
    """Every snapshot_download answers with the tiny pipeline folder; returns the recorded calls."""
    calls = []

    def snapshot_download(repo_id, **options):
        calls.append((repo_id, options))
        return str(pipeline_folder[0])

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def test_pipeline_fetches_model_index_then_only_its_components(fake_snapshot):
    pipe = LTX2Pipeline.from_pretrained("Lightricks/LTX-2")
    assert pipe.transformer is not None and pipe.tokenizer is not None
    assert [options["allow_patterns"] for _, options in fake_snapshot] == [["model_index.json"], PIPELINE_PATTERNS]
    for repo_id, options in fake_snapshot:
        assert repo_id == "Lightricks/LTX-2"
        assert options["local_files_only"] is False
        assert "*.bin" in options["ignore_patterns"]  # never the single files or other formats


def test_components_given_are_not_downloaded(fake_snapshot, pipeline_folder):
    reference_vae = pipeline_folder[1].vae
    LTX2LatentUpsamplePipeline.from_pretrained("Lightricks/LTX-2", vae=reference_vae)
    assert fake_snapshot[-1][1]["allow_patterns"] == ["model_index.json", "latent_upsampler/*"]


def test_model_fetches_its_subfolder_only(fake_snapshot):
    LTX2VideoTransformer3DModel.from_pretrained("Lightricks/LTX-2", subfolder="transformer")
    assert [options["allow_patterns"] for _, options in fake_snapshot] == [["transformer/*"]]


def test_single_file_by_repo_path_or_url(monkeypatch, tmp_path):
    path = tmp_path / "ltx-2-19b-dev.safetensors"
    write_combined(path)
    calls = []

    def hf_hub_download(repo_id, filename, subfolder=None, **options):
        calls.append((repo_id, filename, options.get("revision")))
        return str(path)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    by_path = LTX2Vocoder.from_single_file("Lightricks/LTX-2/ltx-2-19b-dev.safetensors")
    by_url = LTX2Vocoder.from_single_file("https://huggingface.co/Lightricks/LTX-2/blob/v1/ltx-2-19b-dev.safetensors")
    assert calls == [("Lightricks/LTX-2", "ltx-2-19b-dev.safetensors", None),
                     ("Lightricks/LTX-2", "ltx-2-19b-dev.safetensors", "v1")]
    assert all(torch.equal(a, b) for a, b in zip(by_path.state_dict().values(), by_url.state_dict().values()))


def cache_with(tmp_path, pipeline_folder, subfolders):
    """A Hugging Face cache holding Lightricks/LTX-2 at one revision, with only `subfolders` of the pipeline."""
    repo = tmp_path / "hub" / "models--Lightricks--LTX-2"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    shutil.copy(pipeline_folder / "model_index.json", snapshot)
    for name in subfolders:
        shutil.copytree(pipeline_folder / name, snapshot / name)
    return tmp_path / "hub"


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError("the network was used while HF_HUB_OFFLINE is set")

    monkeypatch.setattr("socket.socket.connect", no_network)


def test_offline_cache_hit_loads_without_network(tmp_path, monkeypatch, pipeline_folder, offline):
    folder = pipeline_folder[0]
    names = [path.name for path in folder.iterdir() if path.is_dir()]
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_with(tmp_path, folder, names)))
    pipe = LTX2Pipeline.from_pretrained("Lightricks/LTX-2")
    assert pipe.vocoder is not None


def test_offline_and_partly_cached_names_the_missing_files(tmp_path, monkeypatch, pipeline_folder, offline):
    cache = cache_with(tmp_path, pipeline_folder[0], ["scheduler", "vae", "audio_vae", "tokenizer", "vocoder"])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    missing = r"HF_HUB_OFFLINE.*lacks text_encoder/\*, connectors/\*, transformer/\*;"
    with pytest.raises(FileNotFoundError, match=missing):
        LTX2Pipeline.from_pretrained("Lightricks/LTX-2")


def test_offline_and_not_cached_fails_at_once(tmp_path, monkeypatch, offline):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"lacks model_index\.json, scheduler/\*, vae/\*"):
        LTX2Pipeline.from_pretrained("Lightricks/LTX-2")
    with pytest.raises(FileNotFoundError, match=r"lacks ltx-2-19b-dev\.safetensors"):
        LTX2Vocoder.from_single_file("Lightricks/LTX-2/ltx-2-19b-dev.safetensors")
    with pytest.raises(FileNotFoundError, match=r"lacks transformer/\*"):
        LTX2VideoTransformer3DModel.from_pretrained("Lightricks/LTX-2", subfolder="transformer")
