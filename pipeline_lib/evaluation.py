"""Batched inference and confusion-matrix accumulation, for both tracks."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from pipeline_lib.config import BackboneParams, EvaluateParams, SegEvaluateParams
from pipeline_lib.domains.resolve import Domain
from pipeline_lib.domains.transforms import to_uint8_images
from pipeline_lib.metrics import confusion_matrix
from pipeline_lib.runtime import autocast
from pipeline_lib.batches import in_order_batches


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    model.to(device).eval()
    preds = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device, non_blocking=True)
        with autocast(device):
            preds.append(model(x).argmax(1).cpu())
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def evaluate_classification(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                            device: torch.device, batch_size: int,
                            preview: int = 0) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """Confusion matrix over a test split; the first ``preview`` images come back as uint8 images with their
    predicted and true classes (for the report's picture grid), as :func:`evaluate_segmentation` does."""
    predictions = predict(model, images, device, batch_size)
    shown = {"images": to_uint8_images(images[:preview]), "predictions": predictions[:preview].numpy(),
             "labels": labels[:preview].numpy()}
    return confusion_matrix(predictions, labels, num_classes), shown


@torch.no_grad()
def evaluate_segmentation(model: nn.Module, dataset: Dataset, num_classes: int, device: torch.device,
                          batch_size: int, infer_max_width: int | None = None, num_workers: int = 0,
                          preview: int = 0) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """Confusion matrix over a frame dataset; the Cityscapes protocol of the papers' public code.

    A frame wider than ``infer_max_width`` is inferred scaled down to it (2048x1024 -> 1024x512), its logits
    upsampled bilinearly to the label's full resolution (2048x1024) and scored there; pixels
    labelled 255 are skipped. The first ``preview`` frames come back as uint8 images with their
    predictions and labels (for the report's pictures).
    """
    model.to(device).eval()
    conf = torch.zeros(num_classes, num_classes, dtype=torch.long)
    shown: dict[str, list[np.ndarray]] = {"images": [], "predictions": [], "labels": []}
    bar = tqdm(total=len(dataset), desc="evaluate", unit="frame", leave=False)  # frames: a batch of mixed sizes splits
    for images, masks in in_order_batches(dataset, batch_size, num_workers):
        bar.update(len(images))
        x = images.to(device, non_blocking=True)
        h, w = x.shape[-2:]
        if infer_max_width is not None and w > infer_max_width:
            x = F.interpolate(x, size=(max(1, round(h * infer_max_width / w)), infer_max_width), mode="bilinear",
                              align_corners=False)
        with autocast(device):
            logits = model(x).float()
        for i, mask in enumerate(masks):
            full = F.interpolate(logits[i:i + 1], size=tuple(mask.shape), mode="bilinear", align_corners=False)
            pred = full.argmax(1)[0].cpu()
            conf += confusion_matrix(pred, mask, num_classes)
            if len(shown["images"]) < preview:
                shown["images"].append(to_uint8_images(images[i:i + 1])[0])
                shown["predictions"].append(pred.numpy().astype(np.uint8))
                shown["labels"].append(mask.numpy().astype(np.uint8))
    bar.close()
    return conf, {k: np.stack(v) if v else np.zeros((0,), np.uint8) for k, v in shown.items()}


def score(model: nn.Module, model_task: str, data: Dataset, num_classes: int, device: torch.device,
          batch_size: int, eval_classes: list[int] | None = None, infer_max_width: int | None = None) -> float:
    """The task's headline metric of ``model`` on labelled ``data`` (a TensorDataset or any sequence of
    (image, label) pairs): accuracy, or mIoU over ``eval_classes``. The model's train/eval mode is kept."""
    from pipeline_lib.metrics import accuracy, segmentation_scores

    was_training = model.training
    if model_task == "classification":
        if hasattr(data, "tensors"):
            images, labels = data.tensors  # type: ignore[attr-defined]
        else:
            images, labels = torch.stack([x for x, _ in data]), torch.stack([torch.as_tensor(y) for _, y in data])
        value = accuracy(evaluate_classification(model, images, labels, num_classes, device, batch_size)[0].numpy())
    else:
        conf, _ = evaluate_segmentation(model, data, num_classes, device, batch_size, infer_max_width)
        value = float(segmentation_scores(conf.numpy(), eval_classes)["miou"])
    model.train(was_training)
    return value


def target_monitor(model_task: str, data: Dataset, num_classes: int, device: torch.device, batch_size: int,
                   eval_classes: list[int] | None = None, infer_max_width: int | None = None):
    """A per-epoch probe of the target test metric (accuracy or mIoU), for training curves only
    (GAM Fig. 5): it reads target labels, so it never selects a checkpoint."""

    def probe(model: nn.Module) -> float:
        return score(model, model_task, data, num_classes, device, batch_size, eval_classes, infer_max_width)

    return probe


#: a translation whose translated source keeps less than this share of the frozen source model's metric is flagged
CONTENT_KEPT_MIN = 2 / 3


def content_check(model: nn.Module, model_task: str, originals: Dataset, translated: Dataset, num_classes: int,
                  device: torch.device, batch_size: int, eval_classes: list[int] | None = None,
                  infer_max_width: int | None = None) -> dict[str, object]:
    """Whether a translation kept the source's content: the frozen source model's metric on the first source
    frames (``originals``) and on the same frames translated (``translated``, the same labels). A translator
    that destroys content (CyCADA's semantic loss is there to stop it) shows here before any model trains on
    it. Reads source labels only."""
    before = score(model, model_task, originals, num_classes, device, batch_size, eval_classes, infer_max_width)
    after = score(model, model_task, translated, num_classes, device, batch_size, eval_classes, infer_max_width)
    kept = after / before if before > 0 else None
    return {"metric": "accuracy" if model_task == "classification" else "miou", "frames": len(translated),
            "source": before, "translated": after, "kept": kept, "kept_min": CONTENT_KEPT_MIN,
            "flagged": kept is not None and kept < CONTENT_KEPT_MIN}


def experiment_target_monitor(source: Domain, target: Domain, backbone: BackboneParams,
                              cfg: EvaluateParams | SegEvaluateParams, num_classes: int, device: torch.device):
    """:func:`target_monitor` on ``target``'s test split with the track's evaluation settings ``cfg``;
    segmentation scores the source's evaluated classes (SYNTHIA -> Cityscapes: 16)."""
    from pipeline_lib.domains.loading import test_set

    data = test_set(target, backbone)
    if backbone.task == "classification":
        return target_monitor(backbone.task, data, num_classes, device, cfg.batch_size)
    return target_monitor(backbone.task, data, num_classes, device, cfg.batch_size, list(source.eval_classes),
                          cfg.infer_max_width)
