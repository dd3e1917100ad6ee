"""Task models (backbones) behind the :class:`TaskModel` interface."""

from __future__ import annotations

from pathlib import Path

from pipeline_lib.artifacts import load_checkpoint
from pipeline_lib.config import BackboneParams
from pipeline_lib.models.base import TaskModel
from pipeline_lib.models.lenet import LeNet

__all__ = ["TaskModel", "LeNet", "build_backbone", "load_task_model"]


def build_backbone(params: BackboneParams, num_classes: int) -> TaskModel:
    if params.arch == "lenet":
        return LeNet(num_classes=num_classes, in_channels=params.channels, image_size=params.size)
    raise ValueError(f"unknown backbone architecture {params.arch!r}")  # unreachable: validated in config


def load_task_model(path: str | Path, params: BackboneParams) -> tuple[TaskModel, dict]:
    """Build the backbone and load a pipeline checkpoint into it; returns (model, meta)."""
    ckpt = load_checkpoint(path)
    model = build_backbone(params, num_classes=ckpt["meta"]["num_classes"])
    model.load_state_dict(ckpt["state"])
    return model, ckpt["meta"]
