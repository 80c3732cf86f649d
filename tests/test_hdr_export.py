"""HDR writers: LogC3 and the tone-mapped MP4 against diffusers 0.42.1; the 10-bit PQ/HLG MP4 and EXR files read back."""

import av
import numpy as np
import pytest
import torch
from diffusers.pipelines.ltx2.export_utils import encode_hdr_tensor_to_mp4 as reference_encode
from diffusers.pipelines.ltx2.image_processor import LTX2VideoHDRProcessor

from ltx2.hdr import (
    encode_hdr_tensor_to_mp4,
    encode_hdr_video,
    linear_to_hdr_signal,
    logc3_to_linear,
    write_exr_sequence,
)


def hdr_frames(frames=4, height=64, width=96, seed=0) -> np.ndarray:
    """Smooth linear-light frames with highlights up to ~6x white (compressible, so the codecs are near-lossless)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([np.sin(3 * x + k) * np.cos(2 * y - k) for k in range(3)], -1)
    return np.stack([(1.5 + 1.5 * base) ** 2 * (0.5 + 0.1 * i) + 0.01 * rng.random((height, width, 3))
                     for i in range(frames)]).astype(np.float32)


def decoded(path, fmt="rgb24"):
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format=fmt) for frame in container.decode(video=0)])


def test_logc3_matches_reference():
    code = torch.linspace(-0.2, 1.2, 4001)
    assert torch.equal(logc3_to_linear(code), LTX2VideoHDRProcessor._logc3_decompress(code))


@pytest.mark.parametrize("in_rgb,tone_map", [(True, None), (False, lambda x: x / (1 + x))])
def test_tone_mapped_mp4_matches_reference(tmp_path, monkeypatch, in_rgb, tone_map):
    """The 8-bit pictures handed to the encoder are identical (x264 itself is not bit-deterministic across runs)."""
    handed = []
    from_ndarray = av.VideoFrame.from_ndarray

    def recording(array, format, **kwargs):
        handed.append((array.copy(), format))
        return from_ndarray(array, format=format, **kwargs)

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", recording)
    frames = hdr_frames()
    encode_hdr_tensor_to_mp4(torch.from_numpy(frames), tmp_path / "ours.mp4", 24.0, tone_map, in_rgb)
    ours, handed[:] = handed[:], []
    reference_encode(frames, tmp_path / "reference.mp4", 24.0, tone_map, in_rgb)
    assert len(ours) == len(handed) == 4
    for (a, format_a), (b, format_b) in zip(ours, handed):
        assert format_a == format_b and a.dtype == b.dtype and np.array_equal(a, b)
    assert np.abs(decoded(tmp_path / "ours.mp4").astype(int) - decoded(tmp_path / "reference.mp4")).mean() < 0.5


def test_tone_mapped_mp4_odd_size_and_bad_input(tmp_path):
    encode_hdr_tensor_to_mp4(hdr_frames(2, 33, 47), tmp_path / "odd.mp4", 24.0)
    assert decoded(tmp_path / "odd.mp4").shape == (2, 34, 48, 3)
    with pytest.raises(ValueError, match="frames"):
        encode_hdr_tensor_to_mp4(np.zeros((2, 8, 8)), tmp_path / "bad.mp4", 24.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]


def test_transfer_curves():
    white = np.ones((1, 1, 3), np.float32)
    # BT.2408: diffuse white at 203 nits is 58% PQ; HLG puts it at 75%.
    assert linear_to_hdr_signal(white, "pq")[0, 0, 0] == pytest.approx(0.5807, abs=2e-4)
    assert linear_to_hdr_signal(white, "hlg")[0, 0, 0] == pytest.approx(0.75, abs=1e-6)
    assert linear_to_hdr_signal(white * 10000 / 203, "pq")[0, 0, 0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="transfer"):
        linear_to_hdr_signal(white, "srgb")


@pytest.mark.parametrize("transfer,size,codec", [("pq", (64, 96), "hevc"), ("hlg", (66, 70), "hevc"),
                                                 ("pq", (30, 42), "h264")])
def test_ten_bit_mp4(tmp_path, transfer, size, codec):
    frames = hdr_frames(3, *size)
    encode_hdr_video(frames, tmp_path / "hdr.mp4", 24.0, transfer=transfer, crf=4)
    with av.open(str(tmp_path / "hdr.mp4")) as container:
        context = container.streams.video[0].codec_context
        assert (context.name, context.pix_fmt) == (codec, "yuv420p10le")
        assert (context.color_primaries, context.colorspace, context.color_range) == (9, 9, 1)
        assert context.color_trc == (16 if transfer == "pq" else 18)
        luma = np.stack([f.to_ndarray()[: f.height] for f in container.decode(video=0)]).astype(np.float64)
    height, width = -(-size[0] // 4) * 4, -(-size[1] // 4) * 4
    padded = np.pad(frames, ((0, 0), (0, height - size[0]), (0, width - size[1]), (0, 0)), "edge")
    signal = linear_to_hdr_signal(padded, transfer)
    expected = 64 + 876 * (signal @ np.array([0.2627, 0.6780, 0.0593]))
    assert luma.shape == expected.shape
    assert np.abs(luma - expected).mean() < 2.0  # 10-bit codes; near-lossless at crf 4


@pytest.mark.parametrize("half,compression", [(True, "zip"), (False, "zip"), (True, "none"), (False, "none")])
def test_exr_sequence_reads_back_exactly(tmp_path, half, compression):
    frames = hdr_frames(2, 40, 50)
    paths = write_exr_sequence(frames, tmp_path / "exr", half=half, compression=compression)
    assert [p.name for p in paths] == ["frame_00000.exr", "frame_00001.exr"]
    dtype = np.float16 if half else np.float32
    for path, frame in zip(paths, frames):
        with av.open(str(path)) as container:
            image = next(container.decode(video=0))
            g, b, r = (np.frombuffer(bytes(plane), dtype).reshape(image.height, -1)[:, : image.width]
                       for plane in image.planes)
        assert np.array_equal(np.stack([r, g, b], -1), frame.astype(dtype))
    assert sorted(p.name for p in (tmp_path / "exr").iterdir()) == ["frame_00000.exr", "frame_00001.exr"]
