"""Task models (backbones) behind the :class:`TaskModel` interface."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from pipeline_lib.artifacts import load_checkpoint
from pipeline_lib.config import BackboneParams
from pipeline_lib.errors import PipelineError
from pipeline_lib.models.base import TaskModel
from pipeline_lib.models.lenet import LeNet

__all__ = ["TaskModel", "LeNet", "build_backbone", "load_calibrated_model", "load_task_model"]


def build_backbone(params: BackboneParams, num_classes: int) -> TaskModel:
    if params.arch == "lenet":
        assert params.size is not None  # validated in config
        return LeNet(num_classes=num_classes, in_channels=params.channels, image_size=params.size)
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


def load_calibrated_model(path: str | Path, params: BackboneParams) -> tuple[nn.Module, dict]:
    """A calibrator checkpoint with the frozen model it was trained for (named in its meta):
    the deployed ``F_s o G_c``; returns (model, meta)."""
    from pipeline_lib.models.calibrator import CalibratedModel, Calibrator
    ckpt = load_checkpoint(path)
    meta = ckpt["meta"]
    calibrator = Calibrator(**meta["calibrator"])
    calibrator.load_state_dict(ckpt["state"])
    frozen, _ = load_task_model(meta["frozen_model"], params)
    return CalibratedModel(calibrator, frozen), meta
