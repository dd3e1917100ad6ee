"""Feature-level adversarial adaptation (ADDA), as CyCADA uses it.

Tzeng et al., "Adversarial Discriminative Domain Adaptation", CVPR 2017; the schedule of
Hoffman et al., CyCADA, appendix 6.1:

- the target encoder starts from the model being adapted; its classifier stays fixed;
- a feature discriminator (3 fully connected layers, each spatial location one sample)
  separates source features (from the frozen source encoder) from target features;
- the target encoder is trained with the inverted-label GAN loss, generator and discriminator
  losses weighted equally, and only while the discriminator's accuracy is above 60% over the
  last batch (digits) or the last 100 iterations (segmentation): ``gate_accuracy``/``gate_window``;
- training stops when no suitable discriminator appears within an epoch, or at ``max_epochs``
  (or earlier, when the step budget ``max_steps`` runs out: a CPU profile's cut).

Segmentation (appendix 6.1.2): SGD with momentum 0.99 and lr 1e-5, the encoder's loss weighted
ten times less than the discriminator's (``lambda_encoder`` 0.1), one source and one target crop
per batch. ``layer`` picks the discriminated layer: the paper uses "one of the intermediate
layers"; the authors' release discriminates the FCN's score maps (``layer: logits``).

``weight_reg`` > 0 adds GAM's weight-drift term ||theta_t - theta_s||^2 to the encoder loss.
"""

from __future__ import annotations

import collections
import copy
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.data import Dataset

from pipeline_lib import distributed
from pipeline_lib.config import DivergenceParams
from pipeline_lib.methods.cycada_params import AdaptFeaturesParams
from pipeline_lib.losses import discriminator_accuracy, discriminator_loss, gan_loss, weight_drift
from pipeline_lib.errors import PipelineError
from pipeline_lib.models.base import ChainModel, TaskModel
from pipeline_lib.models.discriminators import FeatureDiscriminator
from pipeline_lib.runtime import autocast
from pipeline_lib.batches import paired_batches, shuffled_loader
from pipeline_lib.training import (At, Loop, LossGrowth, Series, SeriesPlan, TrainResult, budget_epochs,
                                   build_optimizer, descend, fit, recompute_batchnorm, steps_per_epoch)


class AccuracyGate:
    """Open when the mean discriminator accuracy over the last ``window`` batches exceeds ``threshold``."""

    def __init__(self, threshold: float, window: int) -> None:
        self.threshold = threshold
        self.recent: collections.deque[float] = collections.deque(maxlen=window)

    def update(self, accuracy: float) -> bool:
        self.recent.append(accuracy)
        return sum(self.recent) / len(self.recent) > self.threshold


def resolve_layer(model: TaskModel, layer: str) -> str:
    """``encoder`` -> the model's encoder layer; any other name must be one of its layers."""
    name = model.encoder_layer if layer == "encoder" else layer
    if name not in model.layer_names:
        raise PipelineError(f"adapt_features.layer: {layer!r} is not a layer of this backbone "
                            f"(use encoder, logits or one of {', '.join(model.layer_names)})")
    return name


def encoder_parameter_names(model: TaskModel, layer: str | None = None,
                            sample: torch.Tensor | None = None) -> list[str]:
    """Parameters that produce ``layer`` (default: ``encoder_layer``): what ADDA trains.

    A chain model's are those of the stages up to ``layer``; for networks with skip connections
    they are found by back-propagating from the layer's activation on ``sample``.
    """
    layer = layer or model.encoder_layer
    names = model.layer_names
    if isinstance(model, ChainModel):
        encoder = set(names[: names.index(layer) + 1])
        return [n for n, _ in model.named_parameters() if n.split(".")[1] in encoder]
    if layer == "logits":
        return [n for n, _ in model.named_parameters()]
    if sample is None:
        raise ValueError("a sample input is needed to trace which parameters produce a layer")
    was_training = model.training
    params = dict(model.named_parameters())
    flags = {n: p.requires_grad for n, p in params.items()}
    model.eval()
    for p in params.values():
        p.requires_grad_(True)
    with torch.enable_grad():
        grads = torch.autograd.grad(model.forward_features(sample, [layer])[layer].float().sum(),
                                    list(params.values()), allow_unused=True)
    for n, p in params.items():
        p.requires_grad_(flags[n])
    model.train(was_training)
    return [n for (n, _), g in zip(params.items(), grads) if g is not None]


