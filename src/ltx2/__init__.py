"""ltx2: LTX-2 audio+video generation inference, in plain PyTorch."""

from .loading import CheckpointError
from .models.transformer import LTX2VideoTransformer3DModel
from .models.upsampler import LTX2LatentUpsamplerModel

__version__ = "0.1.0"

__all__ = ["CheckpointError", "LTX2LatentUpsamplerModel", "LTX2VideoTransformer3DModel"]
