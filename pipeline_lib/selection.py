"""Choosing a checkpoint without target labels: what ``select`` computes from a row's checkpoint series.

Every adapted row's training stage keeps the weights of a few epochs (:class:`pipeline_lib.training.Series`);
``select`` loads each with the row's loader and runs it over three samples: target *training* images (images
only: :func:`outputs` never sees a label), held-out source images with their labels, and source training images
(features only, for DEV's domain classifier). Each validator of :mod:`pipeline_lib.validators` scores it from
those (:func:`scores`), and each picks the checkpoint it scores highest (:func:`choose`). The target-label oracle,
the checkpoint with the best target test metric, is computed beside them and always marked as reading target
labels: it is what the choice costs, never what is chosen.

The per-experiment validator table (:func:`validator_table`) follows Musgrave, Belongie and Lim, "Benchmarking
Validation Methods for Unsupervised Domain Adaptation" (2022): each validator's *regret* (the oracle's target
metric minus that of the validator's choice, averaged over rows and seeds) and its *weighted Spearman
correlation* with target accuracy over every checkpoint of the experiment (:func:`weighted_spearman`).

Segmentation: the prediction-based validators (entropy, IM, BNM) and source accuracy take pixels as samples
(every ``PIXEL_STRIDE``-th pixel in each direction); SND and DEV take each frame's encoder features averaged
over the frame; ClassAMI clusters the encoder's feature-map pixels against the predicted classes there.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline_lib import validators as v
from pipeline_lib.metrics import IGNORE_INDEX

#: segmentation: the validators see every PIXEL_STRIDE-th pixel of a frame in each direction
PIXEL_STRIDE = 4
#: ClassAMI's k-means sees at most this many samples (segmentation: feature-map pixels)
CLUSTER_SAMPLES = 5000
#: the oracle: the best target test metric over the checkpoints (reads target labels; never picks)
ORACLE = "oracle"
#: the last checkpoint (what every row reported before selection)
LAST = "last"


def _forward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Class scores and the encoder's activation for ``x`` in one forward pass of the task model (behind a
    calibrator where there is one: F_s o G_c runs the frozen model on the calibrated image)."""
    calibrator = getattr(model, "calibrator", None)
    net = model.model if calibrator is not None else model
    if calibrator is not None:
        x = calibrator(x)
    layer = net.encoder_layer  # type: ignore[union-attr]
    out = net.forward_features(x, [layer, "logits"])  # type: ignore[union-attr, operator]
    return out["logits"], out[layer]


@torch.no_grad()
def outputs(model: nn.Module, images: Iterable[torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Class scores and encoder features of ``model`` on batches of images (CPU tensors): ``logits`` (N, C) or,
    for segmentation, (N, C, h, w) at every ``PIXEL_STRIDE``-th pixel, and ``features`` (N, D, ...)."""
    model.eval().to(device)
    logits, features = [], []
    for x in images:
        out, feat = (t.float() for t in _forward(model, x.to(device)))
        if out.dim() == 4:
            out = out[:, :, ::PIXEL_STRIDE, ::PIXEL_STRIDE]
        logits.append(out.cpu())
        features.append(feat.cpu())
    return {"logits": torch.cat(logits), "features": torch.cat(features)}


def _pooled(features: torch.Tensor) -> torch.Tensor:
    """(N, D, h, w) feature maps as (N, D) frame means; (N, D) as it is."""
    return features.mean(dim=(2, 3)) if features.dim() == 4 else features.flatten(1)


def _labels_at(labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Segmentation masks (N, H, W) at the sampled pixels of ``logits`` (N, C, h, w); class indices as they are."""
    return labels[:, ::PIXEL_STRIDE, ::PIXEL_STRIDE] if labels.dim() == 3 else labels


def _per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per image (segmentation: mean over its scored pixels)."""
    loss = F.cross_entropy(logits, labels.long(), ignore_index=IGNORE_INDEX, reduction="none")
    if loss.dim() == 1:
        return loss
    scored = (labels != IGNORE_INDEX).flatten(1).sum(1).clamp_min(1)
    return loss.flatten(1).sum(1) / scored


def _cluster_pairs(features: torch.Tensor, logits: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(samples, D) features and (samples, C) scores for ClassAMI: the images, or a segmentation's feature-map
    pixels with the class scores resized to them; at most :data:`CLUSTER_SAMPLES`, drawn with ``seed``."""
    if features.dim() == 4:
        scores = F.interpolate(logits, size=features.shape[-2:], mode="bilinear", align_corners=False)
        features, logits = v.pixels_as_samples(features), v.pixels_as_samples(scores)
    if len(features) > CLUSTER_SAMPLES:
        keep = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))[:CLUSTER_SAMPLES]
        features, logits = features[keep], logits[keep]
    return features.flatten(1), logits


