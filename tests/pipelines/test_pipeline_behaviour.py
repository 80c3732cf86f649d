"""Pipeline behaviour beyond parity: offload modes, seeds, bad input before any model runs, save/load."""

import pytest
import torch

from ltx2 import LTX2ImageToVideoPipeline, LTX2Pipeline
from parity import relative_l2
from pipeline_calls import CALL

FAST = {**CALL, "num_inference_steps": 2, "output_type": "pt"}


@pytest.fixture(scope="module")
def pipe(pipeline_folder):
    folder, _ = pipeline_folder
    pipe = LTX2Pipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, seed=0, **kwargs):
    return pipe(**{**FAST, **kwargs}, generator=torch.Generator().manual_seed(seed), return_dict=False)


@torch.no_grad()
@pytest.mark.parametrize("mode", ["model", "sequential"])
def test_offload_gives_the_same_result(pipeline_folder, mode):
    folder, _ = pipeline_folder
    plain = LTX2Pipeline.from_pretrained(folder)
    offloaded = LTX2Pipeline.from_pretrained(folder)
    for pipe in (plain, offloaded):
        pipe.set_progress_bar_config(disable=True)
    getattr(offloaded, f"enable_{mode}_cpu_offload")(device="cpu")
    expected = generate(plain)
    actual = generate(offloaded)
    for a, b in zip(actual, expected):
        assert torch.equal(a, b)


@torch.no_grad()
def test_generator_lists_seed_each_video(pipe):
    """With one generator per video, each video's noise comes from its own generator alone."""
    latent = {**FAST, "output_type": "latent"}
    pair = pipe(**latent, num_videos_per_prompt=2, return_dict=False,
                generator=[torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)])
    first = pipe(**latent, return_dict=False, generator=[torch.Generator().manual_seed(1)])
    second = pipe(**latent, return_dict=False, generator=torch.Generator().manual_seed(2))
    for both, one, other in zip(pair, first, second):
        assert relative_l2(both[:1], one) < 1e-5 and relative_l2(both[1:], other) < 1e-5


@torch.no_grad()
def test_repeated_prompt_does_not_run_the_text_encoder_again(pipe):
    calls = []
    handle = pipe.text_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        pipe.prompt_encoder.clear()
        generate(pipe, num_inference_steps=1, output_type="latent")
        first = len(calls)
        generate(pipe, num_inference_steps=1, output_type="latent")
    finally:
        handle.remove()
    assert first == 2 and len(calls) == first  # the prompt and the negative prompt once each, then cached


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(height=33), "height"),
        (dict(width=0), "width"),
        (dict(num_frames=10), "num_frames"),
        (dict(num_inference_steps=0), "num_inference_steps"),
        (dict(output_type="gif"), "output_type"),
        (dict(latents=torch.randn(1, 3, 2, 4, 4)), "latents"),
        (dict(audio_latents=torch.randn(1, 2, 5)), "audio_latents"),
        (dict(prompt=[]), "prompt"),
        (dict(prompt=None), "prompt"),
        (dict(negative_prompt=["a", "b"]), "negative_prompt"),
        (dict(max_sequence_length=12), "max_sequence_length"),
        (dict(frame_rate=0), "frame_rate"),
    ],
)
def test_bad_input_raises_before_any_model_runs(pipe, change, message):
    def refuse(*args, **kwargs):
        raise AssertionError("a model ran")

    handles = [module.register_forward_pre_hook(refuse) for module in (pipe.transformer, pipe.text_encoder, pipe.connectors)]
    try:
        with pytest.raises(ValueError, match=message):
            generate(pipe, **change)
    finally:
        for handle in handles:
            handle.remove()


def test_image_to_video_needs_an_image(pipeline_folder):
    folder, _ = pipeline_folder
    pipe = LTX2ImageToVideoPipeline.from_pretrained(folder)
    with pytest.raises(ValueError, match="image"):
        pipe(**FAST)
    with pytest.raises(ValueError, match="image"):
        pipe(image="/does/not/exist.png", **FAST)


@torch.no_grad()
def test_save_and_reload_round_trip(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    reloaded = LTX2Pipeline.from_pretrained(tmp_path)
    reloaded.set_progress_bar_config(disable=True)
    for a, b in zip(generate(reloaded, output_type="latent"), generate(pipe, output_type="latent")):
        assert torch.equal(a, b)


def test_progress_bar_can_be_silenced(pipe, capsys):
    pipe.set_progress_bar_config(disable=False)
    generate(pipe, num_inference_steps=1, output_type="latent")
    assert "1/1" in capsys.readouterr().err
    pipe.set_progress_bar_config(disable=True)
    generate(pipe, num_inference_steps=1, output_type="latent")
    assert capsys.readouterr().err == ""


@torch.no_grad()
def test_vae_config_without_compression_ratios(pipe, pipeline_folder, tmp_path):
    """A VAE config.json with null compression ratios (the encoder's blocks imply them) generates the same."""
    import json

    folder, _ = pipeline_folder
    for item in folder.iterdir():
        if item.name != "vae":
            (tmp_path / item.name).symlink_to(item, target_is_directory=item.is_dir())
    (tmp_path / "vae").mkdir()
    config = json.loads((folder / "vae" / "config.json").read_text())
    (tmp_path / "vae" / "config.json").write_text(
        json.dumps({**config, "spatial_compression_ratio": None, "temporal_compression_ratio": None})
    )
    for weights in (folder / "vae").glob("*.safetensors"):
        (tmp_path / "vae" / weights.name).symlink_to(weights)
    unstated = LTX2Pipeline.from_pretrained(tmp_path)
    unstated.set_progress_bar_config(disable=True)
    assert unstated.vae.config.spatial_compression_ratio is None
    for ours, expected in zip(generate(unstated, output_type="latent"), generate(pipe, output_type="latent")):
        assert torch.equal(ours, expected)
