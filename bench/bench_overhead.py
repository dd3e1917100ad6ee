"""What the pipeline costs beyond the maths: loop overhead, stage startup, runner no-ops, peak memory.

    python bench/bench_overhead.py throughput               # 1. pipeline loops vs raw PyTorch loops
    python bench/bench_overhead.py throughput --kinds adapt_features --profile adapt_features
    python bench/bench_overhead.py startup   --workspace /tmp/demo17      # 2. per-stage startup phases
    python bench/bench_overhead.py noop      --workspace /tmp/demo17      # 3. snakemake -n / dvc status
    python bench/bench_overhead.py memory    --workspace /tmp/demo17      # 4. peak RSS per stage kind
    python bench/bench_overhead.py all       --workspace /tmp/demo17      # everything, in that order

Every section prints markdown tables; none is a test (bench/README.md holds the measured figures).

1. throughput: each digits-track training stage's own loop function (pipeline_lib.training / methods), called
   in this process on synthetic data of the demo profile's shapes and batch sizes (LeNet on 32x32 RGB), against
   a hand-written PyTorch loop doing the same training work (same model, optimiser, batch, losses, ADDA's gate)
   in the same process. Both are timed over the steps only, from the first batch to the end of the last step
   (the pipeline's through a hook on its ``step_bar``): the functions' setup and end-of-run work (model copies,
   precise-BN pass, history) are left out and shown apart as "fixed s". Per-epoch evaluation monitors are left
   out of both (``monitor=None``). The raw loops do the training work only; the pipeline's per-step logging
   (``.item()`` of losses, accuracies), finiteness and loss-growth checks and its DataLoader are its overhead.
   One torch thread unless ``--threads``. ``--profile KIND`` adds a cProfile of that kind's pipeline loop.
2. startup: per stage module of the workspace's DAG, in fresh processes (code: this checkout, run in the
   workspace for its data): interpreter, ``import stages.<name>``, ``load_params``, then the stage's ``main``
   up to its loop function (data, models, fingerprint, monitor, seeding timed apart), and ``--help`` wall time.
3. noop: a copy of the workspace (``--noop-dir``, made with ``cp -a`` of everything but ``.venv``; dvc.lock
   recorded with ``dvc commit --force`` if the run had none), then ``snakemake -n <report>`` and ``dvc status``
   wall times (median of ``--repeats`` after one warm-up) and where the time goes (cProfile, -X importtime).
4. memory: max_rss / max_uss per stage kind from the workspace's benchmarks/*.tsv (Snakemake's ``benchmark:``
   files); kinds without one are measured with ``/usr/bin/time -v`` only with ``--measure-missing``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pipeline_lib, whichever one the interpreter has installed
PYTHON = sys.executable
BIN = Path(PYTHON).parent


# ---------------------------------------------------------------------------------------------------------------
# 1. training throughput: pipeline loop vs raw loop
# ---------------------------------------------------------------------------------------------------------------

#: the stage kinds measured, in DAG order: (stage, loop function, default steps)
KINDS = {
    "train_supervised": ("training.train_supervised", 20),
    "train_cyclegan": ("cycada.train_cyclegan", 8),
    "train_task": ("training.train_supervised (cycada.train_task)", 20),
    "adapt_features": ("adda.adapt_features", 16),
    "match_activations": ("gam.match_activations", 16),
    "train_calibrator": ("calibrator.train_calibrator", 30),
    "train_i2i": ("i2i.train_i2i (set z_idy_trc)", 30),
    "regress_features": ("fmr.regress_features (inc)", 20),
    "finetune": ("training.train_supervised (fmr.finetune)", 20),
}

#: the module whose ``step_bar`` every kind's loop iterates (the one loop, ``training.fit``)
LOOP_MODULE = "pipeline_lib.training"


class LoopClock:
    """Wraps a module's ``step_bar``: the time from the first batch handed to the loop to the moment the loop asks
    for the batch after its ``steps``-th (or stops), i.e. ``steps`` steps and the loading of ``steps - 1`` batches."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.first: float | None = None
        self.last: float | None = None
        self.count = 0

    def wrap(self, original):
        def step_bar(batches, total, desc):
            bar = original(batches, total, desc)

            def clocked():
                for item in bar:
                    if self.first is None:
                        self.first = time.perf_counter()
                    try:
                        yield item
                    finally:  # the loop asked for the next batch, or stopped
                        self.count += 1
                        if self.count == self.steps:
                            self.last = time.perf_counter()
            return clocked()
        return step_bar

    @property
    def seconds(self) -> float:
        if self.first is None or self.last is None:
            raise RuntimeError(f"the loop ran {self.count} of {self.steps} steps")
        return self.last - self.first


class Batches:
    """The raw loops' data path: shuffled batches indexed straight out of the tensors (no DataLoader)."""

    def __init__(self, tensors, batch: int, seed: int) -> None:
        import torch
        self.tensors, self.batch = tensors, batch
        self.gen = torch.Generator().manual_seed(seed)
        self.perm, self.pos = None, 0

    def next(self):
        import torch
        n = len(self.tensors[0])
        if self.perm is None or self.pos + self.batch > n:
            self.perm, self.pos = torch.randperm(n, generator=self.gen), 0
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return [t[idx] for t in self.tensors]


class Context:
    """The demo profile's params, the lenet_rgb backbone and synthetic source/target sets (two tellable-apart
    pixel ranges, so ADDA's gate opens as it does on real domains)."""

    def __init__(self) -> None:
        import torch
        import yaml
        from pipeline_lib.config import parse_params
        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        raw["profile"] = "demo"
        self.params = parse_params(raw)
        self.backbone = self.params.backbones["lenet_rgb"]
        self.device = torch.device("cpu")
        # the chance test would stop a long run on random labels; the loss-growth test stays on
        self.divergence = self.params.divergence.model_copy(update={"chance_margin": None})
        self.last_updates = self.raw_updates = 0

    def make_data(self, max_items: int) -> None:
        import torch
        gen = torch.Generator().manual_seed(0)
        shape = (max_items, self.backbone.channels, self.backbone.size, self.backbone.size)
        self.xs = torch.rand(shape, generator=gen) * 1.2 - 1.0     # [-1, 0.2]
        self.xt = torch.rand(shape, generator=gen) * 1.2 - 0.2     # [-0.2, 1]
        self.ys = torch.randint(0, 10, (max_items,), generator=gen)

    def lenet(self, seed: int = 0):
        import torch
        from pipeline_lib.models import build_backbone
        torch.manual_seed(seed)
        return build_backbone(self.backbone, num_classes=10)

    def sets(self, n: int, labels_t: bool = False):
        from torch.utils.data import TensorDataset
        source = TensorDataset(self.xs[:n], self.ys[:n])
        target = TensorDataset(self.xt[:n], self.ys[:n]) if labels_t else TensorDataset(self.xt[:n])
        return source, target

    def section(self, name: str):
        return self.params.section(name, "lenet_rgb")


