"""The generation pipelines."""

from .condition import LTX2ConditionPipeline
from .conditioning import LTX2ReferenceCondition, LTX2VideoCondition
from .dfr import LTX2DFRPipeline, LTX2DFRPipelineOutput
from .temporal_refine import LTX2DFRTemporalRefinePipeline
from .diffusion_decode import LTX2VideoDecodeOutput, LTX2VideoDiffusionDecodePipeline
from .hdr import LTX2HDRPipeline, LTX2HDRReferenceCondition
from .image_to_video import LTX2ImageToVideoPipeline
from .in_context import LTX2InContextPipeline
from .latent_upsample import LTX2LatentUpsamplePipeline
from .sampling import LTX2PipelineOutput
from .text_to_video import LTX2Pipeline

__all__ = [
    "LTX2ConditionPipeline",
    "LTX2DFRPipeline",
    "LTX2DFRPipelineOutput",
    "LTX2DFRTemporalRefinePipeline",
    "LTX2HDRPipeline",
    "LTX2HDRReferenceCondition",
    "LTX2ImageToVideoPipeline",
    "LTX2InContextPipeline",
    "LTX2LatentUpsamplePipeline",
    "LTX2Pipeline",
    "LTX2PipelineOutput",
    "LTX2ReferenceCondition",
    "LTX2VideoCondition",
    "LTX2VideoDecodeOutput",
    "LTX2VideoDiffusionDecodePipeline",
]
