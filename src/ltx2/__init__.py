"""ltx2: LTX-2 audio+video generation inference, in plain PyTorch."""

from .loading import CheckpointError
from .models.connectors import LTX2TextConnectors
from .models.transformer import LTX2VideoTransformer3DModel
from .models.upsampler import LTX2LatentUpsamplerModel
from .scheduler import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES, FlowMatchEulerDiscreteScheduler

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "DISTILLED_SIGMA_VALUES",
    "FlowMatchEulerDiscreteScheduler",
    "LTX2LatentUpsamplerModel",
    "LTX2TextConnectors",
    "LTX2VideoTransformer3DModel",
    "STAGE_2_DISTILLED_SIGMA_VALUES",
]