def _cfg(ctx: Context, kind: str):
    """The demo profile's section for ``kind``."""
    return {
        "train_supervised": lambda: ctx.params.train_supervised,
        "train_task": lambda: ctx.section("cycada").train_task,
        "finetune": lambda: ctx.section("fmr").finetune,
        "train_cyclegan": lambda: ctx.section("cycada").cyclegan,
        "adapt_features": lambda: ctx.section("cycada").adapt_features,
        "match_activations": lambda: ctx.section("gam").match_activations,
        "train_calibrator": lambda: ctx.section("calibrator"),
        "train_i2i": lambda: ctx.section("i2i"),
        "regress_features": lambda: ctx.section("fmr").regress,
    }[kind]()


def pipeline_run(ctx: Context, kind: str, steps: int, out: Path) -> tuple[float, float]:
    """Run ``kind``'s pipeline loop function for ``steps`` steps (one epoch); (loop seconds, call seconds)."""
    import contextlib
    import copy
    import importlib
    import io
    import torch

    cfg = _cfg(ctx, kind)
    batch = cfg.batch_size
    n = steps * batch
    module = importlib.import_module(LOOP_MODULE)
    clock = LoopClock(steps)
    original = module.step_bar
    module.step_bar = clock.wrap(original)
    dev, div = ctx.device, ctx.divergence
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # tqdm bars
            start = time.perf_counter()
            if kind in ("train_supervised", "train_task", "finetune"):
                from pipeline_lib.training import train_supervised
                cfg = cfg.model_copy(update={"epochs": 1, "max_steps": None, "max_steps_per_epoch": None})
                source, _ = ctx.sets(n)
                train_supervised(ctx.lenet(), source, cfg, dev, torch.Generator().manual_seed(0), out, {},
                                 divergence=div)
            elif kind == "train_cyclegan":
                from pipeline_lib.methods.cycada import CycleGAN, train_cyclegan
                cfg = cfg.model_copy(update={"epochs": 1, "max_steps_per_epoch": None})
                torch.manual_seed(0)
                net = CycleGAN.build(ctx.backbone.channels, cfg)
                source, target = ctx.sets(n)
                train_cyclegan(net, ctx.lenet(), source, target, cfg, dev, 0, out, None, divergence=div)
            elif kind == "adapt_features":
                from pipeline_lib.methods.adda import adapt_features
                cfg = cfg.model_copy(update={"max_epochs": 1, "max_steps_per_epoch": None, "max_steps": None})
                source, target = ctx.sets(n)
                _, result = adapt_features(ctx.lenet(), source, target, cfg, dev, 0, out, None, divergence=div)
                ctx.last_updates = result.history[-1]["encoder_updates"]
            elif kind == "match_activations":
                from pipeline_lib.methods.gam import match_activations
                cfg = cfg.model_copy(update={"epochs": 1, "steps_per_epoch": steps, "disc_pretrain_steps": 0,
                                             "progressive": False})
                source, target = ctx.sets(n)
                f_s = ctx.lenet()
                match_activations(copy.deepcopy(f_s), f_s, source, target, cfg,
                                  list(ctx.params.section("gam", "lenet_rgb").layers["lenet_rgb"]),
                                  dev, 0, out, None, divergence=div)
            elif kind == "train_calibrator":
                from pipeline_lib.methods.calibrator import train_calibrator
                cfg = cfg.model_copy(update={"epochs": 1, "steps_per_epoch": steps})
                source, target = ctx.sets(n)
                train_calibrator(ctx.lenet(), source, target, cfg, dev, 0, out, None, divergence=div)
            elif kind == "train_i2i":
                from pipeline_lib.methods.i2i import train_i2i
                from pipeline_lib.methods.i2i_spec import input_update
                from pipeline_lib.models import build_backbone
                from pipeline_lib.models.i2i import InputAdapter
                cfg = cfg.model_copy(update={"epochs": 1, "steps_per_epoch": steps})
                update = input_update(cfg, ctx.backbone)
                torch.manual_seed(0)
                inner = build_backbone(ctx.backbone.model_copy(update=update), num_classes=10)
                adapter = InputAdapter(inner, size=cfg.size, grey=cfg.grey, scale=cfg.scale)
                source, target = ctx.sets(n)
                train_i2i(inner, adapter, source, target, cfg, cfg.weights(I2I_SET), dev, 0, out, None,
                          divergence=div)
            elif kind == "regress_features":
                from pipeline_lib.methods.fmr import PairedSet, regress_features
                from pipeline_lib.methods.fmr_params import variant_weights
                cfg = cfg.model_copy(update={"epochs": 1, "steps_per_epoch": steps})
                source, target = ctx.sets(n)
                weights = variant_weights(list(ctx.params.section("fmr", "lenet_rgb").layers["lenet_rgb"]), "inc",
                                          cfg.weights_inc)
                regress_features(ctx.lenet(), PairedSet(source, target), weights, cfg, dev, 0, out, None,
                                 divergence=div)
            else:
                raise ValueError(kind)
            call = time.perf_counter() - start
    finally:
        module.step_bar = original
    return clock.seconds, call


I2I_SET = "z_idy_trc"  # the demo's first I2I set (the paper's best digits line): terms c, z, id_y, trc


#: raw-loop variants that add one piece of the pipeline's per-step extra work, to measure what it costs
RAW_VARIANTS = {
    "match_activations": "+ the pipeline's acc_d pass: every discriminator re-run on both domains' activations "
                         "after its step (no grad), accuracies read with .item()",
}