def scores(target: dict[str, torch.Tensor], source_val: dict[str, torch.Tensor], source_labels: torch.Tensor,
           source_train: dict[str, torch.Tensor], seed: int = 0) -> dict[str, float]:
    """Every validator's score of one checkpoint (higher is better), from its :func:`outputs` on target training
    images, held-out source images (whose labels are ``source_labels``) and source training images. No argument
    holds a target label."""
    t_logits, s_logits = target["logits"], source_val["logits"]
    s_labels = _labels_at(source_labels, s_logits)
    scored = v.pixels_as_samples(s_logits), s_labels.reshape(-1)
    keep = scored[1] != IGNORE_INDEX
    snd_input = _pooled(target["features"]) if t_logits.dim() == 4 else t_logits.softmax(dim=1)
    weights = v.importance_weights(_pooled(source_train["features"]).numpy(), _pooled(target["features"]).numpy(),
                                   _pooled(source_val["features"]).numpy(), seed)
    return {
        "source_accuracy": v.source_accuracy(scored[0][keep], scored[1][keep]),
        "entropy": v.entropy(t_logits),
        "im": v.information_maximization(t_logits),
        "bnm": v.batch_nuclear_norm(v.pixels_as_samples(t_logits)),
        "snd": v.soft_neighborhood_density(snd_input),
        "dev": -v.dev_risk(weights, _per_sample_loss(s_logits, s_labels).numpy()),
        "class_ami": v.class_ami(*_cluster_pairs(target["features"], t_logits, seed), seed=seed),
    }


def choose(values: Sequence[float]) -> int:
    """The index of the highest value; ties go to the later checkpoint (the longer-trained one)."""
    best = max(values)
    return max(i for i, x in enumerate(values) if x == best)


def weighted_spearman(scores_: Sequence[float], accuracies: Sequence[float], power: float = 2.0) -> float:
    """Musgrave et al.'s weighted Spearman correlation: the Pearson correlation of the ranks of validator
    ``scores_`` and target ``accuracies``, each point weighted by its validator rank (normalised to (0, 1])
    to the ``power`` (their 2), so that the checkpoints a validator ranks high count most. NaN for fewer than
    two checkpoints or a constant ranking."""
    from scipy.stats import rankdata

    x = np.asarray(scores_, float)
    y = np.asarray(accuracies, float)
    if len(x) < 2:
        return math.nan
    dense = rankdata(x, method="dense")
    w = (dense / dense.max()) ** power
    rx, ry = rankdata(x), rankdata(y)
    mx, my = np.average(rx, weights=w), np.average(ry, weights=w)
    cov = np.average((rx - mx) * (ry - my), weights=w)
    sx, sy = np.average((rx - mx) ** 2, weights=w), np.average((ry - my) ** 2, weights=w)
    return float(cov / math.sqrt(sx * sy)) if sx > 0 and sy > 0 else math.nan


def picks(checkpoints: list[dict[str, Any]], names: Iterable[str]) -> dict[str, int]:
    """Per validator (and :data:`LAST`, :data:`ORACLE`), the index of the checkpoint it picks among one run's
    ``checkpoints`` (each ``{"epoch", "scores", "target_metric"}``, in epoch order)."""
    out = {name: choose([c["scores"][name] for c in checkpoints]) for name in names}
    out[LAST] = len(checkpoints) - 1
    out[ORACLE] = choose([c["target_metric"] for c in checkpoints])  # reads target labels: a yardstick only
    return out


def validator_table(selections: list[dict[str, Any]], names: Sequence[str],
                    reads_labels: Callable[[str], bool]) -> list[dict[str, Any]]:
    """One line per validator (then :data:`LAST` and :data:`ORACLE`): its regret in points (oracle minus chosen
    target metric x 100, mean over every row and seed of ``selections``, the ``select`` outputs of an experiment),
    the number of runs, and its weighted Spearman correlation over every checkpoint of them."""
    lines = []
    for name in (*names, LAST, ORACLE):
        regrets, xs, ys = [], [], []
        for sel in selections:
            for run in sel["runs"]:
                cks = run["checkpoints"]
                best = max(c["target_metric"] for c in cks)
                regrets.append(100 * (best - cks[run["picks"][name]]["target_metric"]))
                if name in cks[0]["scores"]:
                    xs += [c["scores"][name] for c in cks]
                    ys += [c["target_metric"] for c in cks]
        lines.append({"validator": name, "reads_target_labels": reads_labels(name),
                      "regret_points": round(float(np.mean(regrets)), 2) if regrets else None,
                      "runs": len(regrets), "checkpoints": len(xs),
                      "weighted_spearman": round(weighted_spearman(xs, ys), 3) if xs else None})
    return lines
