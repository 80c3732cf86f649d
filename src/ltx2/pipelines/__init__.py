"""The generation pipelines."""

from .image_to_video import LTX2ImageToVideoPipeline
from .latent_upsample import LTX2LatentUpsamplePipeline
from .sampling import LTX2PipelineOutput
from .text_to_video import LTX2Pipeline

__all__ = ["LTX2ImageToVideoPipeline", "LTX2LatentUpsamplePipeline", "LTX2Pipeline", "LTX2PipelineOutput"]
