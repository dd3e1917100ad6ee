"""I2IAdapt: image to image translation for domain adaptation.

Murez, Kolouri, Kriegman, Ramamoorthi and Kim, "Image to Image Translation for Domain Adaptation",
CVPR 2018, sections 3 and 4. No code was released; where the text is silent this module does what the
building blocks it cites do (WGAN-GP critics, Gulrajani et al. 2017; CycleGAN-style decoders) and says so.

One shared encoder f (f_x = f_y) and classifier h (the track's task model), decoders g_x, g_y and three
critics are trained end to end on eq. 7, Q = sum_k lambda_k Q_k:

- Q_c (eq. 1): cross-entropy of h(f(x)) on labelled source images;
- Q_z (eq. 3): d_z tells source codes f(x) from target codes f(y); its gradient reaches the encoder only
  through target images (section 4): the encoder's term is -d_z(f(y));
- Q_tr (eq. 4): d_y tells y from g_y(f(x)), d_x tells x from g_x(f(y));
- Q_id (eq. 2): L1 of g_x(f(x)) - x (``id_x``) and g_y(f(y)) - y (``id_y``), weighted separately (Table 2);
- Q_cyc (eq. 5): L1 of g_x(f(g_y(f(x)))) - x and g_y(f(g_x(f(y)))) - y;
- Q_trc (eq. 6): cross-entropy of h(f(g_y(f(x)))) on the source labels, with the translated image detached so
  the gradient reaches only f_y and h, never g_y (section 4).

The critics are WGAN-GP critics (section 4: "the Improved Wasserstein method"), trained in alternation with
the rest (``critic_steps`` updates on each batch, then one of the encoder, classifier and decoders); Adam 2e-4,
betas (0.5, 0.999). A term whose lambda is 0 is not computed, and networks only it needs are not built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from pipeline_lib.config import DivergenceParams
from pipeline_lib.methods.i2i_params import TERMS, I2IParams
from pipeline_lib.metrics import IGNORE_INDEX
from pipeline_lib.models.base import TaskModel
from pipeline_lib.models.discriminators import FeatureDiscriminator
from pipeline_lib.models.i2i import Decoders, ImageCritic, InputAdapter
from pipeline_lib.runtime import autocast
from pipeline_lib.batches import cycled_pairs, shuffled_loader
from pipeline_lib.training import (At, Loop, LossGrowth, Series, SeriesPlan, TrainResult, build_optimizer, check_finite,
                                   descend, fit, fixed_steps, optimizer_step, recompute_batchnorm)

Weights = dict[str, float]


# ---- losses -------------------------------------------------------------------------------------

def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """l_c of eqs. 1 and 6: cross-entropy (segmentation: per pixel, 255 not scored)."""
    return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX)


def image_loss(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """l_id of eqs. 2 and 5: the L1 norm, averaged over pixels."""
    return F.l1_loss(image.float(), reference.float())


def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor, drift: float = 0.0) -> torch.Tensor:
    """The critic's side of a Wasserstein GAN: it maximises E[d(real)] - E[d(fake)], so minimises this, plus
    ``drift`` * E[d(real)^2] (Karras et al. 2018), which keeps the scores near 0.

    The drift term is not in the paper. Without it the encoder, shared by both domains, runs away: Q_z rewards
    target codes the critic scores high, the source codes (same encoder) follow, and the critic, judged only on
    the difference, never pulls the scores back (MNIST -> USPS: code norms 9 -> 190,000 in 200 steps)."""
    loss = fake_scores.float().mean() - real_scores.float().mean()
    return loss + drift * real_scores.float().pow(2).mean() if drift else loss


def generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator's side: move the fakes' scores up (-E[d(fake)])."""
    return -fake_scores.float().mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al., eq. 3): E[(||grad d(x_hat)||_2 - 1)^2] at x_hat uniformly between paired real
    and fake samples (one mixing weight per sample)."""
    real, fake = real.detach().float(), fake.detach().float()
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=generator).to(real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(mixed).float().sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


# ---- networks -----------------------------------------------------------------------------------

def needed(weights: Weights) -> dict[str, bool]:
    """Which networks a set of weights uses: a term at 0 builds nothing."""
    on = {t: weights.get(t, 0.0) > 0 for t in TERMS}
    return {"g_x": on["tr"] or on["id_x"] or on["cyc"], "g_y": on["tr"] or on["id_y"] or on["cyc"] or on["trc"],
            "d_z": on["z"], "d_xy": on["tr"]}


class I2INets(nn.Module):
    """The task model (f, h) and whatever the weights need of g_x, g_y, d_z, d_x and d_y."""

    def __init__(self, model: TaskModel, weights: Weights, params: I2IParams, sample: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        use = needed(weights)
        z = model.probe(sample, [model.encoder_layer])[model.encoder_layer]
        z_channels, z_side = z.shape[1], (z.shape[-2] if z.dim() == 4 else 1)
        channels, side = sample.shape[1], sample.shape[-2]
        domains = [d for d in ("x", "y") if use[f"g_{d}"]]
        self.decoders = Decoders(z_channels, z_side, channels, side, params.ngf, params.shared_layers, domains) \
            if domains else None
        self.d_z = FeatureDiscriminator(z_channels, params.disc_hidden, 3) if use["d_z"] else None
        self.d_x = ImageCritic(channels, params.ndf, params.critic_layers) if use["d_xy"] else None
        self.d_y = ImageCritic(channels, params.ndf, params.critic_layers) if use["d_xy"] else None

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """z = f(x): the task model's encoder-layer activation."""
        return self.model.forward_features(x, [self.model.encoder_layer])[self.model.encoder_layer]

    def code_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model.forward_features(x, [self.model.encoder_layer, "logits"])
        return out[self.model.encoder_layer], out["logits"]

    def decode(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        assert self.decoders is not None
        return self.decoders(z, domain)

    def generator_parameters(self) -> list[nn.Parameter]:
        return [*self.model.parameters(), *(self.decoders.parameters() if self.decoders is not None else ())]

    def critics(self) -> list[nn.Module]:
        return [c for c in (self.d_z, self.d_x, self.d_y) if c is not None]


@dataclass
class Forward:
    """What one generator pass computed on a batch (source x with labels c, target y)."""

    z_x: torch.Tensor
    logits_x: torch.Tensor
    z_y: torch.Tensor | None = None
    x2y: torch.Tensor | None = None   # g_y(f(x))
    y2x: torch.Tensor | None = None   # g_x(f(y))


def forward(nets: I2INets, x: torch.Tensor, y: torch.Tensor, weights: Weights) -> Forward:
    """Codes, logits and translations the active terms need."""
    w = weights
    z_x, logits_x = nets.code_and_logits(x)
    out = Forward(z_x, logits_x)
    if w["z"] or w["tr"] or w["id_y"] or w["cyc"]:
        out.z_y = nets.code(y)
    if w["tr"] or w["cyc"] or w["trc"]:
        out.x2y = nets.decode(z_x, "y")
    if w["tr"] or w["cyc"]:
        out.y2x = nets.decode(out.z_y, "x")
    return out


def generator_terms(nets: I2INets, fwd: Forward, x: torch.Tensor, c: torch.Tensor, y: torch.Tensor,
                    weights: Weights, z_routing: str = "target") -> dict[str, torch.Tensor]:
    """Each active term of eq. 7 (unweighted) for the encoder, classifier and decoders.

    ``z_routing`` "target" (section 4): Q_z reaches the encoder through target codes only, -E[d_z(f(y))];
    "both": through source codes too, E[d_z(f(x))] - E[d_z(f(y))] (the Wasserstein distance itself, as
    WDGRL and DANN-style shared encoders train it; an option, not the paper's)."""
    w, terms = weights, {}
    if w["c"]:
        terms["c"] = classification_loss(fwd.logits_x, c)
    if w["z"]:
        terms["z"] = generator_loss(nets.d_z(fwd.z_y))
        if z_routing == "both":
            terms["z"] = terms["z"] + nets.d_z(fwd.z_x).float().mean()
    if w["tr"]:
        terms["tr"] = generator_loss(nets.d_y(fwd.x2y)) + generator_loss(nets.d_x(fwd.y2x))
    if w["id_x"]:
        terms["id_x"] = image_loss(nets.decode(fwd.z_x, "x"), x)
    if w["id_y"]:
        terms["id_y"] = image_loss(nets.decode(fwd.z_y, "y"), y)
    if w["cyc"]:
        terms["cyc"] = image_loss(nets.decode(nets.code(fwd.x2y), "x"), x) + \
            image_loss(nets.decode(nets.code(fwd.y2x), "y"), y)
    if w["trc"]:  # detached: reaches f_y and h, never g_y (section 4)
        terms["trc"] = classification_loss(nets.model(fwd.x2y.detach()), c)
    return terms


def critic_terms(nets: I2INets, fwd: Forward, x: torch.Tensor, y: torch.Tensor, weights: Weights, gp: float,
                 generator: torch.Generator, drift: float = 0.0) -> dict[str, torch.Tensor]:
    """Each active critic's WGAN-GP loss on the pass's detached codes and translations (source codes and
    real images are the critics' 'real' side)."""
    terms = {}
    for name, critic, real, fake in critic_inputs(nets, fwd, x, y, weights):
        real, fake = real.detach(), fake.detach()
        loss = critic_loss(critic(real), critic(fake), drift)
        if gp:
            loss = loss + gp * gradient_penalty(critic, real, fake, generator)
        terms[name] = loss
    return terms


def critic_inputs(nets: I2INets, fwd: Forward, x: torch.Tensor, y: torch.Tensor,
                  weights: Weights) -> Iterator[tuple[str, nn.Module, torch.Tensor, torch.Tensor]]:
    """(name, critic, real, fake) of each active critic."""
    if weights["z"]:
        yield "d_z", nets.d_z, fwd.z_x, fwd.z_y
    if weights["tr"]:
        yield "d_x", nets.d_x, x, fwd.y2x
        yield "d_y", nets.d_y, y, fwd.x2y


def random_affine(x: torch.Tensor, degrees: float, translate: float, generator: torch.Generator) -> torch.Tensor:
    """Each image rotated by up to ``degrees`` and shifted by up to ``translate`` of its side, either way
    (section 4.1's 'random translations and rotations'); uncovered pixels get the background, -1."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(degrees)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * 2 * translate  # grid coordinates span 2
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


# ---- training -----------------------------------------------------------------------------------

def train_i2i(model: TaskModel, adapter: InputAdapter, source: Dataset, target: Dataset, params: I2IParams,
              weights: Weights, device: torch.device, seed: int, out, resume_key: str | None, desc: str = "i2i",
              monitor: Callable[[TaskModel], float] | None = None,
              divergence: DivergenceParams = DivergenceParams(),
              series: SeriesPlan | None = None) -> tuple[I2INets, TrainResult]:
    """Train ``model`` (behind ``adapter``'s input preparation) with the weighted terms of eq. 7.

    ``source`` yields (image, label), ``target`` (image, ...): target labels are never read. Returns the
    networks (the task model is ``nets.model``) and the per-epoch history: each active term, each critic's
    loss and its Wasserstein estimate, and the monitored target metric (curves only, never selection).
    """
    gen_s, gen_t = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    gen_aug = torch.Generator().manual_seed(seed + 2)
    sample = adapter.prepare(source[0][0][None])
    nets = I2INets(model, weights, params, sample).to(device)
    betas = (params.beta1, params.beta2)
    opt_g = build_optimizer("adam", nets.generator_parameters(), params.lr, betas=betas)
    critics = nets.critics()
    opt_d = build_optimizer("adam", [p for c in critics for p in c.parameters()], params.lr, betas=betas) \
        if critics else None
    step = I2IStep(nets, adapter, weights, opt_g, opt_d, params, device, gen_aug,
                   LossGrowth(divergence.loss_growth, f"{desc}: classification loss"))
    loop = Loop(desc, params.epochs, fixed_steps(len(source), params.batch_size, params.steps_per_epoch),
                lambda: cycled_pairs(source, target, params.batch_size, gen_s, gen_t, params.num_workers), step,
                params.checkpoint_every, start=nets.train, monitor=(lambda: monitor(adapter)) if monitor else None,
                postfix=("loss_c", "loss_trc", "target_metric"))
    parts = {"nets": nets, "opt_g": opt_g, "growth": step.growth, **({"opt_d": opt_d} if opt_d else {})}
    result = fit(loop, out, resume_key, parts, {"source": gen_s, "target": gen_t, "augment": gen_aug},
                 Series.kept(series, out, model))
    # the task model's batch-norm statistics on target images, as training passed them (domain by domain)
    recompute_batchnorm(model, shuffled_loader(target, params.batch_size, gen_t, params.num_workers), device,
                        params.batchnorm_batches, forward=lambda x: model(adapter.prepare(x)))
    return nets.eval(), result


@dataclass
class I2IStep:
    """One step of eq. 7: ``critic_steps`` WGAN-GP updates of the critics on the batch's pass, then one update of
    the encoder, classifier and decoders on the weighted terms. Logs each term, each critic's loss and its
    Wasserstein estimate."""

    nets: I2INets
    adapter: InputAdapter
    weights: Weights
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    params: I2IParams
    device: torch.device
    gen_aug: torch.Generator
    growth: LossGrowth
    hint: str = "lower [segmentation.]i2i.lr in params.yaml"

    def inputs(self, batch: tuple) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Source images, their labels (masks at the images' size) and target images, prepared and augmented."""
        (xs, cs, *_), (yt, *_) = batch
        p, device = self.params, self.device
        x, y = self.adapter.prepare(xs.to(device)), self.adapter.prepare(yt.to(device))
        c = cs.to(device)
        if self.nets.model.task == "segmentation" and tuple(c.shape[-2:]) != tuple(x.shape[-2:]):
            c = F.interpolate(c[:, None].float(), size=x.shape[-2:], mode="nearest")[:, 0].long()
        if p.augment:
            x = random_affine(x, p.rotate, p.translate, self.gen_aug)
            y = random_affine(y, p.rotate, p.translate, self.gen_aug)
        return x, c, y

    def __call__(self, batch: tuple, at: At) -> dict[str, float]:
        p, device, nets, weights = self.params, self.device, self.nets, self.weights
        x, c, y = self.inputs(batch)
        critics = nets.critics()
        with autocast(device):  # bf16 on CUDA; the losses are taken in float32
            fwd = forward(nets, x, y, weights)
        for _ in range(p.critic_steps if critics else 0):
            with autocast(device):
                d_terms = critic_terms(nets, fwd, x, y, weights, p.gradient_penalty, self.gen_aug, p.drift_penalty)
            descend(self.opt_d, sum(d_terms.values()), at.where, self.hint)  # type: ignore[arg-type]
        for critic in critics:
            critic.requires_grad_(False)
        with autocast(device):
            g_terms = generator_terms(nets, fwd, x, c, y, weights, p.z_routing)
        loss = sum(weights[k] * v for k, v in g_terms.items())
        check_finite(loss, at.where, self.hint)
        self.growth.check(g_terms.get("c", g_terms.get("trc")), at.where, self.hint)
        optimizer_step(self.opt_g, loss)
        for critic in critics:
            critic.requires_grad_(True)
        logs = {f"loss_{k}": v.item() for k, v in g_terms.items()}
        if critics:
            logs.update({f"loss_{k}": v.item() for k, v in d_terms.items()})
            with torch.no_grad(), autocast(device):  # the critics' Wasserstein estimates, E[d(real)] - E[d(fake)]
                for k, crit, real, fake in critic_inputs(nets, fwd, x, y, weights):
                    logs[f"w_{k}"] = -critic_loss(crit(real), crit(fake)).item()
        return logs



@torch.no_grad()
def translations(nets: I2INets, x: torch.Tensor, y: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Rows of the translation figure: source, g_y(f(x)), target, g_x(f(y)) (what the decoders exist for)."""
    nets.eval()
    rows = [("source x", x)]
    heads = nets.decoders.heads if nets.decoders is not None else {}
    if "y" in heads:
        rows.append(("x -> target: g_y(f(x))", nets.decode(nets.code(x), "y")))
    rows.append(("target y", y))
    if "x" in heads:
        rows.append(("y -> source: g_x(f(y))", nets.decode(nets.code(y), "x")))
    return rows
