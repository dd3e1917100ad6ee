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
from pipeline_lib.batches import cycled_pairs, in_order_batches, paired_batches, shuffled_loader
from pipeline_lib.training import (LossGrowth, Resumable, TrainResult, build_optimizer, descend, epoch_bar,
                                   fixed_steps, recompute_batchnorm, step_bar)


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
                      divergence: DivergenceParams = DivergenceParams()) -> tuple[TaskModel, TrainResult]:
    """Train ``target_model`` (a copy is returned) by eq. 3 against per-layer discriminators; the target
    net's loss (regulariser + GAN terms) and the discriminators' stop the run when they grow by
    ``divergence.loss_growth``."""
    source_model = source_model.to(device).eval().requires_grad_(False)
    model = copy.deepcopy(target_model).to(device).train().requires_grad_(True)
    reference = {n: p.detach().clone() for n, p in source_model.named_parameters()}
    order = [n for n in model.layer_names if n in set(layers)]
    weights = dict(zip(layers, params.layer_weights or [1.0] * len(layers)))
    with torch.no_grad():
        sample = model.forward_features(source[0][0][None].to(device), order)
    discs = torch.nn.ModuleDict({n: FeatureDiscriminator(sample[n].shape[1], params.disc_hidden, params.disc_layers)
                                 for n in order}).to(device)
    betas = (params.beta1, 0.999)
    opt_t = build_optimizer(params.optimizer, model.parameters(), params.lr, momentum=params.momentum, betas=betas)
    opt_d = build_optimizer("adam", discs.parameters(), params.disc_lr or params.lr, betas=betas)
    gen_s, gen_t = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    growth_t = LossGrowth(divergence.loss_growth, f"{desc}: target-net loss")
    growth_d = LossGrowth(divergence.loss_growth, f"{desc}: discriminator loss")
    state = Resumable(out, resume_key, {"model": model, "discs": discs, "opt_t": opt_t, "opt_d": opt_d,
                                        "growth_t": growth_t, "growth_d": growth_d}, {"source": gen_s, "target": gen_t})
    state.restore(desc)
    hint = "lower [segmentation.]gam.match_activations.lr in params.yaml"
    hint_d = f"lower [segmentation.]gam.match_activations.{'disc_lr' if params.disc_lr else 'lr'} in params.yaml"
    steps_per_epoch = fixed_steps(len(source), params.batch_size, params.steps_per_epoch)
    if params.disc_pretrain_steps >= params.epochs * steps_per_epoch:
        raise PipelineError(
            f"[segmentation.]gam.match_activations.disc_pretrain_steps ({params.disc_pretrain_steps}) is not below "
            f"the run's {params.epochs * steps_per_epoch} steps ({params.epochs} epochs of {steps_per_epoch}), "
            "so the target net "
            "would never train: lower disc_pretrain_steps or raise epochs / steps_per_epoch in params.yaml")
    bar = epoch_bar(state.start_epoch, params.epochs, desc)
    for epoch in bar:
        sums = {"loss_d": 0.0, "acc_d": 0.0, "loss_gan": 0.0, "drift": 0.0}
        batches = paired_batches(source, target, params.batch_size, gen_s, gen_t, params.num_workers)
        step = 0
        pairs = cycled_pairs(batches, source, target, params.batch_size, gen_s, gen_t, params.num_workers)
        for (xs, *_), (xt, *_) in step_bar(pairs, steps_per_epoch, f"epoch {epoch + 1}"):
            if step >= steps_per_epoch:
                break
            it = epoch * steps_per_epoch + step
            active = _active_layers(order, it, params)
            xs, xt = xs.to(device), xt.to(device)
            with autocast(device):
                with torch.no_grad():
                    hs = source_model.forward_features(xs, order)
                ht = model.forward_features(xt, order)
                loss_d = sum(discriminator_loss(discs[n](hs[n]).float(), discs[n](ht[n].detach()).float(),
                                                params.gan_mode) for n in order)
            descend(opt_d, loss_d, f"epoch {epoch + 1} step {step + 1}", hint_d, watch=growth_d)
            sums["loss_d"] += loss_d.item()
            with torch.no_grad(), autocast(device):
                sums["acc_d"] += sum(discriminator_accuracy(discs[n](hs[n]).float(), discs[n](ht[n]).float(),
                                                            params.gan_mode) for n in order) / len(order)
            if it >= params.disc_pretrain_steps and active:
                discs.requires_grad_(False)
                with autocast(device):
                    loss_gan = sum(weights[n] * gan_loss(discs[n](ht[n]).float(), True, params.gan_mode)
                                   for n in active)
                    drift = weight_drift(model, reference, params.drift_reduction)
                    loss = params.weight_reg * drift + params.lambda_gan * loss_gan
                descend(opt_t, loss, f"epoch {epoch + 1} step {step + 1}", hint, watch=growth_t)
                discs.requires_grad_(True)
                sums["loss_gan"] += loss_gan.item()
                sums["drift"] += drift.item()
            step += 1
        row = {k: v / max(step, 1) for k, v in sums.items()}
        if monitor is not None:  # target metric for the training curves only (never selects a model)
            row["target_metric"] = monitor(model)
        bar.set_postfix(acc_d=f"{row['acc_d']:.2f}", drift=f"{row['drift']:.3g}")
        state.end_epoch(epoch + 1, row, params.checkpoint_every, last=epoch + 1 == params.epochs)
    # the matched net's batch-norm statistics (the layers training ran), on the target frames
    recompute_batchnorm(model, shuffled_loader(target, params.batch_size, gen_t, params.num_workers), device,
                        params.batchnorm_batches,
                        forward=lambda x: model.forward_features(x, order))
    return model.eval(), state.result()


def _active_layers(order: list[str], it: int, params: GamParams) -> list[str]:
    """Layers whose GAN loss is on at iteration ``it``: all of them, or (progressive) one more every
    ``progressive_steps`` after discriminator pre-training, deepest first."""
    if not params.progressive:
        return order
    n = 1 + max(0, it - params.disc_pretrain_steps) // params.progressive_steps
    return order[::-1][:n]
