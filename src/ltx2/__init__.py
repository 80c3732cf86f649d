"""ltx2: LTX-2 audio+video generation inference, in plain PyTorch."""

from __future__ import annotations

import importlib
from typing import Any

# Each public name and the module that defines it, imported on first use: `import ltx2` stays light, so that the
# `ltx2` command answers bad arguments and Ctrl-C before torch loads.
_EXPORTS = {
    "encode_video": ".export",
    "CheckpointError": ".loading",
    "LoraLoaderMixin": ".loading",
    "AutoencoderKLLTX2Audio": ".models.audio_vae",
    "LTX2TextConnectors": ".models.connectors",
    "LTX2VideoTransformer3DModel": ".models.transformer",
    "LTX2LatentUpsamplerModel": ".models.upsampler",
    "AutoencoderKLLTX2Video": ".models.video_vae",
    "LTX2Vocoder": ".models.vocoder",
    "LTX2VocoderWithBWE": ".models.vocoder",
    "LTX2ConditionPipeline": ".pipelines",
    "LTX2ImageToVideoPipeline": ".pipelines",
    "LTX2InContextPipeline": ".pipelines",
    "LTX2LatentUpsamplePipeline": ".pipelines",
    "LTX2Pipeline": ".pipelines",
    "LTX2PipelineOutput": ".pipelines",
    "LTX2ReferenceCondition": ".pipelines",
    "LTX2VideoCondition": ".pipelines",
    "FlowMatchEulerDiscreteScheduler": ".scheduler",
    "ContextParallelConfig": ".transforms.context_parallel",
    "DISTILLED_SIGMA_VALUES": ".versions",
    "STAGE_2_DISTILLED_SIGMA_VALUES": ".versions",
}

__version__ = "0.1.0"
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ltx2' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
