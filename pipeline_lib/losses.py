"""Losses shared by the methods. Every spatial location of a score map is one sample,
so the same functions serve vectors (N x C, the 1 x 1 case) and feature maps (N x C x H x W).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pipeline_lib.metrics import IGNORE_INDEX

GanMode = Literal["vanilla", "lsgan"]


def gan_loss(scores: torch.Tensor, real: bool, mode: GanMode = "vanilla") -> torch.Tensor:
    """Discriminator-score loss against the label ``real`` (1) or fake (0), averaged over locations.

    ``vanilla`` is the log-loss of CyCADA eq. 2 (binary cross-entropy on logits); ``lsgan``
    the least-squares GAN of Mao et al. (used by CycleGAN and by GAM for segmentation).
    """
    target = torch.full_like(scores, 1.0 if real else 0.0)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(scores, target)
    if mode == "lsgan":
        return F.mse_loss(scores, target)
    raise ValueError(f"unknown GAN mode {mode!r}")


def discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor, mode: GanMode = "vanilla") -> torch.Tensor:
    """The discriminator's side of a GAN: real -> 1, fake -> 0 (the two halves weighted equally)."""
    return 0.5 * (gan_loss(real_scores, True, mode) + gan_loss(fake_scores, False, mode))


def discriminator_accuracy(real_scores: torch.Tensor, fake_scores: torch.Tensor, mode: GanMode = "vanilla") -> float:
    """Fraction of locations the discriminator puts on the right side of its decision threshold."""
    threshold = 0.0 if mode == "vanilla" else 0.5
    right = (real_scores > threshold).sum() + (fake_scores <= threshold).sum()
    return float(right) / float(real_scores.numel() + fake_scores.numel())


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L1 reconstruction penalty of CyCADA eq. 3 (one direction)."""
    return F.l1_loss(reconstructed, original)


def semantic_consistency_loss(labeller: nn.Module, translated: torch.Tensor, original: torch.Tensor,
                              targets: torch.Tensor | None = None) -> torch.Tensor:
    """CyCADA eq. 4 (one direction): L_task(f, G(x), argmax f(x)).

    The labeller's prediction on the original image is the (noisy) label the translated image
    must keep. No gradient flows into the labeller through the pseudo-label. ``targets``, where
    given, replace the prediction (the authors' fork uses the true source labels S -> T).
    """
    if targets is None:
        with torch.no_grad():
            targets = labeller(original).argmax(1)
    return F.cross_entropy(labeller(translated), targets, ignore_index=IGNORE_INDEX)


def weight_drift(model: nn.Module, reference: dict[str, torch.Tensor],
                 reduction: Literal["tensor_mean", "sum"] = "tensor_mean") -> torch.Tensor:
    """GAM eq. 3's ||theta - theta_ref||^2 over the parameters that ``reference`` names.

    The paper gives no scale. ``tensor_mean`` (default) follows the authors' release
    (RsEnts/DAM_release, ``tools/train_adda.py``): the mean squared difference of each parameter
    tensor, summed over tensors, so the term does not grow with the parameter count. ``sum`` is the
    literal squared norm; on LeNet (431k weights) it outweighs the GAN losses and ADDA collapsed.
    """
    terms = [(p - reference[name]).pow(2) for name, p in model.named_parameters() if name in reference]
    if not terms:
        raise ValueError("weight_drift: the reference names none of the model's parameters")
    reduce = torch.mean if reduction == "tensor_mean" else torch.sum
    return torch.stack([reduce(t) for t in terms]).sum()


def group_loss(logits: torch.Tensor, group: int) -> torch.Tensor:
    """Cross-entropy of a k-way discriminator's scores (N x k [x H x W]) against one group label
    for every sample and location: the calibrator's eqs. 5-7 (groups G1..G4 are 0..3)."""
    target = torch.full((logits.shape[0], *logits.shape[2:]), group, dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


def group_accuracy(logits: torch.Tensor, group: int) -> float:
    """Share of samples (and locations) a k-way discriminator assigns to ``group``."""
    return (logits.argmax(1) == group).float().mean().item()
