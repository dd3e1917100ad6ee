"""Task models (backbones) behind the :class:`TaskModel` interface.

:func:`build_backbone` imports the one backbone module it builds (``lenet``, ``segmenters`` and the
architecture's own module), so a stage depends only on the code of its backbone.
"""

from __future__ import annotations

from pathlib import Path

from pipeline_lib.artifacts import load_checkpoint
from pipeline_lib.config import BackboneParams
from pipeline_lib.errors import PipelineError
from pipeline_lib.models.base import TaskModel

__all__ = ["TaskModel", "build_backbone", "load_task_model"]


def build_backbone(params: BackboneParams, num_classes: int) -> TaskModel:
    if params.arch == "lenet":
        from pipeline_lib.models.lenet import LeNet
        assert params.size is not None  # validated in config
        return LeNet(num_classes=num_classes, in_channels=params.channels, image_size=params.size)
    if params.arch in ("resnet18", "resnet50"):
        from pipeline_lib.models.resnet import ResNet, weights_file
        return ResNet(params.arch, num_classes, params.channels, weights_file(params.arch, params.weights,
                                                                               params.pretrained))
    from pipeline_lib.models.segmenters import SEGMENTERS
    try:
        return SEGMENTERS[params.arch](num_classes, pretrained=params.pretrained)
    except (OSError, RuntimeError) as err:
        if not params.pretrained:
            raise
        raise PipelineError(f"could not load ImageNet weights for {params.arch} ({type(err).__name__}); "
                            "connect to the network once or set pretrained: false") from None


def load_task_model(path: str | Path, params: BackboneParams) -> tuple[TaskModel, dict]:
    """Build the backbone and load a pipeline checkpoint into it; returns (model, meta)."""
    ckpt = load_checkpoint(path)
    model = build_backbone(params, num_classes=ckpt["meta"]["num_classes"])
    model.add_matchers(ckpt["meta"].get("matchers", {}))  # GAM's explicit per-channel affines
    model.load_state_dict(ckpt["state"])
    return model, ckpt["meta"]