def raw_run(ctx: Context, kind: str, steps: int, variant: bool = False) -> float:
    """The hand-written loop for ``kind``: same models, optimisers, batch and losses; seconds for ``steps`` steps.
    ``variant``: add the extra work :data:`RAW_VARIANTS` names."""
    import copy
    import random
    import torch
    import torch.nn.functional as F
    from torch import nn

    cfg = _cfg(ctx, kind)
    batch = cfg.batch_size
    n = steps * batch

    def bce(scores, real: bool):
        return F.binary_cross_entropy_with_logits(scores, torch.full_like(scores, 1.0 if real else 0.0))

    def features(model, x, names):  # LeNet is a chain of named stages
        out = {}
        for name, stage in model.stages.items():
            x = stage(x)
            if name in names:
                out[name] = x
                if len(out) == len(names):
                    break
        return out

    def adam(parameters, lr, betas=(0.9, 0.999)):
        return torch.optim.Adam([p for p in parameters if p.requires_grad], lr=lr, betas=betas)

    def update(opt, loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if kind in ("train_supervised", "train_task", "finetune"):
        model = ctx.lenet().train()
        opt = adam(model.parameters(), cfg.lr)
        data = Batches([ctx.xs[:n], ctx.ys[:n]], batch, 0)

        def step():
            x, y = data.next()
            update(opt, F.cross_entropy(model(x), y))

    elif kind == "train_cyclegan":
        from pipeline_lib.methods.cycada import CycleGAN
        torch.manual_seed(0)
        net = CycleGAN.build(ctx.backbone.channels, cfg)
        labeller = ctx.lenet().eval().requires_grad_(False)
        betas = (cfg.beta1, 0.999)
        opt_g = adam([*net.g_st.parameters(), *net.g_ts.parameters()], cfg.lr, betas)
        opt_d = adam([*net.d_s.parameters(), *net.d_t.parameters()], cfg.lr, betas)
        for m in net.modules().values():
            m.train()
        data = Batches([ctx.xs[:n], ctx.ys[:n]], batch, 0)
        data_t = Batches([ctx.xt[:n]], batch, 1)

        class Pool:  # CycleGAN's history of 50 generated images
            def __init__(self, seed: int) -> None:
                self.images, self.rng = [], random.Random(seed)

            def query(self, images):
                out = []
                for img in images.detach():
                    if len(self.images) < cfg.pool_size:
                        self.images.append(img)
                        out.append(img)
                    elif self.rng.random() < 0.5:
                        i = self.rng.randrange(cfg.pool_size)
                        out.append(self.images[i])
                        self.images[i] = img
                    else:
                        out.append(img)
                return torch.stack(out)

        pool_s, pool_t = Pool(2), Pool(3)

        def step():
            (xs, _), (xt,) = data.next(), data_t.next()
            net.d_s.requires_grad_(False), net.d_t.requires_grad_(False)
            fake_t, fake_s = net.g_st(xs), net.g_ts(xt)
            rec_s, rec_t = net.g_ts(fake_t), net.g_st(fake_s)
            loss = cfg.lambda_gan * (bce(net.d_t(fake_t), True) + bce(net.d_s(fake_s), True)) \
                + cfg.lambda_cycle * (F.l1_loss(rec_s, xs) + F.l1_loss(rec_t, xt))
            with torch.no_grad():
                pseudo_s, pseudo_t = labeller(xs).argmax(1), labeller(xt).argmax(1)
            loss = loss + cfg.lambda_semantic * (F.cross_entropy(labeller(fake_t), pseudo_s)
                                                 + F.cross_entropy(labeller(fake_s), pseudo_t))
            update(opt_g, loss)
            net.d_s.requires_grad_(True), net.d_t.requires_grad_(True)
            loss_d = 0.5 * (bce(net.d_t(xt), True) + bce(net.d_t(pool_t.query(fake_t)), False)) \
                + 0.5 * (bce(net.d_s(xs), True) + bce(net.d_s(pool_s.query(fake_s)), False))
            update(opt_d, loss_d)

    elif kind == "adapt_features":
        from pipeline_lib.models.discriminators import FeatureDiscriminator
        source_model = ctx.lenet().eval().requires_grad_(False)
        target_model = copy.deepcopy(source_model).train()
        encoder = ("conv1", "conv2", "fc1")
        for name, p in target_model.named_parameters():
            p.requires_grad_(name.split(".")[1] in encoder)
        disc = FeatureDiscriminator(500, cfg.disc_hidden, cfg.disc_layers)
        betas = (cfg.beta1, 0.999)
        opt_e, opt_d = adam(target_model.parameters(), cfg.lr, betas), adam(disc.parameters(), cfg.lr, betas)
        data, data_t = Batches([ctx.xs[:n]], batch, 0), Batches([ctx.xt[:n]], batch, 1)
        ctx.raw_updates = 0

        def step():
            (xs,), (xt,) = data.next(), data_t.next()
            with torch.no_grad():
                hs = features(source_model, xs, ("fc1",))["fc1"]
            ht = features(target_model, xt, ("fc1",))["fc1"]
            real, fake = disc(hs), disc(ht.detach())
            update(opt_d, 0.5 * (bce(real, True) + bce(fake, False)))
            right = (real > 0).sum() + (fake <= 0).sum()
            if right.item() / (real.numel() + fake.numel()) > cfg.gate_accuracy:  # the gate (window 1)
                disc.requires_grad_(False)
                update(opt_e, cfg.lambda_encoder * bce(disc(ht), True))
                disc.requires_grad_(True)
                ctx.raw_updates += 1

    elif kind == "match_activations":
        from pipeline_lib.models.discriminators import FeatureDiscriminator
        source_model = ctx.lenet().eval().requires_grad_(False)
        model = copy.deepcopy(source_model).train().requires_grad_(True)
        reference = [p.detach().clone() for p in source_model.parameters()]
        layers = tuple(ctx.params.section("gam", "lenet_rgb").layers["lenet_rgb"])
        weights = dict(zip(layers, cfg.layer_weights or [1.0] * len(layers)))
        widths = {"fc1": 500, "logits": 10}
        discs = nn.ModuleDict({k: FeatureDiscriminator(widths[k], cfg.disc_hidden, cfg.disc_layers) for k in layers})
        betas = (cfg.beta1, 0.999)
        opt_t = adam(model.parameters(), cfg.lr, betas)
        opt_d = adam(discs.parameters(), cfg.disc_lr or cfg.lr, betas)
        data, data_t = Batches([ctx.xs[:n]], batch, 0), Batches([ctx.xt[:n]], batch, 1)

        def step():
            (xs,), (xt,) = data.next(), data_t.next()
            with torch.no_grad():
                hs = features(source_model, xs, layers)
            ht = features(model, xt, layers)
            update(opt_d, sum(0.5 * (bce(discs[k](hs[k]), True) + bce(discs[k](ht[k].detach()), False))
                              for k in layers))
            if variant:  # gam.py: sums["acc_d"] += sum(discriminator_accuracy(discs[n](hs[n]), discs[n](ht[n])))
                with torch.no_grad():
                    sum(float((discs[k](hs[k]) > 0).sum() + (discs[k](ht[k]) <= 0).sum()) for k in layers)
            discs.requires_grad_(False)
            loss_gan = sum(weights[k] * bce(discs[k](ht[k]), True) for k in layers)
            drift = sum((p - r).pow(2).mean() for p, r in zip(model.parameters(), reference))
            update(opt_t, cfg.weight_reg * drift + cfg.lambda_gan * loss_gan)
            discs.requires_grad_(True)

    elif kind == "train_calibrator":
        from pipeline_lib.methods.calibrator import GroupDiscriminators, shuffled_patches
        from pipeline_lib.models.calibrator import Calibrator
        model = ctx.lenet().eval().requires_grad_(False)
        calibrator = Calibrator(3, cfg.ngf, cfg.n_down, cfg.n_blocks, cfg.linf)
        discs = GroupDiscriminators(500, 3, cfg)
        betas = (cfg.beta1, 0.999)
        opt_c, opt_d = adam(calibrator.parameters(), cfg.lr, betas), adam(discs.parameters(), cfg.lr, betas)
        gen_p = torch.Generator().manual_seed(2)
        data, data_t = Batches([ctx.xs[:n]], batch, 0), Batches([ctx.xt[:n]], batch, 1)

        def group_ce(logits, group):
            logits = logits.flatten(1)
            return F.cross_entropy(logits, torch.full((len(logits),), group, dtype=torch.long))

        def scores(groups):
            feats = [features(model, g, ("fc1",))["fc1"] for g in groups]
            return [discs.feat(f) for f in feats], [discs.pixel(shuffled_patches(g, cfg.patch, gen_p)) for g in groups]

        def step():
            (xs,), (xt,) = data.next(), data_t.next()
            cs, ct = calibrator(xs), calibrator(xt)
            f, p = scores([xs, xt, cs.detach(), ct.detach()])
            update(opt_d, cfg.lambda_feat * sum(group_ce(lg, i) for i, lg in enumerate(f)) / 4
                   + cfg.lambda_pixel * sum(group_ce(lg, i) for i, lg in enumerate(p)) / 4)
            discs.requires_grad_(False)
            f, p = scores([cs, ct])
            update(opt_c, sum(w * (cfg.lambda_feat * group_ce(a, 0) + cfg.lambda_pixel * group_ce(b, 0))
                              for w, a, b in zip((cfg.source_weight, 1.0), f, p)))
            discs.requires_grad_(True)

    elif kind == "train_i2i":
        from pipeline_lib.methods.i2i import I2INets, random_affine
        from pipeline_lib.methods.i2i_spec import input_update
        from pipeline_lib.models import build_backbone
        w = cfg.weights(I2I_SET)
        assert {k for k, v in w.items() if v} == {"c", "z", "id_y", "trc"}, w
        update_ = input_update(cfg, ctx.backbone)
        torch.manual_seed(0)
        inner = build_backbone(ctx.backbone.model_copy(update=update_), num_classes=10)
        grey = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        nets = I2INets(inner, w, cfg, (ctx.xs[:1] * grey).sum(1, keepdim=True)).train()
        d_z, decoder_y = nets.d_z, nets.decoders
        betas = (cfg.beta1, cfg.beta2)
        opt_g = adam([*inner.parameters(), *decoder_y.parameters()], cfg.lr, betas)
        opt_d = adam(d_z.parameters(), cfg.lr, betas)
        gen_aug = torch.Generator().manual_seed(2)
        data, data_t = Batches([ctx.xs[:n], ctx.ys[:n]], batch, 0), Batches([ctx.xt[:n]], batch, 1)

        def step():
            (xs, c), (yt,) = data.next(), data_t.next()
            x, y = (xs * grey).sum(1, keepdim=True), (yt * grey).sum(1, keepdim=True)  # grey; 32x32 already
            x = random_affine(x, cfg.rotate, cfg.translate, gen_aug)
            y = random_affine(y, cfg.rotate, cfg.translate, gen_aug)
            fx = features(inner, x, ("fc1", "logits"))
            z_x, logits_x = fx["fc1"], fx["logits"]
            z_y = features(inner, y, ("fc1",))["fc1"]
            x2y = decoder_y(z_x, "y")
            # critic d_z: WGAN-GP with the drift term, source codes real
            real, fake = z_x.detach(), z_y.detach()
            scores_real = d_z(real)
            loss_d = d_z(fake).mean() - scores_real.mean() + cfg.drift_penalty * scores_real.pow(2).mean()
            eps = torch.rand((len(real), 1), generator=gen_aug)
            mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
            grad, = torch.autograd.grad(d_z(mixed).sum(), mixed, create_graph=True)
            update(opt_d, loss_d + cfg.gradient_penalty * (grad.norm(2, dim=1) - 1).pow(2).mean())
            d_z.requires_grad_(False)
            loss = w["c"] * F.cross_entropy(logits_x, c) \
                + w["z"] * (-d_z(z_y).mean() + d_z(z_x).mean()) \
                + w["id_y"] * F.l1_loss(decoder_y(z_y, "y"), y) \
                + w["trc"] * F.cross_entropy(inner(x2y.detach()), c)
            update(opt_g, loss)
            d_z.requires_grad_(True)

    elif kind == "regress_features":
        from pipeline_lib.methods.fmr_params import variant_weights
        h1 = ctx.lenet().eval().requires_grad_(False)
        h2 = copy.deepcopy(h1).requires_grad_(True).train()
        for m in h2.modules():  # dropout off, as the pipeline trains H2
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.eval()
        weights = variant_weights(list(ctx.params.section("fmr", "lenet_rgb").layers["lenet_rgb"]), "inc",
                                  cfg.weights_inc)
        layers = tuple(weights)
        opt = adam(h2.parameters(), cfg.lr)
        data = Batches([ctx.xs[:n], ctx.xt[:n]], batch, 0)

        def step():
            x1, x2 = data.next()
            with torch.no_grad():
                target = features(h1, x1, layers)
            feats = features(h2, x2, layers)
            update(opt, sum(weights[k] * F.mse_loss(feats[k], target[k]) for k in layers))
    else:
        raise ValueError(kind)

    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def throughput(args: argparse.Namespace) -> None:
    import tempfile
    import torch
    from pipeline_lib.runtime import seed_everything

    torch.set_num_threads(args.threads)
    seed_everything(0)  # as every stage does (deterministic kernels)
    kinds = args.kinds or list(KINDS)
    steps = {k: max(2, round(KINDS[k][1] * args.steps_scale)) for k in kinds}
    ctx = Context()
    batch = {k: _cfg(ctx, k).batch_size for k in kinds}
    ctx.make_data(max(steps[k] * batch[k] for k in kinds))
    print(f"\n## 1. Training throughput: pipeline loop vs raw PyTorch loop\n\n"
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU; demo profile shapes (lenet_rgb, "
          f"32x32 RGB); images/s: median of {args.repeats} runs each, "
          f"alternating, after a warm-up; ratio: median over neighbouring (pipeline, raw) pairs; monitors excluded "
          f"from both; images/s = source images per second\n", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.pt"
        for kind in kinds:
            n = steps[kind]
            pipeline_run(ctx, kind, max(2, n // 2), out)  # warm-up (allocator, lazy initialisation)
            raw_run(ctx, kind, max(2, n // 2))
            pipe, raw, fixed = [], [], []
            for r in range(args.repeats):
                order = ("pipe", "raw") if r % 2 == 0 else ("raw", "pipe")
                for which in order:
                    if which == "pipe":
                        loop, call = pipeline_run(ctx, kind, n, out)
                        pipe.append(loop)
                        fixed.append(call - loop)
                    else:
                        raw.append(raw_run(ctx, kind, n))
            b = batch[kind]
            p_rate, r_rate = n * b / statistics.median(pipe), n * b / statistics.median(raw)
            # the ratio of each pair of neighbouring runs (they share the machine's load), then the median
            ratio = statistics.median(r / p for p, r in zip(pipe, raw))
            note = ""
            if kind == "adapt_features":
                note = f"encoder updates {ctx.last_updates}/{n} vs {ctx.raw_updates}/{n}"
            spread = f"{min(r / p for p, r in zip(pipe, raw)):.2f}-{max(r / p for p, r in zip(pipe, raw)):.2f}"
            if kind in RAW_VARIANTS:
                extra = []
                for _ in range(args.repeats):
                    extra.append(raw_run(ctx, kind, n, variant=True))
                    raw.append(raw_run(ctx, kind, n))
                cost = statistics.median(e / r - 1 for e, r in zip(extra, raw[-args.repeats:]))
                note = (f"raw {RAW_VARIANTS[kind]}: {n * b / statistics.median(extra):.0f} images/s, "
                        f"{cost:+.1%} time per step")
            rows.append((kind, KINDS[kind][0], b, n, p_rate, r_rate, ratio, spread, statistics.median(fixed), note))
            print(f"  {kind}: pipeline {p_rate:.0f} images/s, raw {r_rate:.0f} images/s, ratio {ratio:.3f} "
                  f"(pairs: {' '.join(f'{r / p:.3f}' for p, r in zip(pipe, raw))})", file=sys.stderr, flush=True)
    print("| stage | loop function | batch | steps | pipeline images/s | raw images/s | ratio | pair ratios "
          "| fixed s | note |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---|")
    for kind, fn, b, n, p, r, ratio, spread, fixed, note in rows:
        flag = "" if ratio >= 0.9 else " (< 0.9)"
        print(f"| {kind} | {fn} | {b} | {n} | {p:.0f} | {r:.0f} | {ratio:.3f}{flag} | {spread} | {fixed:.3f} "
              f"| {note} |")
    if args.profile:
        profile_loop(ctx, args.profile, steps.get(args.profile, KINDS[args.profile][1]))


def profile_loop(ctx: Context, kind: str, steps: int) -> None:
    """cProfile of one pipeline call of ``kind``: the functions with the most own time."""
    import cProfile
    import io
    import pstats
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        prof = cProfile.Profile()
        prof.enable()
        pipeline_run(ctx, kind, steps, Path(tmp) / "model.pt")
        prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(25)
    print(f"\n### cProfile of the {kind} pipeline call ({steps} steps), by own time\n\n```")
    print("\n".join(line for line in text.getvalue().splitlines()[4:] if line.strip()))
    print("```")


# ---------------------------------------------------------------------------------------------------------------
# 2. per-stage startup
# ---------------------------------------------------------------------------------------------------------------

#: names in a stage module's globals whose call starts the stage's real work: the probe stops there
ENTRY_POINTS = ("train_supervised", "train_cyclegan", "adapt_features", "match_activations", "gaussian_match",
                "train_calibrator", "train_i2i", "regress_features", "invert_features", "translate_dataset",
                "evaluate_classification", "evaluate_segmentation", "embed", "trace_deployed", "write_report",
                "build_domain", "pixel_counts")
#: names in a stage module's globals timed apart on the way there, by phase
PHASES = {"seed_everything": "seed", "train_set": "data", "test_set": "data", "translated_set": "data",
          "frames_for_translation": "data", "sample_images": "data", "load_task_model": "model",
          "load_checkpoint": "model", "load_i2i_model": "model", "stage_fingerprint": "fingerprint",
          "fingerprint": "fingerprint", "experiment_target_monitor": "monitor"}
PHASE_ORDER = ("seed", "data", "model", "fingerprint", "monitor")


class _Reached(BaseException):
    pass


def probe(module: str, argv: list[str]) -> None:
    """Runs in a fresh process (``_probe``): import the stage, load params, run its ``main`` up to its loop
    function; prints one JSON line of phase seconds."""
    t0 = time.perf_counter()
    import importlib
    mod = importlib.import_module(module)
    t1 = time.perf_counter()
    from pipeline_lib.config import load_params
    ns = argparse.Namespace(params="params.yaml")
    words = iter(argv)
    for word in words:
        key = word.lstrip("-").replace("-", "_")
        value = next(words)
        setattr(ns, key, int(value) if key == "seed" else value)
    params = load_params(ns.params)
    t2 = time.perf_counter()
    import torch
    torch.set_num_threads(params.threads_per_job)  # as run_stage does
    spent = dict.fromkeys(PHASE_ORDER, 0.0)
    reached = {"at": None, "name": None}

    def timed(fn, phase):
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[phase] += time.perf_counter() - start
        return wrapper

    def stop(name):
        def wrapper(*a, **k):
            reached["at"], reached["name"] = time.perf_counter(), name
            raise _Reached()
        return wrapper

    for name, phase in PHASES.items():
        if callable(getattr(mod, name, None)):
            setattr(mod, name, timed(getattr(mod, name), phase))
    for name in ENTRY_POINTS:
        if callable(getattr(mod, name, None)):
            setattr(mod, name, stop(name))
    try:
        mod.main(ns, params)
    except _Reached:
        pass
    t3 = reached["at"] or time.perf_counter()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a big process reports the parent's
    status = Path("/proc/self/status").read_text().splitlines()
    rss = next((int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:")), float("nan"))
    print(json.dumps({"import": t1 - t0, "params": t2 - t1, "main": t3 - t2, **spent, "entry": reached["name"],
                      "rss_mb": rss}))


def _stage_commands(workspace: Path, experiments: list[str]) -> dict[str, list[str]]:
    """One command (seed 0 where there are seeds) per stage module of the experiments' DAG."""
    from pipeline_lib.config import load_params
    from pipeline_lib.dag import build_stages
    params = load_params(workspace / "params.yaml")
    commands: dict[str, list[str]] = {}
    for stage in build_stages(params, tuple(experiments)):
        words = shlex.split(stage.cmd)
        argv = words[words.index("-m") + 1:]
        seed = lambda w: w[w.index("--seed") + 1] if "--seed" in w else "0"  # noqa: E731
        if argv[0] not in commands or (seed(commands[argv[0]]) != "0" and seed(argv) == "0"):
            commands[argv[0]] = argv
    return commands


def _wall(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if check and done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall


def _code_env() -> dict:
    """Run this checkout's code (``-P`` keeps the workspace's own copy off sys.path)."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": os.environ.get(
        "PYTHONDONTWRITEBYTECODE", "")}


def startup(args: argparse.Namespace) -> None:
    workspace = args.workspace
    commands = _stage_commands(workspace, args.experiments)
    env = _code_env()
    _wall([PYTHON, "-P", "-c", "import torch"], workspace, env)  # warm the page cache
    interp = statistics.median(_wall([PYTHON, "-P", "-c", "pass"], workspace, env) for _ in range(args.repeats))
    torch_import = statistics.median(_wall([PYTHON, "-P", "-c", "import torch"], workspace, env)
                                     for _ in range(args.repeats))
    print(f"\n## 2. Per-stage startup (workspace {workspace}, code {ROOT}, "
          f"experiments {' '.join(args.experiments)})\n\n"
          f"median of {args.repeats} fresh processes per stage; interpreter start (`python -c pass`) "
          f"{interp:.3f} s, `python -c 'import torch'` {torch_import:.3f} s; `main` = the stage's main() up to its "
          "loop function (seed, data, model, fingerprint, monitor are parts of it); rss = max RSS at that point\n",
          flush=True)
    print("| stage | --help wall s | import s | params s | main s | seed | data | model | fingerprint | monitor "
          "| startup total s | rss MB | stops at | stage wall s (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    walls = _benchmark_rows(workspace)
    for module, argv in sorted(commands.items()):
        runs = []
        for _ in range(args.repeats):
            done = subprocess.run([PYTHON, "-P", str(Path(__file__).resolve()), "_probe", *argv], cwd=workspace,
                                  env=env, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                why = (done.stderr.strip().splitlines() or ["?"])[-1][:160]
                print(f"| {module.split('.')[-1]} | failed: {why} |" + " |" * 12, flush=True)
                break
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if not runs:
            continue
        med = {k: statistics.median(r[k] for r in runs) for k in ("import", "params", "main", *PHASE_ORDER, "rss_mb")}
        help_wall = statistics.median(_wall([PYTHON, "-P", "-m", module, "--help"], workspace, env)
                                      for _ in range(args.repeats))
        total = interp + med["import"] + med["params"] + med["main"]
        kind = module.split(".")[-1]
        stage_s = statistics.median(r["s"] for r in walls[kind]) if walls.get(kind) else float("nan")
        print(f"| {kind} | {help_wall:.2f} | {med['import']:.2f} | {med['params']:.3f} | {med['main']:.2f} | "
              + " | ".join(f"{med[p]:.2f}" for p in PHASE_ORDER)
              + f" | {total:.2f} | {med['rss_mb']:.0f} | {runs[0]['entry'] or '(end of main)'} | {stage_s:.1f} |",
              flush=True)
    cuts(workspace, env)
    if args.importtime:
        importtime(workspace, env, args.importtime)


def cuts(workspace: Path, env: dict) -> None:
    """Re-measure the startup cuts already made (each in fresh processes, median of 5)."""
    snippets = {
        "torch.use_deterministic_algorithms(True, warn_only=True) (before)":
            "import torch; torch.use_deterministic_algorithms(True, warn_only=True)",
        "pipeline_lib.runtime._deterministic_algorithms() (now)":
            "import torch; from pipeline_lib.runtime import _deterministic_algorithms as d; d()",
        "yaml.safe_load(params.yaml) (before)":
            "import yaml; yaml.safe_load(open('params.yaml'))",
        "yaml.load(params.yaml, CSafeLoader) (now)":
            "import yaml; yaml.load(open('params.yaml'), Loader=yaml.CSafeLoader)",
    }
    print("\n### Startup cuts already made, re-measured (the call alone, in a fresh process after its imports)\n")
    print("| call | s |")
    print("|---|---:|")
    for label, code in snippets.items():
        setup, _, call = code.rpartition("; ")
        script = (f"import time; {setup}; t = time.perf_counter(); {call}; "
                  "print(time.perf_counter() - t)")
        values = []
        for _ in range(5):
            done = subprocess.run([PYTHON, "-P", "-c", script], cwd=workspace, env=env, capture_output=True,
                                  text=True, check=True)
            values.append(float(done.stdout.strip().splitlines()[-1]))
        print(f"| `{label}` | {statistics.median(values):.3f} |")


def importtime(workspace: Path, env: dict, module: str, top: int = 15) -> None:
    """The packages whose import costs most (``python -X importtime``): each package's root import, cumulative
    (it includes the packages it imports first, so the rows overlap), and the project's own modules' self time."""
    done = subprocess.run([PYTHON, "-P", "-X", "importtime", "-c", f"import {module}"], cwd=workspace, env=env,
                          capture_output=True, text=True, check=True)
    cumulative: dict[str, int] = {}
    own = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2 or "self [us]" in line:
            continue
        self_us, cum, name = line[len("import time:"):].split("|")
        name = name.strip()
        if name.split(".")[0] in ("pipeline_lib", "stages"):
            own += int(self_us)
        elif "." not in name:
            cumulative[name] = max(cumulative.get(name, 0), int(cum))
    print(f"\n### `python -X importtime -c 'import {module}'`: packages by cumulative import time\n")
    print("| package (root import, cumulative: includes what it imports first) | s |")
    print("|---|---:|")
    for name, us in sorted(cumulative.items(), key=lambda kv: -kv[1])[:top]:
        print(f"| {name} | {us / 1e6:.3f} |")
    print(f"| (pipeline_lib and stages modules, their own code) | {own / 1e6:.3f} |")


# ---------------------------------------------------------------------------------------------------------------
# 3. no-op runs of the two runners
# ---------------------------------------------------------------------------------------------------------------

def noop_workspace(workspace: Path, copy: Path, target: str) -> None:
    """``copy``: the workspace (``cp -a``) without its .venv (gigabytes; the runners here are this interpreter's),
    brought to a state where both runners have nothing to do. Tracked files changed after the run (``git
    status``) are put back as the run read them; jobs Snakemake still finds out of date (an output rewritten after
    the run) are run; a run made by Snakemake has no dvc.lock, so the outputs are recorded as ``make share`` does
    (``dvc commit --force``, which rewrites them), and then get their mtimes back."""
    if copy.exists():
        return
    copy.mkdir(parents=True)
    for entry in sorted(workspace.iterdir()):
        if entry.name != ".venv":
            subprocess.run(["cp", "-a", str(entry), str(copy / entry.name)], check=True)
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    say(f"copied {workspace} to {copy} (without .venv)")
    env = _workspace_env(copy)
    changed = [line[3:] for line in subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=copy,
                                                   capture_output=True, text=True, check=True).stdout.splitlines()]
    if changed:
        subprocess.run(["git", "checkout", "--", *changed], cwd=copy, check=True)
        reference = (copy / "Snakefile").stat()
        for name in changed:
            os.utime(copy / name, ns=(reference.st_atime_ns, reference.st_mtime_ns))
        say(f"put back as committed (changed after the run): {', '.join(changed)}")
    done = subprocess.run([str(BIN / "snakemake"), target, "--cores", "2", "--quiet", "rules"], cwd=copy, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"snakemake {target} failed in {copy}:\n{(done.stdout + done.stderr)[-3000:]}")
    say(f"snakemake {target} in the copy ran: {' '.join(done.stdout.split()) or 'nothing'}")
    if not (copy / "dvc.lock").is_file():
        skip = {".git", ".dvc", ".snakemake", ".pipeline"}
        times = {}
        for folder, dirs, files in os.walk(copy):
            dirs[:] = [d for d in dirs if d not in skip]
            for name in [*files, *dirs, ""]:
                path = Path(folder) / name
                if not path.is_symlink():
                    st = path.stat()
                    times[path] = (st.st_atime_ns, st.st_mtime_ns)
        start = time.perf_counter()
        subprocess.run([str(BIN / "dvc"), "commit", "--force", "--quiet"], cwd=copy, env=env, check=True)
        say(f"dvc commit --force (records the run in dvc.lock): {time.perf_counter() - start:.1f} s")
        for path, ns in times.items():
            if path.exists():
                os.utime(path, ns=ns)


def _workspace_env(copy: Path) -> dict:
    """The copy's own code on sys.path, as its .venv's editable install would give the runners."""
    return {**os.environ, "PYTHONPATH": str(copy)}


def _runs(cmd: list[str], cwd: Path, env: dict, repeats: int, expect: str) -> tuple[float, str]:
    """Median wall seconds of ``repeats`` runs after one warm-up; fails unless the output says ``expect``."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    text = done.stdout + done.stderr
    if done.returncode != 0 or expect not in text:
        raise RuntimeError(f"{shlex.join(cmd)} in {cwd} is not a no-op (exit {done.returncode}):\n{text[-3000:]}")
    return statistics.median(_wall(cmd, cwd, env) for _ in range(repeats)), text


def _profile(cmd: list[str], cwd: Path, env: dict, buckets: dict[str, tuple[str, str]], top: int = 12) -> None:
    """cProfile a runner's command: named parts (cumulative time of a function; they nest) and the top functions."""
    import pstats
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "prof"
        subprocess.run([PYTHON, "-m", "cProfile", "-o", str(out), *cmd], cwd=cwd, env=env, capture_output=True,
                       check=True)
        stats = pstats.Stats(str(out)).stats  # {(file, line, func): (cc, nc, tt, ct, callers)}
    total = max(ct for (_, _, _, ct, _) in stats.values())
    print(f"\ncProfile of `{shlex.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}` "
          f"({total:.2f} s under the profiler, which slows pure-Python code)\n")
    print("| part (cumulative; parts nest) | s | share |")
    print("|---|---:|---:|")
    for label, (file_part, func) in buckets.items():
        ct = max((v[3] for (f, _, fn), v in stats.items() if file_part in f and fn == func), default=0.0)
        print(f"| {label} | {ct:.2f} | {ct / total:.0%} |")
    ranked = sorted(((v[3], f, fn) for (f, _, fn), v in stats.items()
                     if not fn.startswith("<") and "importlib" not in f and v[3] < 0.97 * total), reverse=True)
    print(f"\ntop {top} functions by cumulative time (below the entry point):\n")
    print("| function | cumulative s |")
    print("|---|---:|")
    for ct, f, fn in ranked[:top]:
        short = "/".join(Path(f).parts[-2:])
        print(f"| `{short}:{fn}` | {ct:.2f} |")


SNAKEMAKE_PARTS = {
    "imports (all)": ("<frozen importlib._bootstrap>", "_find_and_load"),
    "Snakefile (exec: params, DAG stages, dvc.yaml text)": ("/workflow.py", "include"),
    "  pipeline_lib.dag.build_stages": ("pipeline_lib/dag.py", "build_stages"),
    "  pipeline_lib.dag.dvc_yaml_text": ("pipeline_lib/dag.py", "dvc_yaml_text"),
    "  pipeline_lib.config.load_params": ("pipeline_lib/config.py", "load_params"),
    "Snakemake DAG: build": ("snakemake/dag.py", "init"),
    "Snakemake DAG: what needs to run": ("snakemake/dag.py", "update_needrun"),
}
DVC_PARTS = {
    "imports (all)": ("<frozen importlib._bootstrap>", "_find_and_load"),
    "repo status": ("dvc/repo/status.py", "status"),
    "index: collect and load dvc.yaml's stages": ("dvc/repo/index.py", "from_repo"),
    "YAML parsing (ruamel): dvc.yaml, dvc.lock, params.yaml per stage": ("dvc/utils/serialize/_yaml.py",
                                                                         "parse_yaml"),
    "stage status (deps/outs)": ("dvc/stage/__init__.py", "status"),
    "  params deps: params.yaml read for each stage": ("dvc/dependency/param.py", "read_params"),
    "hashing (state db, files)": ("dvc_data/hashfile/hash.py", "hash_file"),
}


def noop(args: argparse.Namespace) -> None:
    copy = args.noop_dir
    target = f"reports/{args.experiments[0]}.csv"
    noop_workspace(args.workspace, copy, target)
    env = _workspace_env(copy)
    snake = [str(BIN / "snakemake"), "-n", target]
    dvc = [str(BIN / "dvc"), "status"]
    s_wall, _ = _runs(snake, copy, env, args.repeats, "Nothing to be done")
    d_wall, _ = _runs(dvc, copy, env, args.repeats, "up to date")
    s_version = statistics.median(_wall([str(BIN / "snakemake"), "--version"], copy, env) for _ in range(args.repeats))
    d_version = statistics.median(_wall([str(BIN / "dvc"), "--version"], copy, env) for _ in range(args.repeats))
    code = ("import time; t0 = time.perf_counter(); from pipeline_lib.config import load_params; "
            "from pipeline_lib.dag import build_stages, dvc_yaml_text; t1 = time.perf_counter(); "
            "p = load_params('params.yaml'); t2 = time.perf_counter(); s = build_stages(p); t3 = time.perf_counter(); "
            "d = dvc_yaml_text(p); t4 = time.perf_counter(); print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, len(s))")
    parts = [list(map(float, subprocess.run([PYTHON, "-P", "-c", code], cwd=copy, env=env, capture_output=True,
                                            text=True, check=True).stdout.split())) for _ in range(args.repeats)]
    imp, load, stages_s, dvc_text = (statistics.median(p[i] for p in parts) for i in range(4))
    n_jobs = int(parts[0][4])
    print(f"\n## 3. No-op runs on a finished run ({copy}: a copy of {args.workspace})\n\n"
          f"median of {args.repeats} after one warm-up; {n_jobs} stages in params.yaml's DAG, dvc.yaml "
          f"{(copy / 'dvc.yaml').stat().st_size / 1024:.0f} KiB, "
          f"dvc.lock {(copy / 'dvc.lock').stat().st_size / 1024:.0f} KiB\n")
    print("| command | wall s | of which |")
    print("|---|---:|---|")
    print(f"| `snakemake -n {target}` | {s_wall:.2f} | `snakemake --version` {s_version:.2f} s; Snakefile's own work: "
          f"imports {imp:.2f} s, load_params {load:.2f} s, build_stages {stages_s:.2f} s, dvc_yaml_text "
          f"{dvc_text:.2f} s (fresh process) |")
    print(f"| `dvc status` | {d_wall:.2f} | `dvc --version` {d_version:.2f} s |")
    _profile(snake, copy, env, SNAKEMAKE_PARTS)
    _profile(dvc, copy, env, DVC_PARTS)
    noop_cuts(args, copy, env, target, s_wall, d_wall)


#: Snakefile variants (text replacements), each a candidate cut of `snakemake -n`
SNAKEFILE_CUTS = {
    "no dvc.yaml freshness check (dvc_yaml_text at every start)": [
        ("    DVC_TEXT = dvc_yaml_text(PARAMS)\n", ""),
        ('if not Path("dvc.yaml").is_file() or Path("dvc.yaml").read_text() != DVC_TEXT:', "if False:")],
    "rules for the requested experiment only (build_stages(PARAMS, (experiment,)))": [
        ("    STAGES = build_stages(PARAMS)", "    STAGES = build_stages(PARAMS, ({experiment!r},))")],
}
#: run `dvc status` with dvc.dependency.param's load_path memoised per (path, mtime, size): params.yaml is parsed
#: once instead of once per stage
MEMO_DVC = """
import functools, os, sys
import dvc.dependency.param as param
_load, _seen = param.load_path, {}
def load_path(path, fs, **kwargs):
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size, tuple(sorted(kwargs.items())))
    if key not in _seen:
        _seen[key] = _load(path, fs, **kwargs)
    return _seen[key]
param.load_path = load_path
from dvc.cli import main
sys.exit(main(sys.argv[1:]))
"""


def noop_cuts(args: argparse.Namespace, copy: Path, env: dict, target: str, s_wall: float, d_wall: float) -> None:
    """Candidate cuts, each measured on the copy (median of ``--repeats`` after a warm-up; both must stay no-ops)."""
    rows = [("`snakemake -n` as is", s_wall, s_wall)]
    text = (copy / "Snakefile").read_text()
    for label, replacements in SNAKEFILE_CUTS.items():
        variant = text
        for old, new in replacements:
            new = new.format(experiment=args.experiments[0]) if "{experiment" in new else new
            if old not in variant:
                raise RuntimeError(f"Snakefile cut {label!r}: {old!r} not found")
            variant = variant.replace(old, new)
        path = copy / "Snakefile.bench_cut"
        path.write_text(variant)
        wall, _ = _runs([str(BIN / "snakemake"), "-s", path.name, "-n", target], copy, env, args.repeats,
                        "Nothing to be done")
        rows.append((f"`snakemake -n`, {label}", wall, s_wall))
    path.unlink()
    rows.append(("`dvc status` as is", d_wall, d_wall))
    memo = copy / ".bench_dvc_memo.py"
    memo.write_text(MEMO_DVC)
    variants = [("params file parsed once per process (load_path memoised)", [PYTHON, str(memo), "status"], env)]
    if args.ruamel_clib:
        clib_env = {**env, "PYTHONPATH": f"{args.ruamel_clib}{os.pathsep}{env['PYTHONPATH']}"}
        variants += [("ruamel.yaml.clib installed (ruamel.yaml 0.19 made its C parser an extra)",
                      [str(BIN / "dvc"), "status"], clib_env),
                     ("both", [PYTHON, str(memo), "status"], clib_env)]
    for label, cmd, cmd_env in variants:
        wall, _ = _runs(cmd, copy, cmd_env, args.repeats, "up to date")
        rows.append((f"`dvc status`, {label}", wall, d_wall))
    memo.unlink()
    print("\n### Candidate cuts, measured on the copy\n")
    print("| variant | wall s | gain s |")
    print("|---|---:|---:|")
    for label, wall, base in rows:
        print(f"| {label} | {wall:.2f} | {base - wall:+.2f} |")
    if not args.ruamel_clib:
        print("\n(`--ruamel-clib DIR` with `pip install --target DIR ruamel.yaml.clib` adds the C-parser variants)")


# ---------------------------------------------------------------------------------------------------------------
# 4. peak memory per stage kind
# ---------------------------------------------------------------------------------------------------------------

def _benchmark_rows(workspace: Path) -> dict[str, list[dict[str, float]]]:
    """Snakemake's benchmark rows (the last of each file) by stage kind (the rule name up to its first ``__``)."""
    import csv
    rows: dict[str, list[dict[str, float]]] = {}
    for tsv in sorted((workspace / "benchmarks").glob("*.tsv")):
        with tsv.open() as f:
            data = list(csv.DictReader(f, delimiter="\t"))
        if not data:
            continue
        row = {k: float(v) for k, v in data[-1].items() if k in ("s", "max_rss", "max_uss", "max_pss", "cpu_time")
               and v not in ("", "NA", "-")}
        rows.setdefault(tsv.stem.split("__")[0], []).append(row)
    return rows


def memory(args: argparse.Namespace) -> None:
    workspace = args.workspace
    rows = _benchmark_rows(workspace)
    env = _code_env()
    base = {}
    for label, code in (("python", "pass"), ("import torch", "import torch")):
        done = subprocess.run(["/usr/bin/time", "-v", PYTHON, "-P", "-c", code], cwd=workspace, env=env,
                              capture_output=True, text=True, check=True)
        base[label] = next(int(line.split(":")[1]) for line in done.stderr.splitlines()
                           if "Maximum resident set size" in line) / 1024
    print(f"\n## 4. Peak memory per stage kind ({workspace}/benchmarks/*.tsv, Snakemake's benchmark: files)\n\n"
          "max_rss: the job's process tree (shell, python, tee) as Snakemake's benchmark measures it; max_uss: "
          f"memory unique to it (shared libraries not counted). Baselines: `python -c pass` {base['python']:.0f} MB, "
          f"`python -c 'import torch'` {base['import torch']:.0f} MB max RSS (/usr/bin/time -v)\n")
    print("| stage kind | jobs | max_rss max MB | max_rss median MB | max_uss max MB | max_uss median MB "
          "| wall median s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind, data in sorted(rows.items(), key=lambda kv: -max(r.get("max_rss", 0) for r in kv[1])):
        def stat(key, fn):
            values = [r[key] for r in data if key in r]
            return f"{fn(values):.0f}" if values else "n/a"
        print(f"| {kind} | {len(data)} | {stat('max_rss', max)} | {stat('max_rss', statistics.median)} | "
              f"{stat('max_uss', max)} | {stat('max_uss', statistics.median)} | {stat('s', statistics.median)} |")
    from pipeline_lib.config import load_params
    from pipeline_lib.dag import build_stages
    stages = build_stages(load_params(workspace / "params.yaml"), tuple(args.experiments))
    missing = {s.name.split("__")[0]: s for s in stages if s.name.split("__")[0] not in rows}
    if missing and not args.measure_missing:
        print(f"\nno benchmark file for: {', '.join(sorted(missing))} (--measure-missing runs one of each under "
              "/usr/bin/time -v, in the workspace)")
    for kind, stage in sorted(missing.items()) if args.measure_missing else ():
        done = subprocess.run(["/usr/bin/time", "-v", "bash", "-c", stage.cmd], cwd=workspace, capture_output=True,
                              text=True)
        rss = next((int(line.split(":")[1]) / 1024 for line in done.stderr.splitlines()
                    if "Maximum resident set size" in line), float("nan"))
        print(f"- {kind}: {rss:.0f} MB max RSS (/usr/bin/time -v {stage.cmd}, exit {done.returncode})")


# ---------------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------------

def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "_probe":  # internal: one stage's startup, in a fresh process
        probe(sys.argv[2], sys.argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="section", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", type=Path, default=Path("/tmp/demo17"),
                        help="a finished run of the default experiment (read only)")
    common.add_argument("--experiments", nargs="+", default=["mnist5k_mnistm", "mnistm_photocopy"],
                        help="startup and memory: stages of these; noop: the first one's report")
    common.add_argument("--repeats", type=int, default=3)
    tput = argparse.ArgumentParser(add_help=False)
    tput.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as threads_per_job)")
    tput.add_argument("--kinds", nargs="+", choices=list(KINDS), help="stage kinds (default: all)")
    tput.add_argument("--steps-scale", type=float, default=1.0, help="multiply every kind's step count")
    tput.add_argument("--profile", choices=list(KINDS), help="also print a cProfile of this kind's pipeline loop")
    start_ = argparse.ArgumentParser(add_help=False)
    start_.add_argument("--importtime", default="stages.train_supervised", metavar="MODULE",
                        help="print the top imports of MODULE (-X importtime); '' to skip")
    noop_ = argparse.ArgumentParser(add_help=False)
    noop_.add_argument("--noop-dir", type=Path, default=Path("/tmp/bench_noop"),
                       help="the workspace copy the no-op runs use (made when absent)")
    noop_.add_argument("--ruamel-clib", type=Path, metavar="DIR",
                       help="a `pip install --target DIR ruamel.yaml.clib` folder: also time dvc with its C parser")
    mem = argparse.ArgumentParser(add_help=False)
    mem.add_argument("--measure-missing", action="store_true",
                     help="run stage kinds without a benchmark file under /usr/bin/time -v (slow; writes outputs)")
    sub.add_parser("throughput", parents=[common, tput], help="1. pipeline loops vs raw PyTorch loops")
    sub.add_parser("startup", parents=[common, start_], help="2. per-stage startup phases")
    sub.add_parser("noop", parents=[common, noop_], help="3. snakemake -n and dvc status on a finished run")
    sub.add_parser("memory", parents=[common, mem], help="4. peak memory per stage kind")
    sub.add_parser("all", parents=[common, tput, start_, noop_, mem], help="1-4 in that order")
    args = parser.parse_args()
    start = time.perf_counter()
    sections = ["throughput", "startup", "noop", "memory"] if args.section == "all" else [args.section]
    for section in sections:
        globals()[section](args)
    print(f"\n(bench_overhead {args.section}: {time.perf_counter() - start:.0f} s, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
