"""Metrics computed from one confusion matrix, for both tracks.

Every pixel (segmentation) or image (classification) is one sample. Rows are the true
class, columns the prediction. Definitions follow CyCADA section 4.2: with n_ij the number
of pixels of class i predicted as j and t_i = sum_j n_ij,

- per-class IoU_i = n_ii / (t_i + sum_j n_ji - n_ii), mIoU = mean over classes present;
- fwIoU = (sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii);
- pixel accuracy = sum_i n_ii / sum_i t_i (= classification accuracy).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

IGNORE_INDEX = 255


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Accumulate an int64 (C x C) confusion matrix; ``target == ignore_index`` is skipped."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long()
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(
            f"label ids must lie in 0..{num_classes - 1} or be {ignore_index} (ignore); "
            f"found {int(target.min())}..{int(target.max())}"
        )
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def pixel_accuracy(conf: np.ndarray) -> float:
    conf = np.asarray(conf, dtype=np.float64)
    total = conf.sum()
    return float(np.trace(conf) / total) if total else float("nan")


accuracy = pixel_accuracy


def per_class_iou(conf: np.ndarray) -> np.ndarray:
    """IoU per class; NaN for a class absent from both labels and predictions."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(conf: np.ndarray) -> float:
    iou = per_class_iou(conf)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def mean_class_accuracy(conf: np.ndarray) -> float:
    """Mean over the classes present in the labels of each class's recall (the "mean accuracy" of
    segmentation papers, e.g. feature-map regression's acc)."""
    conf = np.asarray(conf, dtype=np.float64)
    total = conf.sum(1)
    present = total > 0
    return float(np.mean(np.diag(conf)[present] / total[present])) if present.any() else float("nan")


def frequency_weighted_iou(conf: np.ndarray) -> float:
    conf = np.asarray(conf, dtype=np.float64)
    freq = conf.sum(1)
    iou = np.nan_to_num(per_class_iou(conf))
    return float((freq * iou).sum() / freq.sum()) if freq.sum() else float("nan")


def segmentation_scores(conf: np.ndarray, eval_classes: Sequence[int] | None = None) -> dict[str, object]:
    """mIoU, fwIoU, pixel accuracy, mean class accuracy and per-class IoU (NaN -> None), scored on ``eval_classes``
    (e.g. the 16 of SYNTHIA -> Cityscapes); the other rows and columns are dropped first."""
    conf = np.asarray(conf)
    if eval_classes is not None:
        idx = np.asarray(eval_classes)
        conf = conf[np.ix_(idx, idx)]
    iou = per_class_iou(conf)
    return {"miou": mean_iou(conf), "fwiou": frequency_weighted_iou(conf), "pixel_acc": pixel_accuracy(conf),
            "class_acc": mean_class_accuracy(conf), "iou": [None if np.isnan(v) else float(v) for v in iou]}


def label_distribution_bound(source_counts: Sequence[float], target_counts: Sequence[float],
                             eval_classes: Sequence[int] | None = None) -> dict[str, object]:
    """GAM section 5.3's oracle: the best scores of a model whose predicted label distribution is
    the source's (scaled to the target's pixel count), from per-class pixel counts alone.

    With p_l the predicted and t_l the true pixels of class l, at most min(p_l, t_l) pixels of
    class l can be right and the union is at least max(p_l, t_l), so IoU_l <= min / max, pixel
    accuracy <= sum_l min / sum_l t_l and class accuracy <= mean_l min / t_l. (The paper's text
    swaps min and max, which would give IoUs above 1.)
    """
    src, tgt = np.asarray(source_counts, np.float64), np.asarray(target_counts, np.float64)
    if eval_classes is not None:
        src, tgt = src[list(eval_classes)], tgt[list(eval_classes)]
    if src.sum() <= 0 or tgt.sum() <= 0:
        raise ValueError("label_distribution_bound needs labelled pixels in both domains")
    pred = src / src.sum() * tgt.sum()
    inter, union = np.minimum(pred, tgt), np.maximum(pred, tgt)
    present = union > 0
    iou = np.where(present, inter / np.where(present, union, 1), np.nan)
    has_target = tgt > 0
    return {"miou": float(np.nanmean(iou)), "pixel_acc": float(inter.sum() / tgt.sum()),
            "class_acc": float(np.mean(inter[has_target] / tgt[has_target])),
            "iou": [None if np.isnan(v) else float(v) for v in iou]}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    vals = [float(v) for v in values]
    if not vals:
        return float("nan"), float("nan")
    mean = sum(vals) / len(vals)
    if len(vals) == 1:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)
    return mean, math.sqrt(var)
