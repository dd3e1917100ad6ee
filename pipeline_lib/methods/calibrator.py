"""Light-weight calibrator: Ye et al., "Light-weight Calibrator: a Separable Component for
Unsupervised Domain Adaptation", CVPR 2020 (sections 3-5).

The source model ``F_s = C_s o M_s`` stays frozen; only the calibrator ``G_c = I + G'_c``
(:class:`~pipeline_lib.models.calibrator.Calibrator`) and two discriminators train:

- four groups (3.2): G1 source images, G2 target images, G3 calibrated source, G4 calibrated target;
- a feature discriminator on ``M_s`` of each group and a pixel discriminator on random patches whose
  pixels are shuffled in space (the paper's two anti-overfitting tricks), both two fully connected
  layers with 4 outputs, trained with 4-way cross-entropy (eqs. 5, 6);
- the calibrator is trained so that both classify G3 and G4 as G1 (eq. 7).

The default follows the paper. The authors' release (github.com/yeshaokai/Calibrator-Domain-Adaptation)
differs for digits, and each of its choices is an option of
:class:`~pipeline_lib.methods.calibrator_params.CalibratorParams`: the feature discriminator sees the softmax of the
source model's logits (``layer: logits``, ``softmax: true``); eq. 7's calibrated-source terms weigh 0.1
(``source_weight``); 4x4 pixel patches (``patch``) at one place and order per batch, and its discriminators' depths
(``discriminators: release``); a one-sided perturbation in [0, linf] that starts near its bound
(``output: one_sided``); Adam weight decay 5e-4 (``weight_decay``); the source net's dropout on while the
calibrator trains (``frozen_dropout``); 200 epochs. docs/calibrator.md measures each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from pipeline_lib.config import DivergenceParams
from pipeline_lib.methods.calibrator_params import CalibratorParams
from pipeline_lib.errors import PipelineError
from pipeline_lib.losses import group_accuracy, group_loss
from pipeline_lib.methods.adda import resolve_layer
from pipeline_lib.models.base import TaskModel
from pipeline_lib.models.calibrator import CalibratedModel, Calibrator
from pipeline_lib.models.discriminators import FeatureDiscriminator
from pipeline_lib.runtime import autocast
from pipeline_lib.batches import cycled_pairs
from pipeline_lib.training import (At, Loop, LossGrowth, Series, SeriesPlan, TrainResult, build_optimizer, descend, fit,
                                   fixed_steps)

GROUPS = ("G1 source", "G2 target", "G3 calibrated source", "G4 calibrated target")


def shuffled_patches(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One random ``size`` x ``size`` patch per image with its pixels permuted in space, flattened
    to (N, C * size * size): what the pixel discriminator sees. Differentiable in ``x``."""
    n, c, h, w = x.shape
    if size > min(h, w):
        raise PipelineError(f"calibrator.patch {size} is larger than the {h}x{w} images: lower it in params.yaml")
    top = torch.randint(h - size + 1, (n, 1), generator=generator)
    left = torch.randint(w - size + 1, (n, 1), generator=generator)
    order = torch.argsort(torch.rand(n, size * size, generator=generator), dim=1)
    rows, cols = order // size, order % size
    index = ((top + rows) * w + left + cols).to(x.device)  # (N, size * size) into the flattened image
    flat = x.flatten(2).gather(2, index[:, None, :].expand(n, c, -1))
    return flat.reshape(n, c * size * size)


