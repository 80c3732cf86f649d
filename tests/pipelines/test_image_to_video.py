"""LTX2ImageToVideoPipeline against the reference: first-frame conditioning, stage 2, image inputs."""

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers.pipelines.ltx2 import LTX2ImageToVideoPipeline as ReferenceImageToVideo

from ltx2 import LTX2ImageToVideoPipeline
from ltx2.pipelines.image_to_video import load_image
from parity import relative_l2
from test_text_to_video import CALL, LEGACY


@pytest.fixture(scope="module")
def pipes(pipeline_folder):
    folder, _ = pipeline_folder
    ours = LTX2ImageToVideoPipeline.from_pretrained(folder)
    reference = ReferenceImageToVideo.from_pretrained(folder)
    for pipe in (ours, reference):
        pipe.set_progress_bar_config(disable=True)
    return ours, reference


def image() -> torch.Tensor:
    return torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))


def run(pipe, seed: int, reference: bool, **kwargs):
    options = {**CALL, "image_crf": 0, **kwargs}
    extra = dict(**LEGACY, audio_guidance_scale=options["guidance_scale"]) if reference else {}
    return pipe(**options, **extra, generator=torch.Generator().manual_seed(seed), return_dict=False)


@torch.no_grad()
def test_image_to_video_matches_reference(pipes):
    ours, reference = pipes
    for output_type, tolerance in (("latent", 1e-4), ("pt", 1e-3)):
        video, audio = run(ours, 0, False, image=image(), output_type=output_type)
        expected_video, expected_audio = run(reference, 0, True, image=image(), output_type=output_type)
        assert video.shape == expected_video.shape
        assert relative_l2(video, expected_video) <= tolerance
        assert relative_l2(audio, expected_audio) <= tolerance


@torch.no_grad()
def test_stage_two_keeps_the_first_frame(pipes):
    ours, reference = pipes
    latents, audio_latents = run(ours, 1, False, image=image(), output_type="latent")
    kwargs = dict(latents=latents, audio_latents=audio_latents, noise_scale=0.5, sigmas=[0.9, 0.5], num_inference_steps=2,
                  guidance_scale=1.0, output_type="latent")
    video, audio = run(ours, 2, False, **kwargs)
    expected_video, expected_audio = run(reference, 2, True, image=None, **kwargs)
    assert relative_l2(video, expected_video) <= 1e-4 and relative_l2(audio, expected_audio) <= 1e-4
    assert torch.allclose(video[:, :, 0], latents[:, :, 0], atol=1e-5)


def test_image_inputs_agree(tmp_path):
    pixels = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    pil = PIL.Image.fromarray(pixels)
    pil.save(tmp_path / "frame.png")
    from_path = load_image(tmp_path / "frame.png", 32, 48)
    assert from_path.shape == (1, 3, 32, 48) and -1 <= from_path.min() and from_path.max() <= 1
    assert torch.equal(from_path, load_image(pil, 32, 48))
    as_array = load_image(pixels, 32, 48)
    assert torch.equal(as_array, load_image(torch.from_numpy(pixels).permute(2, 0, 1) / 255.0, 32, 48))
    with pytest.raises(ValueError, match="could not be read"):
        load_image(tmp_path / "missing.png", 32, 48)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="could not be read"):
        load_image(tmp_path / "junk.png", 32, 48)


@torch.no_grad()
def test_pil_image_recompressed_at_the_default_crf_matches_reference(pipes):
    """A PIL image of another size: H.264 re-compression at the model's CRF (33), then a bilinear resize."""
    ours, reference = pipes
    pixels = (np.random.default_rng(1).random((40, 56, 3)) * 255).astype(np.uint8)
    picture = PIL.Image.fromarray(pixels)
    options = dict(image=picture, image_crf=None, output_type="latent")
    video, audio = run(ours, 3, False, **options)
    expected_video, expected_audio = run(reference, 3, True, **options)
    assert relative_l2(video, expected_video) <= 1e-4 and relative_l2(audio, expected_audio) <= 1e-4
    uncompressed, _ = run(ours, 3, False, **{**options, "image_crf": 0})
    assert relative_l2(uncompressed, video) > 1e-3  # the re-compression took part


def test_recompressing_a_tensor_image_is_refused(pipes):
    ours, _ = pipes
    with pytest.raises(ValueError, match="image_crf"):
        run(ours, 0, False, image=image(), image_crf=None)
