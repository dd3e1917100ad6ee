"""GAM: domain transfer through deep activation matching.

Huang, Huang and Krähenbühl, "Domain transfer through deep activation matching", ECCV 2018,
section 4 (sections 5.2-5.3 for the settings). Two stages, both starting from the source model:

- :func:`gaussian_match` (section 4.1, eq. 2): per channel of each chosen layer, the target net's
  activations are scaled and shifted so their mean and standard deviation on target data equal
  the source net's on source data. Layers are matched in forward order, each measured after the
  earlier ones are matched. Every spatial location is one sample. The affine is folded into the
  layer's weights where that is exact (a layer ending in conv/linear/batch norm; on a batch-norm
  layer this is AdaBN), else kept as an explicit per-channel affine after the layer.
- :func:`match_activations` (section 4.2, eq. 3): the whole target net is trained against one
  discriminator per matched layer (1x1 convolutions: each location a sample) with the loss
  ``weight_reg * ||theta_s - theta_t||^2 + lambda * sum_i w_i * GAN_i``; vanilla GAN (digits) or
  least squares (segmentation); the discriminators are pre-trained first; optionally the layers'
  GANs are switched on one at a time (the paper does so for digits).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.data import Dataset

from pipeline_lib.config import DivergenceParams
from pipeline_lib.errors import PipelineError
from pipeline_lib.methods.gam_params import GamParams
from pipeline_lib.losses import discriminator_accuracy, discriminator_loss, gan_loss, weight_drift
from pipeline_lib.models.base import TaskModel
from pipeline_lib.models.discriminators import FeatureDiscriminator
from pipeline_lib.runtime import autocast
from pipeline_lib.batches import cycled_pairs, in_order_batches, shuffled_loader
from pipeline_lib.training import (At, Loop, LossGrowth, Series, SeriesPlan, TrainResult, build_optimizer, descend, fit,
                                   fixed_steps, recompute_batchnorm)


@torch.no_grad()
def activation_stats(model: TaskModel, data: Dataset, layers: list[str], device: torch.device, batch_size: int,
                     max_batches: int | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-channel mean and standard deviation of each layer's activations over all samples and
    spatial locations of ``data`` (the first ``max_batches`` batches), in float64."""
    model.to(device).eval()
    sums: dict[str, tuple[torch.Tensor, torch.Tensor, int]] = {}  # sum, sum of squares, count per channel
    for i, (x, *_) in enumerate(in_order_batches(data, batch_size)):
        if max_batches is not None and i >= max_batches:
            break
        with autocast(device):
            feats = model.forward_features(x.to(device), layers)
        for name, a in feats.items():
            a = a.double().transpose(0, 1).reshape(a.shape[1], -1)  # channels x (samples * locations)
            s1, s2, n = sums.get(name, (0.0, 0.0, 0))
            sums[name] = (a.sum(1) + s1, (a * a).sum(1) + s2, n + a.shape[1])
    out = {}
    for name, (s1, s2, n) in sums.items():
        mean = s1 / n
        out[name] = (mean, (s2 / n - mean * mean).clamp_min(0).sqrt())
    return out


def gaussian_match(source_model: TaskModel, source: Dataset, target: Dataset, layers: list[str],
                   device: torch.device, batch_size: int, max_batches: int | None = None,
                   eps: float = 1e-5) -> tuple[TaskModel, list[dict[str, object]]]:
    """The source model with each of ``layers`` matched in turn (eq. 2); and per layer, a log of
    the statistics before and after and whether the affine was folded into weights."""
    order = [n for n in source_model.layer_names if n in set(layers)]
    src = activation_stats(source_model, source, order, device, batch_size, max_batches)
    model = copy.deepcopy(source_model).to(device).eval()
    log = []
    for name in order:
        t_mean, t_std = activation_stats(model, target, [name], device, batch_size, max_batches)[name]
        s_mean, s_std = src[name]
        scale = torch.where(t_std > eps, s_std / t_std.clamp_min(eps), torch.ones_like(t_std))
        shift = s_mean - scale * t_mean
        folded = model.match_layer(name, scale.float(), shift.float())
        log.append({"layer": name, "folded": folded, "source_std": float(s_std.mean()),
                    "target_std_before": float(t_std.mean()), "mean_gap_before": float((s_mean - t_mean).abs().mean())})
    return model, log