def grid_patch(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """The authors' release's pixel-discriminator input: one place on the grid of non-overlapping ``size`` x
    ``size`` patches (the last row and column aligned to the image's edge) and one pixel order, both shared by the
    whole batch, flattened to (N, C * size * size). Differentiable in ``x``."""
    n, c, h, w = x.shape
    if size > min(h, w):
        raise PipelineError(f"calibrator.patch {size} is larger than the {h}x{w} images: lower it in params.yaml")
    rows, cols = -(-h // size), -(-w // size)
    place = int(torch.randint(rows * cols, (1,), generator=generator))
    top, left = min(place // cols * size, h - size), min(place % cols * size, w - size)
    order = torch.randperm(size * size, generator=generator).to(x.device)
    crop = x[:, :, top:top + size, left:left + size].flatten(2)[:, :, order]
    return crop.reshape(n, c * size * size)


class GroupDiscriminators(torch.nn.Module):
    """The feature and pixel discriminators, 4 outputs each: two fully connected layers each (the paper), or the
    authors' release's (``discriminators: release``; see :class:`CalibratorParams`)."""

    def __init__(self, feat_channels: int, image_channels: int, params: CalibratorParams) -> None:
        super().__init__()
        groups, pixels = len(GROUPS), image_channels * params.patch ** 2
        if params.discriminators == "paper":
            self.feat = FeatureDiscriminator(feat_channels, params.disc_hidden, n_layers=2, out_channels=groups)
            self.pixel = FeatureDiscriminator(pixels, params.disc_hidden, n_layers=2, out_channels=groups)
            return
        self.feat = nn.Sequential(nn.Flatten(), nn.Linear(feat_channels, 1000), nn.ReLU(), nn.Linear(1000, 500),
                                  nn.ReLU(), nn.Dropout(0.5), nn.Linear(500, groups))
        self.pixel = nn.Sequential(nn.Linear(pixels, 128), nn.ReLU(), nn.Linear(128, groups))
        for m in self.pixel:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.02), nn.init.zeros_(m.bias)


def frozen_mode(model: nn.Module, dropout: bool) -> nn.Module:
    """The frozen model in eval mode; with ``dropout``, its dropout layers active (the release's src_net.train()
    without its batch-norm updates), so the deployed model never changes."""
    model.eval()
    if dropout:
        for m in model.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.train()
    return model


def calibrator_loss(feat_logits: list[torch.Tensor], pixel_logits: list[torch.Tensor],
                    params: CalibratorParams) -> torch.Tensor:
    """Eq. 7: both discriminators should score calibrated source (G3, first) and calibrated target (G4,
    second) as source (G1); the G3 terms are weighted by ``source_weight`` (the paper: 1)."""
    return sum(w * (params.lambda_feat * group_loss(f, 0) + params.lambda_pixel * group_loss(p, 0))
               for w, f, p in zip((params.source_weight, 1.0), feat_logits, pixel_logits))


def train_calibrator(model: TaskModel, source: Dataset, target: Dataset, params: CalibratorParams,
                     device: torch.device, seed: int, out, resume_key: str | None, desc: str = "calibrator",
                     monitor: Callable[[torch.nn.Module], float] | None = None,
                     divergence: DivergenceParams = DivergenceParams(),
                     series: SeriesPlan | None = None) -> tuple[Calibrator, TrainResult]:
    """Train a calibrator for the frozen ``model`` (which is never updated: eval mode, no grads).

    The calibrator's loss (eq. 7) and the discriminators' (eqs. 5, 6) stop the run when they grow by
    ``divergence.loss_growth``; the discriminators' is the one that shows a too large lr first (the
    calibrator's output is bounded, its first loss already follows a discriminator update)."""
    model = model.to(device).eval().requires_grad_(False)
    layer = resolve_layer(model, params.layer)
    sample = source[0][0][None].to(device)
    with torch.no_grad():
        feat_shape = model.forward_features(sample, [layer])[layer].shape
    feat_channels = feat_shape[1]
    if params.discriminators == "release" and len(feat_shape) > 2:
        raise PipelineError(f"calibrator.discriminators: release is the authors' digits discriminators, for vector "
                            f"features, but {params.layer} gives maps of shape {tuple(feat_shape[1:])}; use paper")
    calibrator = Calibrator(sample.shape[1], params.ngf, params.n_down, params.n_blocks, params.linf,
                            params.output).to(device)
    discs = GroupDiscriminators(feat_channels, sample.shape[1], params).to(device)
    frozen_mode(model, params.frozen_dropout)
    betas, decay = (params.beta1, 0.999), params.weight_decay
    opt_c = build_optimizer("adam", calibrator.parameters(), params.lr, betas=betas, weight_decay=decay)
    opt_d = build_optimizer("adam", discs.parameters(), params.lr, betas=betas, weight_decay=decay)
    gen_s, gen_t = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    step = CalibratorStep(model, calibrator, discs, opt_c, opt_d, layer, params, device,
                          torch.Generator().manual_seed(seed + 2),
                          LossGrowth(divergence.loss_growth, f"{desc}: calibrator loss"),
                          LossGrowth(divergence.loss_growth, f"{desc}: discriminator loss"))

    def target_metric() -> float:  # of F_s o G_c; its batch norms never leave eval
        metric = monitor(CalibratedModel(calibrator, model).eval())  # type: ignore[misc]
        calibrator.train(), frozen_mode(model, params.frozen_dropout)
        return metric

    loop = Loop(desc, params.epochs, fixed_steps(len(source), params.batch_size, params.steps_per_epoch),
                lambda: cycled_pairs(source, target, params.batch_size, gen_s, gen_t, params.num_workers), step,
                params.checkpoint_every, monitor=target_metric if monitor else None, postfix=("loss_c", "fooled"))
    result = fit(loop, out, resume_key, {"calibrator": calibrator, "discs": discs, "opt_c": opt_c, "opt_d": opt_d,
                                         "growth_c": step.growth_c, "growth_d": step.growth_d},
                 {"source": gen_s, "target": gen_t, "patches": step.gen_p}, Series.kept(series, out, calibrator))
    return calibrator.eval(), result


@dataclass
class CalibratorStep:
    """One step: both discriminators sort the four groups (eqs. 5, 6; no gradient into the calibrator), then the
    calibrator makes calibrated source and calibrated target pass as source (eq. 7)."""

    model: TaskModel
    calibrator: Calibrator
    discs: GroupDiscriminators
    opt_c: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    layer: str
    params: CalibratorParams
    device: torch.device
    gen_p: torch.Generator
    growth_c: LossGrowth
    growth_d: LossGrowth
    hint: str = "lower [segmentation.]calibrator.lr in params.yaml"

    def scores(self, groups: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Each group's feature- and pixel-discriminator logits."""
        p = self.params
        feats = [self.model.forward_features(g, [self.layer])[self.layer] for g in groups]
        if p.softmax:
            feats = [f.float().softmax(dim=1) for f in feats]
        patches = shuffled_patches if p.discriminators == "paper" else grid_patch
        return [self.discs.feat(f).float() for f in feats], \
            [self.discs.pixel(patches(g, p.patch, self.gen_p)).float() for g in groups]

    def __call__(self, batch: tuple, at: At) -> dict[str, float]:
        p, device = self.params, self.device
        (xs, *_), (xt, *_) = batch
        xs, xt = xs.to(device), xt.to(device)
        with autocast(device):
            cs, ct = self.calibrator(xs), self.calibrator(xt)  # G3, G4: x + G'_c(x), clipped to the image range
            f_logits, p_logits = self.scores([xs, xt, cs.detach(), ct.detach()])
            loss_feat = sum(group_loss(lg, i) for i, lg in enumerate(f_logits)) / len(GROUPS)
            loss_pixel = sum(group_loss(lg, i) for i, lg in enumerate(p_logits)) / len(GROUPS)
            loss_d = p.lambda_feat * loss_feat + p.lambda_pixel * loss_pixel
        descend(self.opt_d, loss_d, at.where, self.hint, watch=self.growth_d)
        logs = {"loss_d_feat": loss_feat.item(), "loss_d_pixel": loss_pixel.item(),
                "acc_d_feat": float(np.mean([group_accuracy(lg, i) for i, lg in enumerate(f_logits)])),
                "acc_d_pixel": float(np.mean([group_accuracy(lg, i) for i, lg in enumerate(p_logits)]))}
        self.discs.requires_grad_(False)  # eq. 7: calibrated source and calibrated target should pass as G1 = 0
        with autocast(device):
            f_logits, p_logits = self.scores([cs, ct])
            loss_c = calibrator_loss(f_logits, p_logits, p)
        descend(self.opt_c, loss_c, at.where, self.hint, watch=self.growth_c)
        self.discs.requires_grad_(True)
        return {**logs, "loss_c": loss_c.item(),
                "fooled": float(np.mean([group_accuracy(lg, 0) for lg in f_logits + p_logits])),
                "perturbation": (ct - xt).detach().abs().mean().item() / 2}  # mean |G_c(x) - x|, [0, 1] units


@torch.no_grad()
def amplitude_spectra(calibrator: Calibrator, images: torch.Tensor, device: torch.device,
                      batch_size: int = 64) -> dict[str, np.ndarray]:
    """Section 5.1 (Fig. 6): the mean log amplitude spectrum (centred, averaged over images and
    channels) of ``images`` before and after calibration and of the perturbation itself."""
    calibrator = calibrator.to(device).eval()
    sums = {"before": 0.0, "after": 0.0, "perturbation": 0.0}
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device).float()
        after = calibrator(x)
        for key, value in (("before", x), ("after", after), ("perturbation", after - x)):
            amp = torch.fft.fftshift(torch.fft.fft2(value).abs(), dim=(-2, -1))
            sums[key] = sums[key] + torch.log1p(amp).sum(dim=(0, 1)).cpu()
    count = len(images) * images.shape[1]
    return {k: (v / count).numpy() for k, v in sums.items()}
