"""KeyframeInterpolationPipeline: the two-stage flow with every image appended as keyframe tokens (frame 0 too)."""

from __future__ import annotations

import sys

from .ti2vid_two_stages import TI2VidTwoStagesPipeline


class KeyframeInterpolationPipeline(TI2VidTwoStagesPipeline):
    """ltx-pipelines' keyframe interpolation: same constructor and call as TI2VidTwoStagesPipeline; the images are
    keyframes the video passes through (each appended with its frame's positions, kept by its strength)."""

    keyframes_only = True


def main() -> None:
    from .cli import run_module

    sys.exit(run_module("keyframe_interpolation"))


if __name__ == "__main__":
    main()
