"""Batched inference and confusion-matrix accumulation."""

from __future__ import annotations

import torch
from torch import nn

from pipeline_lib.metrics import confusion_matrix
from pipeline_lib.runtime import autocast


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    model.to(device).eval()
    preds = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device, non_blocking=True)
        with autocast(device):
            preds.append(model(x).argmax(1).cpu())
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def evaluate_confusion(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                       device: torch.device, batch_size: int) -> torch.Tensor:
    return confusion_matrix(predict(model, images, device, batch_size), labels, num_classes)
