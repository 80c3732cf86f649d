"""ltx2: LTX-2 audio+video generation inference, in plain PyTorch."""

from .loading import CheckpointError
from .models.video_vae import AutoencoderKLLTX2Video

__version__ = "0.1.0"

__all__ = ["AutoencoderKLLTX2Video", "CheckpointError"]