def adapt_features(source_model: TaskModel, source: Dataset, target: Dataset,
                   params: AdaptFeaturesParams, device: torch.device, seed: int, out,
                   resume_key: str | None, desc: str = "adapt",
                   monitor: Callable[[TaskModel], float] | None = None,
                   divergence: DivergenceParams = DivergenceParams(),
                   series: SeriesPlan | None = None) -> tuple[TaskModel, TrainResult]:
    """Return the adapted target model (a copy of ``source_model`` with a new encoder).

    ``source`` yields (image, label) or (image,), ``target`` yields (image, ...): labels are never read.
    The encoder's and the discriminator's losses stop the run when they grow by ``divergence.loss_growth``.
    """
    source_model = source_model.to(device).eval()
    for p in source_model.parameters():
        p.requires_grad_(False)
    layer = resolve_layer(source_model, params.layer)
    target_model = copy.deepcopy(source_model)
    sample = source[0][0][None].to(device)
    trainable = set(encoder_parameter_names(target_model, layer, sample))
    for name, p in target_model.named_parameters():
        p.requires_grad_(name in trainable)
    reference = {n: p.detach().clone() for n, p in source_model.named_parameters() if n in trainable}
    with torch.no_grad():
        feat_channels = _features(source_model, sample, layer).shape[1]
    disc = FeatureDiscriminator(feat_channels, params.disc_hidden, params.disc_layers).to(device)
    betas = (params.beta1, 0.999)
    opt_e = build_optimizer(params.optimizer, target_model.parameters(), params.lr, momentum=params.momentum,
                            betas=betas)
    opt_d = build_optimizer(params.optimizer, disc.parameters(), params.lr, momentum=params.momentum, betas=betas)
    gen_s, gen_t = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    step = AddaStep(source_model, target_model, disc, opt_e, opt_d, layer, reference, params, device,
                    LossGrowth(divergence.loss_growth, f"{desc}: encoder loss"),
                    LossGrowth(divergence.loss_growth, f"{desc}: discriminator loss"))
    per_epoch = steps_per_epoch(len(source), params.batch_size, params.max_steps_per_epoch)
    loop = Loop(desc, budget_epochs(params.max_epochs, per_epoch, params.max_steps), per_epoch,
                lambda: paired_batches(source, target, params.batch_size, gen_s, gen_t, params.num_workers), step,
                params.checkpoint_every, start=target_model.train, summary=_epoch_row,
                monitor=(lambda: monitor(target_model)) if monitor else None, postfix=("acc_d", "encoder_updates"),
                stop=lambda row, epoch: None if row["encoder_updates"] else (
                    f"the discriminator never reached {params.gate_accuracy:.0%} accuracy in epoch {epoch}; "
                    "stopping (CyCADA appendix 6.1)"))
    result = fit(loop, out, resume_key, {"model": target_model, "disc": disc, "opt_e": opt_e, "opt_d": opt_d,
                                         "growth_e": step.growth_e, "growth_d": step.growth_d},
                 {"source": gen_s, "target": gen_t}, Series.kept(series, out, target_model))
    # the adapted encoder's batch-norm statistics (the layers training ran), on the target frames
    recompute_batchnorm(target_model, shuffled_loader(target, params.batch_size, gen_t, params.num_workers), device,
                        params.batchnorm_batches,
                        forward=lambda x: _features(target_model, x, layer))
    return target_model.eval(), result


@dataclass
class AddaStep:
    """One ADDA step: a discriminator update on frozen-source against target features, then, while the
    :class:`AccuracyGate` is open, an encoder update with inverted labels (plus GAM's weight drift)."""

    source_model: TaskModel
    target_model: TaskModel
    disc: torch.nn.Module
    opt_e: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    layer: str
    reference: dict[str, torch.Tensor]
    params: AdaptFeaturesParams
    device: torch.device
    growth_e: LossGrowth
    growth_d: LossGrowth
    hint: str = "lower [segmentation.]cycada.adapt_features.lr in params.yaml"

    def __post_init__(self) -> None:
        self.gate = AccuracyGate(self.params.gate_accuracy, self.params.gate_window)

    def __call__(self, batch: tuple, at: At) -> dict[str, float]:
        p, device = self.params, self.device
        (xs, *_), (xt, *_) = batch
        xs, xt = xs.to(device), xt.to(device)
        with autocast(device):
            with torch.no_grad():
                hs = _features(self.source_model, xs, self.layer)
            ht = _features(self.target_model, xt, self.layer)
            real, fake = self.disc(hs).float(), self.disc(ht.detach()).float()
            loss_d = discriminator_loss(real, fake, p.gan_mode)
        descend(self.opt_d, loss_d, at.where, self.hint, watch=self.growth_d)
        acc = distributed.mean(discriminator_accuracy(real, fake, p.gan_mode))  # one gate for all processes
        logs = {"loss_d": loss_d.item(), "acc_d": acc, "loss_e": 0.0, "drift": 0.0, "encoder_updates": 0}
        if self.gate.update(acc):
            self.disc.requires_grad_(False)
            with autocast(device):
                loss_e = gan_loss(self.disc(ht).float(), True, p.gan_mode)  # inverted labels
                drift = (weight_drift(self.target_model, self.reference, p.drift_reduction) if p.weight_reg > 0
                         else torch.zeros(()))
                loss = p.lambda_encoder * loss_e + p.weight_reg * drift
            descend(self.opt_e, loss, at.where, self.hint, watch=self.growth_e)
            self.disc.requires_grad_(True)
            logs.update(loss_e=loss_e.item(), drift=drift.item(), encoder_updates=1)
        return logs


def _epoch_row(sums: dict[str, float], steps: int) -> dict[str, float]:
    """The discriminator's values averaged over the epoch's steps, the encoder's over its updates."""
    updates = sums.get("encoder_updates", 0)
    return {"loss_d": sums.get("loss_d", 0.0) / max(steps, 1), "acc_d": sums.get("acc_d", 0.0) / max(steps, 1),
            "loss_e": sums.get("loss_e", 0.0) / max(updates, 1), "drift": sums.get("drift", 0.0) / max(updates, 1),
            "encoder_updates": updates, "steps": steps}


def _features(model: TaskModel, x: torch.Tensor, layer: str) -> torch.Tensor:
    return model.forward_features(x, [layer])[layer]
