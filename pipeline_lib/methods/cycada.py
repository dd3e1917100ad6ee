"""CyCADA pixel-level adaptation: CycleGAN with a semantic-consistency loss.

Hoffman et al., "CyCADA: Cycle-Consistent Adversarial Domain Adaptation", ICML 2018,
section 3 (eqs. 2-4) and appendix 6.1. Generators G_S->T and G_T->S, image discriminators
D_S and D_T; GAN loss both ways, L1 cycle loss both ways, and the semantic-consistency
loss that labels images with a source task model before and after translation.

``semantic_loss``:
- ``frozen`` (the paper, eq. 4): the pretrained source model f_S, fixed, is the noisy labeller;
- ``joint`` (the authors' release): a classifier initialised from f_S keeps training on the
  labelled source batch alongside the generators, and the semantic loss is switched off while
  that classifier's cross-entropy is above ``joint_ce_threshold`` (1.0);
- ``off``: plain CycleGAN (the paper's ablation, Fig. 3a).

Two more options follow the fork (``docs/cycada.md`` lists every difference): ``lambda_gan_st``
weights the S -> T adversarial term alone (the fork: 2), and ``semantic_targets: labels`` makes
the S -> T semantic loss use the true source labels instead of f_S's predictions.

The feature-level half of CyCADA is :mod:`pipeline_lib.methods.adda`. Everything here works on
image tensors of any size, so classification and segmentation share it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from pipeline_lib import distributed
from pipeline_lib.config import DivergenceParams
from pipeline_lib.methods.cycada_params import CycleGANParams
from pipeline_lib.losses import (cycle_loss, discriminator_accuracy, discriminator_loss, gan_loss,
                                 semantic_consistency_loss)
from pipeline_lib.models.cyclegan import ImageDiscriminator, ResnetGenerator
from pipeline_lib.models.base import TaskModel
from pipeline_lib.runtime import autocast
from pipeline_lib.batches import in_order_batches, paired_batches
from pipeline_lib.training import At, Loop, LossGrowth, TrainResult, build_optimizer, descend, fit, steps_per_epoch


class ImagePool:
    """History of generated images (Shrivastava et al.; CycleGAN's pool of 50) for discriminator updates.

    Its contents and random state are part of a resumable checkpoint (``state_dict``).
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.generator = torch.Generator().manual_seed(seed)
        self.images: list[torch.Tensor] = []

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for img in batch.detach():
            if len(self.images) < self.size:
                self.images.append(img)
                out.append(img)
            elif torch.rand(1, generator=self.generator).item() < 0.5:
                i = int(torch.randint(self.size, (1,), generator=self.generator))
                out.append(self.images[i])
                self.images[i] = img
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        images = torch.stack(self.images).cpu() if self.images else torch.empty(0)
        return {"images": images, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.images = list(state["images"]) if state["images"].numel() else []
        self.generator.set_state(state["rng"])


@dataclass
class CycleGAN:
    g_st: ResnetGenerator
    g_ts: ResnetGenerator
    d_s: ImageDiscriminator
    d_t: ImageDiscriminator

    @classmethod
    def build(cls, channels: int, params: CycleGANParams) -> "CycleGAN":
        g, d = params.generator, params.discriminator
        gen = lambda: ResnetGenerator(channels, channels, g.ngf, g.n_down, g.n_blocks, g.norm)  # noqa: E731
        disc = lambda: ImageDiscriminator(channels, d.ndf, d.n_layers, d.norm)  # noqa: E731
        return cls(gen(), gen(), disc(), disc())

    def modules(self) -> dict[str, nn.Module]:
        return {"g_st": self.g_st, "g_ts": self.g_ts, "d_s": self.d_s, "d_t": self.d_t}

    def state_dict(self) -> dict[str, Any]:
        return {name: m.state_dict() for name, m in self.modules().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, m in self.modules().items():
            m.load_state_dict(state[name])

    def to(self, device: torch.device) -> "CycleGAN":
        for m in self.modules().values():
            m.to(device)
        return self

    def train(self) -> "CycleGAN":
        for m in self.modules().values():
            m.train()
        return self


def frozen(model: nn.Module) -> nn.Module:
    """Eval mode, no gradients: the source model as a fixed labeller."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def train_cyclegan(net: CycleGAN, source_model: TaskModel, source: Dataset, target: Dataset,
                   params: CycleGANParams, device: torch.device, seed: int, out, resume_key: str | None,
                   desc: str = "cyclegan", divergence: DivergenceParams = DivergenceParams()) -> TrainResult:
    """Train the four networks of ``net`` (in place); ``source`` holds (image, label), ``target`` images.

    The generators' and the discriminators' losses stop the run when they grow by ``divergence.loss_growth``
    (GAN losses move, but not by that factor)."""
    step = CycleGANStep.build(net.to(device), source_model, params, device, seed, divergence, desc)
    gen_s, gen_t = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    loop = Loop(desc, params.epochs, steps_per_epoch(len(source), params.batch_size, params.max_steps_per_epoch),
                lambda: paired_batches(source, target, params.batch_size, gen_s, gen_t, params.num_workers), step,
                params.checkpoint_every, start=net.train, postfix=("loss_g", "loss_d", "loss_sem"))
    return fit(loop, out, resume_key, step.parts(), {"source": gen_s, "target": gen_t})


@dataclass
class CycleGANStep:
    """One CycleGAN iteration: classifier (``semantic_loss: joint``), then generators, then discriminators, each
    one optimiser step; a non-finite loss stops the stage before its step, naming the step and the update, and
    so does a generator or discriminator loss that has grown by ``divergence.loss_growth``."""

    net: CycleGAN
    labeller: nn.Module
    classifier: nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    opt_c: torch.optim.Optimizer | None
    pool_s: ImagePool
    pool_t: ImagePool
    params: CycleGANParams
    device: torch.device
    growth_g: LossGrowth | None = None
    growth_d: LossGrowth | None = None
    hint: str = "lower [segmentation.]cycada.cyclegan.lr in params.yaml"

    @classmethod
    def build(cls, net: CycleGAN, source_model: TaskModel, params: CycleGANParams, device: torch.device, seed: int,
              divergence: DivergenceParams = DivergenceParams(), desc: str = "cyclegan") -> "CycleGANStep":
        """The step's optimisers, image pools and divergence watchers for ``net`` (on ``device``); ``source_model``
        is the frozen labeller, and, with ``semantic_loss: joint``, the start of the jointly trained classifier."""
        labeller = frozen(source_model.to(device))
        classifier = None
        if params.semantic_loss == "joint":
            classifier = copy.deepcopy(source_model).to(device).train().requires_grad_(True)
        betas = (params.beta1, 0.999)
        adam = lambda modules: build_optimizer("adam", [p for m in modules for p in m.parameters()],  # noqa: E731
                                               params.lr, betas=betas)
        return cls(net, labeller, classifier, adam([net.g_st, net.g_ts]), adam([net.d_s, net.d_t]),
                   adam([classifier]) if classifier is not None else None,
                   ImagePool(params.pool_size, seed + 2), ImagePool(params.pool_size, seed + 3), params, device,
                   LossGrowth(divergence.loss_growth, f"{desc}: generator loss"),
                   LossGrowth(divergence.loss_growth, f"{desc}: discriminator loss"))

    def parts(self) -> dict[str, Any]:
        """What a resumable checkpoint saves."""
        parts: dict[str, Any] = {**self.net.modules(), "opt_g": self.opt_g, "opt_d": self.opt_d}
        if self.classifier is not None:
            parts.update(classifier=self.classifier, opt_c=self.opt_c)
        return {**parts, "pool_s": self.pool_s, "pool_t": self.pool_t, "growth_g": self.growth_g,
                "growth_d": self.growth_d}

    def __call__(self, batch: tuple, at: At) -> dict[str, float]:
        (xs, ys), (xt, *_) = batch
        dev = self.device
        return self.update(xs.to(dev), ys.to(dev), xt.to(dev), at.where)

    def update(self, xs: torch.Tensor, ys: torch.Tensor, xt: torch.Tensor, where: str) -> dict[str, float]:
        """The three updates on one batch; returns the logged scalars."""
        p, device, net, classifier = self.params, self.device, self.net, self.classifier
        logs: dict[str, float] = {}
        sem_model: nn.Module | None = self.labeller if p.semantic_loss == "frozen" else None
        if classifier is not None and self.opt_c is not None:
            with autocast(device):
                ce = F.cross_entropy(classifier(xs).float(), ys)
            descend(self.opt_c, ce, f"{where} (classifier update)", self.hint)
            logs["classifier_ce"] = ce.item()
            if distributed.mean(ce.item()) <= p.joint_ce_threshold:  # the global batch's: every process alike
                sem_model = classifier
        # generators: fool both discriminators, reconstruct both ways, keep the labeller's predictions
        frozen_now = [net.d_s, net.d_t] + ([classifier] if classifier is not None else [])
        for m in frozen_now:  # the generator loss must train neither the discriminators nor the classifier
            m.requires_grad_(False)
        with autocast(device):
            fake_t, fake_s = net.g_st(xs), net.g_ts(xt)
            rec_s, rec_t = net.g_ts(fake_t), net.g_st(fake_s)
            loss_gan = (p.lambda_gan_st * gan_loss(net.d_t(fake_t).float(), True, p.gan_mode)
                        + gan_loss(net.d_s(fake_s).float(), True, p.gan_mode))
            loss_cyc = cycle_loss(rec_s.float(), xs) + cycle_loss(rec_t.float(), xt)
            loss = p.lambda_gan * loss_gan + p.lambda_cycle * loss_cyc
            if sem_model is not None and p.lambda_semantic > 0:
                if sem_model is classifier:
                    sem_model.eval()
                targets_st = ys if p.semantic_targets == "labels" else None
                loss_sem = (semantic_consistency_loss(sem_model, fake_t, xs, targets_st)
                            + semantic_consistency_loss(sem_model, fake_s, xt)).float()
                if sem_model is classifier:
                    sem_model.train()
                loss = loss + p.lambda_semantic * loss_sem
                logs["loss_sem"] = loss_sem.item()
            if p.lambda_identity > 0:
                loss_idt = cycle_loss(net.g_st(xt).float(), xt) + cycle_loss(net.g_ts(xs).float(), xs)
                loss = loss + p.lambda_identity * loss_idt
                logs["loss_idt"] = loss_idt.item()
        descend(self.opt_g, loss, f"{where} (generator update)", self.hint, watch=self.growth_g)
        for m in frozen_now:
            m.requires_grad_(True)
        # discriminators: real vs (pooled) translated
        with autocast(device):
            real_t, fake_t_scores = net.d_t(xt).float(), net.d_t(self.pool_t.query(fake_t)).float()
            real_s, fake_s_scores = net.d_s(xs).float(), net.d_s(self.pool_s.query(fake_s)).float()
            loss_d = (discriminator_loss(real_t, fake_t_scores, p.gan_mode)
                      + discriminator_loss(real_s, fake_s_scores, p.gan_mode))
        descend(self.opt_d, loss_d, f"{where} (discriminator update)", self.hint, watch=self.growth_d)
        logs.update(loss_g=loss.item(), loss_gan=loss_gan.item(), loss_cyc=loss_cyc.item(), loss_d=loss_d.item(),
                    acc_d_t=discriminator_accuracy(real_t, fake_t_scores, p.gan_mode),
                    acc_d_s=discriminator_accuracy(real_s, fake_s_scores, p.gan_mode))
        return logs


@torch.no_grad()
def translate_dataset(generator: nn.Module, dataset: Dataset, device: torch.device, batch_size: int,
                      sink: Callable[[torch.Tensor, torch.Tensor], None], num_workers: int = 0) -> int:
    """Translate every (image, label) of ``dataset`` in order, batched; ``sink`` receives each batch
    of translated images (CPU, [-1, 1]) with its labels. Memory holds one batch. Returns the count."""
    generator.to(device).eval()
    count = 0
    for images, labels in tqdm(in_order_batches(dataset, batch_size, num_workers), desc="translate", unit="batch"):
        with autocast(device):
            out = generator(images.to(device, non_blocking=True)).float().clamp_(-1, 1).cpu()
        sink(out, labels)
        count += len(out)
    return count


@torch.no_grad()
def translate(generator: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    """Apply a generator to ``images`` in batches; returns CPU tensors in [-1, 1]."""
    generator.to(device).eval()
    out = []
    for start in range(0, len(images), batch_size):
        with autocast(device):
            out.append(generator(images[start:start + batch_size].to(device)).float().clamp_(-1, 1).cpu())
    return torch.cat(out) if out else images[:0].clone()
