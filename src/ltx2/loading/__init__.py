"""Configs, checkpoints and the Hub: how ltx2 networks are built and filled with weights."""

from .checkpoint import CheckpointError
from .config import Config, Configurable
from .lora import LoraLoaderMixin
from .pretrained import PretrainedModel

__all__ = ["CheckpointError", "Config", "Configurable", "LoraLoaderMixin", "PretrainedModel"]
