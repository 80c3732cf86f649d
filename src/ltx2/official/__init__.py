"""Official mode: Lightricks' own pipelines (ltx-pipelines 1.0.0) reproduced on ltx2's networks.

Code written for ltx-pipelines runs with its imports changed to `from ltx2.official import ...`: the same classes,
constructor and call signatures, return values (an iterator of uint8 frame chunks and an Audio with .waveform) and
conventions (noise drawn on the packed token layout in bfloat16, the constant-shift schedule, STG as value
pass-through, bfloat16 positions and guidance, LoRAs fused into the weights). ltx2's diffusers-style pipelines keep
diffusers' conventions; the two are not mixed.
"""

from .a2vid_two_stage import A2VidPipelineTwoStage
from .distilled import DistilledPipeline
from .ic_lora import ICLoraPipeline
from .keyframe_interpolation import KeyframeInterpolationPipeline
from .retake import RetakePipeline
from .ti2vid_one_stage import TI2VidOneStagePipeline
from .ti2vid_two_stages import TI2VidTwoStagesPipeline
from .ti2vid_two_stages_hq import TI2VidTwoStagesHQPipeline
from .types import (
    DEFAULT_NEGATIVE_PROMPT,
    DISTILLED_SIGMA_VALUES,
    LTXV_LORA_COMFY_RENAMING_MAP,
    STAGE_2_DISTILLED_SIGMA_VALUES,
    Audio,
    ImageConditioningInput,
    LoraPathStrengthAndSDOps,
    MultiModalGuiderFactory,
    MultiModalGuiderParams,
)

__all__ = [
    "DEFAULT_NEGATIVE_PROMPT",
    "DISTILLED_SIGMA_VALUES",
    "LTXV_LORA_COMFY_RENAMING_MAP",
    "RetakePipeline",
    "STAGE_2_DISTILLED_SIGMA_VALUES",
    "A2VidPipelineTwoStage",
    "Audio",
    "DistilledPipeline",
    "ICLoraPipeline",
    "ImageConditioningInput",
    "KeyframeInterpolationPipeline",
    "LoraPathStrengthAndSDOps",
    "MultiModalGuiderFactory",
    "MultiModalGuiderParams",
    "TI2VidOneStagePipeline",
    "TI2VidTwoStagesHQPipeline",
    "TI2VidTwoStagesPipeline",
]
