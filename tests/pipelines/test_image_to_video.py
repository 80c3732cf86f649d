"""LTX2ImageToVideoPipeline against the reference: first-frame conditioning, re-compression, stage 2, inputs."""

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers.pipelines.ltx2 import LTX2ImageToVideoPipeline as ReferenceImageToVideo
from diffusers.pipelines.ltx2.utils import apply_image_conditioning_crf

from ltx2 import LTX2ImageToVideoPipeline
from ltx2.pipelines.image_to_video import load_image
from ltx2.pipelines.images import recompress
from parity import LEGACY, relative_l2
from pipeline_calls import CALL, photo


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
    options = {**CALL, **kwargs}
    extra = dict(**LEGACY, audio_guidance_scale=options["guidance_scale"]) if reference else {}
    return pipe(**options, **extra, generator=torch.Generator().manual_seed(seed), return_dict=False)


@torch.no_grad()
@pytest.mark.parametrize("image_crf", [None, 0])
def test_image_to_video_matches_reference(pipes, image_crf):
    """LTX-2.0 defaults on ours; the reference pinned to LTX-2.0 guidance. A PIL image of another size than the
    video: re-compressed at the default CRF 33 (or not, with 0), then resized bilinearly, on both sides."""
    ours, reference = pipes
    crf = {} if image_crf is None else {"image_crf": image_crf}
    for output_type, tolerance in (("latent", 1e-4), ("pt", 1e-3)):
        video, audio = run(ours, 0, False, image=photo(), output_type=output_type, **crf)
        expected_video, expected_audio = run(reference, 0, True, image=photo(), output_type=output_type, **crf)
        assert video.shape == expected_video.shape
        assert relative_l2(video, expected_video) <= tolerance
        assert relative_l2(audio, expected_audio) <= tolerance


@torch.no_grad()
def test_default_crf_changes_the_output(pipes):
    ours, _ = pipes
    compressed, _ = run(ours, 0, False, image=photo(), output_type="latent")
    plain, _ = run(ours, 0, False, image=photo(), output_type="latent", image_crf=0)
    assert relative_l2(compressed, plain) > 1e-3
    assert ours.default_call_kwargs()["image_crf"] == 33


@torch.no_grad()
def test_tensor_images_match_reference_without_recompression(pipes):
    ours, reference = pipes
    video, audio = run(ours, 0, False, image=image(), output_type="latent", image_crf=0)
    expected_video, expected_audio = run(reference, 0, True, image=image(), output_type="latent", image_crf=0)
    assert relative_l2(video, expected_video) <= 1e-4 and relative_l2(audio, expected_audio) <= 1e-4


@pytest.mark.parametrize(("size", "crf"), [((44, 58), 33), ((31, 45), 33), ((40, 56), 18)])
def test_recompression_matches_reference_bit_exactly(size, crf):
    pixels = np.asarray(photo(*size))
    ours = recompress(pixels, crf)
    assert ours.shape == (size[0] // 2 * 2, size[1] // 2 * 2, 3)  # odd edges are dropped
    assert np.array_equal(ours, apply_image_conditioning_crf(pixels, crf))
    assert not np.array_equal(ours, pixels[: ours.shape[0], : ours.shape[1]])
    assert recompress(pixels, 0) is pixels
    with pytest.raises(ValueError, match="image_crf must be an integer in \\[0, 51\\]"):
        recompress(pixels, 60)


@torch.no_grad()
def test_stage_two_keeps_the_first_frame(pipes):
    ours, reference = pipes
    latents, audio_latents = run(ours, 1, False, image=image(), output_type="latent")
    kwargs = dict(latents=latents, audio_latents=audio_latents, noise_scale=0.5, sigmas=[0.9, 0.5], num_inference_steps=2,
                  guidance_scale=1.0, output_type="latent")
    video, audio = run(ours, 2, False, **kwargs)
    expected_video, expected_audio = run(reference, 2, True, image=None, image_crf=0, **kwargs)
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