@torch.no_grad()
def source_or_not(model: TaskModel, source: Dataset, target: Dataset, device: torch.device, seed: int,
                  max_layers: int = 3) -> list[dict[str, object]]:
    """GAM section 5.1 (Fig. 3): for a few layers with spatial extent, one random unit's activations
    over all locations for two source images ("same domain") and a source and a target image
    ("different domains")."""
    gen = torch.Generator().manual_seed(seed)
    pick = lambda data: data[int(torch.randint(len(data), (1,), generator=gen))][0]  # noqa: E731
    a, b, c = pick(source), pick(source), pick(target)
    model = model.to(device).eval()
    per_image = [model.forward_features(x[None].to(device), model.layer_names) for x in (a, b, c)]  # sizes may differ
    feats = per_image[0]
    spatial = [n for n, f in feats.items() if f.dim() == 4 and f.shape[-1] * f.shape[-2] > 1 and n != "logits"]
    chosen = [spatial[round(i * (len(spatial) - 1) / max(max_layers - 1, 1))]
              for i in range(min(max_layers, len(spatial)))]
    out = []
    for name in dict.fromkeys(chosen):
        unit = int(torch.randint(feats[name].shape[1], (1,), generator=gen))
        fa, fb, fc = (f[name][0, unit].float().flatten().cpu().numpy() for f in per_image)
        out.append({"layer": name, "unit": unit, "source_a": fa, "source_b": fb, "target": fc})
    return out


def match_activations(target_model: TaskModel, source_model: TaskModel, source: Dataset, target: Dataset,
                      params: GamParams, layers: list[str], device: torch.device, seed: int, out,
                      resume_key: str | None, desc: str = "gam",
                      monitor: Callable[[TaskModel], float] | None = None,
                      divergence: DivergenceParams = DivergenceParams(),
                      series: SeriesPlan | None = None) -> tuple[TaskModel, TrainResult]:
    """Train ``target_model`` (a copy is returned) by eq. 3 against per-layer discriminators; the target
    net's loss (regulariser + GAN terms) and the discriminators' stop the run when they grow by
    ``divergence.loss_growth``."""
    source_model = source_model.to(device).eval().requires_grad_(False)
    model = copy.deepcopy(target_model).to(device).train().requires_grad_(True)
    reference = {n: p.detach().clone() for n, p in source_model.named_parameters()}
    order = [n for n in model.layer_names if n in set(layers)]
    sample = model.probe(source[0][0][None].to(device), order)
    discs = torch.nn.ModuleDict({n: FeatureDiscriminator(sample[n].shape[1], params.disc_hidden, params.disc_layers)
                                 for n in order}).to(device)
    betas = (params.beta1, 0.999)
    opt_t = build_optimizer(params.optimizer, model.parameters(), params.lr, momentum=params.momentum, betas=betas)
    opt_d = build_optimizer("adam", discs.parameters(), params.disc_lr or params.lr, betas=betas)
    gen_s, gen_t = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    per_epoch = fixed_steps(len(source), params.batch_size, params.steps_per_epoch)
    _check_pretraining(params, per_epoch)
    weights = dict(zip(layers, params.layer_weights or [1.0] * len(layers)))
    step = GamStep(source_model, model, discs, opt_t, opt_d, order, weights, reference, params, device,
                   LossGrowth(divergence.loss_growth, f"{desc}: target-net loss"),
                   LossGrowth(divergence.loss_growth, f"{desc}: discriminator loss"))

    loop = Loop(desc, params.epochs, per_epoch,
                lambda: cycled_pairs(source, target, params.batch_size, gen_s, gen_t, params.num_workers), step,
                params.checkpoint_every, monitor=(lambda: monitor(model)) if monitor else None,
                postfix=("acc_d", "drift"))
    result = fit(loop, out, resume_key, {"model": model, "discs": discs, "opt_t": opt_t, "opt_d": opt_d,
                                         "growth_t": step.growth_t, "growth_d": step.growth_d},
                 {"source": gen_s, "target": gen_t}, Series.kept(series, out, model))
    # the matched net's batch-norm statistics (the layers training ran), on the target frames
    recompute_batchnorm(model, shuffled_loader(target, params.batch_size, gen_t, params.num_workers), device,
                        params.batchnorm_batches,
                        forward=lambda x: model.forward_features(x, order))
    return model.eval(), result


