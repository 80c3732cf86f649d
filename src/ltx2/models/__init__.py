"""The networks, one file each. `NETWORKS` names each class by the module that defines it, so that a class is
imported only when something of its kind is loaded."""

from __future__ import annotations

import importlib

NETWORKS = {
    "LTX2VideoTransformer3DModel": "ltx2.models.transformer",
    "AutoencoderKLLTX2Video": "ltx2.models.video_vae",
    "AutoencoderKLLTX2Audio": "ltx2.models.audio_vae",
    "LTX2Vocoder": "ltx2.models.vocoder",
    "LTX2VocoderWithBWE": "ltx2.models.vocoder",
    "LTX2TextConnectors": "ltx2.models.connectors",
    "LTX2LatentUpsamplerModel": "ltx2.models.upsampler",
}
# LTX-2.5's own networks, optional components of a pipeline (duration_head/, diffusion_decoder/; in a single file
# where it holds them).
FOLDER_NETWORKS = {
    "LTX2DurationHead": "ltx2.models.duration_head",
    "LTX2VideoDiffusionDecoderModel": "ltx2.models.diffusion_decoder",
}


def network_class(class_name: str) -> type:
    """The ltx2 network class called `class_name` (one of NETWORKS or FOLDER_NETWORKS)."""
    module = NETWORKS.get(class_name) or FOLDER_NETWORKS[class_name]
    return getattr(importlib.import_module(module), class_name)


def single_file_networks(version: str) -> dict[str, type]:
    """Component name -> our network class, for every network a single file of LTX `version` can hold."""
    classes = [network_class(name) for name in (*NETWORKS, *FOLDER_NETWORKS)]
    return {cls.single_file_component: cls for cls in classes
            if hasattr(cls, "single_file_component") and version in cls.single_file_versions}
