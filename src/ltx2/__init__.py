"""ltx2: LTX-2 audio+video generation inference, in plain PyTorch."""

from .export import encode_video
from .loading import CheckpointError, LoraLoaderMixin
from .models.audio_vae import AutoencoderKLLTX2Audio
from .models.connectors import LTX2TextConnectors
from .models.transformer import LTX2VideoTransformer3DModel
from .models.upsampler import LTX2LatentUpsamplerModel
from .models.video_vae import AutoencoderKLLTX2Video
from .models.vocoder import LTX2Vocoder, LTX2VocoderWithBWE
from .pipelines import (
    LTX2ConditionPipeline,
    LTX2ImageToVideoPipeline,
    LTX2InContextPipeline,
    LTX2LatentUpsamplePipeline,
    LTX2Pipeline,
    LTX2PipelineOutput,
    LTX2ReferenceCondition,
    LTX2VideoCondition,
)
from .scheduler import FlowMatchEulerDiscreteScheduler
from .transforms.context_parallel import ContextParallelConfig
from .versions import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES

__version__ = "0.1.0"

__all__ = [
    "AutoencoderKLLTX2Audio",
    "AutoencoderKLLTX2Video",
    "CheckpointError",
    "ContextParallelConfig",
    "DISTILLED_SIGMA_VALUES",
    "FlowMatchEulerDiscreteScheduler",
    "LTX2ConditionPipeline",
    "LTX2ImageToVideoPipeline",
    "LTX2InContextPipeline",
    "LTX2LatentUpsamplePipeline",
    "LTX2LatentUpsamplerModel",
    "LTX2Pipeline",
    "LTX2PipelineOutput",
    "LTX2ReferenceCondition",
    "LTX2TextConnectors",
    "LTX2Vocoder",
    "LTX2VocoderWithBWE",
    "LoraLoaderMixin",
    "LTX2VideoCondition",
    "LTX2VideoTransformer3DModel",
    "STAGE_2_DISTILLED_SIGMA_VALUES",
    "encode_video",
]