def _check_pretraining(params: GamParams, per_epoch: int) -> None:
    """Discriminator pre-training must leave the target net steps to train."""
    if params.disc_pretrain_steps >= params.epochs * per_epoch:
        raise PipelineError(
            f"[segmentation.]gam.match_activations.disc_pretrain_steps ({params.disc_pretrain_steps}) is not below "
            f"the run's {params.epochs * per_epoch} steps ({params.epochs} epochs of {per_epoch}), "
            "so the target net "
            "would never train: lower disc_pretrain_steps or raise epochs / steps_per_epoch in params.yaml")


@dataclass
class GamStep:
    """One step of eq. 3: the per-layer discriminators on source-net against target-net activations, then (after
    their pre-training, on the layers switched on) the target net against them, held near the source net."""

    source_model: TaskModel
    model: TaskModel
    discs: torch.nn.ModuleDict
    opt_t: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    order: list[str]
    weights: dict[str, float]
    reference: dict[str, torch.Tensor]
    params: GamParams
    device: torch.device
    growth_t: LossGrowth
    growth_d: LossGrowth

    def __post_init__(self) -> None:
        p = self.params
        self.hint = "lower [segmentation.]gam.match_activations.lr in params.yaml"
        self.hint_d = f"lower [segmentation.]gam.match_activations.{'disc_lr' if p.disc_lr else 'lr'} in params.yaml"

    def __call__(self, batch: tuple, at: At) -> dict[str, float]:
        p, device, discs, order = self.params, self.device, self.discs, self.order
        (xs, *_), (xt, *_) = batch
        active = _active_layers(order, at.iteration, p)
        xs, xt = xs.to(device), xt.to(device)
        with autocast(device):
            with torch.no_grad():
                hs = self.source_model.forward_features(xs, order)
            ht = self.model.forward_features(xt, order)
            loss_d = sum(discriminator_loss(discs[n](hs[n]).float(), discs[n](ht[n].detach()).float(), p.gan_mode)
                         for n in order)
        descend(self.opt_d, loss_d, at.where, self.hint_d, watch=self.growth_d)
        logs = {"loss_d": loss_d.item()}
        with torch.no_grad(), autocast(device):
            logs["acc_d"] = sum(discriminator_accuracy(discs[n](hs[n]).float(), discs[n](ht[n]).float(), p.gan_mode)
                                for n in order) / len(order)
        logs.update(loss_gan=0.0, drift=0.0)
        if at.iteration >= p.disc_pretrain_steps and active:
            discs.requires_grad_(False)
            with autocast(device):
                loss_gan = sum(self.weights[n] * gan_loss(discs[n](ht[n]).float(), True, p.gan_mode) for n in active)
                drift = weight_drift(self.model, self.reference, p.drift_reduction)
                loss = p.weight_reg * drift + p.lambda_gan * loss_gan
            descend(self.opt_t, loss, at.where, self.hint, watch=self.growth_t)
            discs.requires_grad_(True)
            logs.update(loss_gan=loss_gan.item(), drift=drift.item())
        return logs


def _active_layers(order: list[str], it: int, params: GamParams) -> list[str]:
    """Layers whose GAN loss is on at iteration ``it``: all of them, or (progressive) one more every
    ``progressive_steps`` after discriminator pre-training, deepest first."""
    if not params.progressive:
        return order
    n = 1 + max(0, it - params.disc_pretrain_steps) // params.progressive_steps
    return order[::-1][:n]
