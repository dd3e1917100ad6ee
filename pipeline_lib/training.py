"""The one training loop every method runs on, its plumbing, and supervised training itself.

:func:`fit` runs a method's :class:`Loop`: epochs of steps with their progress bars, the per-epoch history of what
the steps log, the target monitor, the stop rule and resumable checkpoints; a method brings its step (its losses and
optimiser updates) and its batches. :class:`Resumable` saves modules, optimisers, RNG states and the per-epoch
history to ``<out>.partial`` every ``checkpoint_every`` epochs; a rerun with the same ``resume_key`` (the stage's
fingerprint of its inputs and params, :mod:`pipeline_lib.provenance`) continues from there instead of restarting. A
partial made from other inputs or params, or one that does not fit the model, is discarded with one log line. Final
artifacts are written atomically by the stage only when training completes.

Every stage that trains batch-norm layers ends with :func:`recompute_batchnorm` (a "precise BN" pass): the
running statistics an exponential average gathered while the net changed fast describe an earlier net
(torchvision's MobileNetV3 averages with momentum 0.01), so eval mode would score far below training.

Divergence stops a run before its checkpoint is written: a non-finite loss (:func:`descend`),
a watched loss that grows by ``divergence.loss_growth`` (:class:`LossGrowth`) and, for
supervised classification, a training accuracy that stays at chance (:func:`check_chance`).

Under torchrun (:mod:`pipeline_lib.distributed`) each process reads its share of every global batch
(:class:`pipeline_lib.batches.ShardedBatches`), :func:`optimizer_step` averages the gradients before each step,
the divergence checks and the epoch history see values averaged over the processes (so all stop together and rank 0 logs
the global means) and only rank 0 writes partial checkpoints. With one process nothing of that changes a bit.
"""

from __future__ import annotations

import copy
import functools
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from pipeline_lib import distributed, paths
from pipeline_lib.artifacts import load_checkpoint, partial_path, save_checkpoint
from pipeline_lib.batches import shuffled_loader
from pipeline_lib.config import DivergenceParams, SelectionParams, TrainSupervisedParams
from pipeline_lib.errors import PipelineError
from pipeline_lib.metrics import IGNORE_INDEX
from pipeline_lib.runtime import autocast


class Stateful(Protocol):
    """What :class:`Resumable` saves: modules, optimisers, image pools, :class:`LossGrowth`."""

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any, /) -> Any: ...


@dataclass
class TrainResult:
    history: list[dict[str, float]]
    seconds: float
    resumed_from_epoch: int


def check_layers(model: nn.Module, layers: tuple[str, ...], key: str) -> list[str]:
    """``layers`` in the model's forward order; an unknown name is a one-line error naming ``key``."""
    names = list(model.layer_names)  # type: ignore[attr-defined]
    unknown = [n for n in layers if n not in names]
    if unknown:
        raise PipelineError(f"{key}: {unknown[0]!r} is not a layer of this backbone (its layers: {', '.join(names)})")
    return [n for n in names if n in layers]


def check_finite(loss: torch.Tensor, where: str, hint: str) -> None:
    """Stop when ``loss`` (averaged over the processes: one rank's NaN stops them all) is not finite."""
    value = distributed.mean(loss.item())
    if not math.isfinite(value):
        raise PipelineError(f"loss became {value} at {where}: {hint}")


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """Back-propagate ``loss`` and step ``opt``; under torchrun the gradients are first averaged over the
    processes (:func:`pipeline_lib.distributed.average_gradients`), so every process takes the same step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    distributed.average_gradients(opt)
    opt.step()


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor, where: str, hint: str,
            watch: "LossGrowth | None" = None) -> None:
    """One optimiser step on ``loss``; a non-finite loss, or one that ``watch`` finds has run away, stops
    the stage first, naming ``hint`` as the fix."""
    check_finite(loss, where, hint)
    if watch is not None:
        watch.check(loss, where, hint)
    optimizer_step(opt, loss)


#: a watched loss's start is the mean of its first this many values
START_STEPS = 5


class LossGrowth:
    """Stops a run whose watched loss runs away: finite, but more than ``factor`` times its start.

    The start is the mean of the loss's first :data:`START_STEPS` values; each of those is checked against
    the mean of the ones before it, so a loss that explodes within the first steps (Adam at lr 1e6 does at
    step 2) is caught and never becomes part of the start. A start of zero is never exceeded. Non-finite
    values are left to :func:`check_finite`. ``factor`` None switches the test off. Its state is part of a
    resumable checkpoint, so a resumed run keeps its start. Under torchrun it watches the loss averaged over
    the processes: the global batch's, the same on every process, so all of them stop together.
    """

    def __init__(self, factor: float | None, what: str) -> None:
        self.factor = factor
        self.what = what
        self.total = 0.0
        self.seen = 0

    def check(self, loss: torch.Tensor | float, where: str, hint: str) -> None:
        """Raise a one-line :class:`PipelineError` naming ``hint`` when ``loss`` exceeds ``factor`` x the start."""
        if self.factor is None:
            return
        value = distributed.mean(float(loss.item() if isinstance(loss, torch.Tensor) else loss))
        if not math.isfinite(value):
            return
        if self.seen:
            start = self.total / self.seen
            if start > 0 and value > self.factor * start:
                raise PipelineError(f"{self.what} grew from {start:.3g} to {value:.3g} by {where} (more than "
                                    f"divergence.loss_growth = {self.factor:g}x its start): {hint}")
        if self.seen < START_STEPS:
            self.total += value
            self.seen += 1

    def state_dict(self) -> dict[str, float]:
        return {"total": self.total, "seen": float(self.seen)}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        self.total, self.seen = float(state["total"]), int(state["seen"])


def check_chance(history: list[dict[str, float]], num_classes: int | None, steps: int, params: DivergenceParams,
                 what: str, hint: str) -> None:
    """Stop a classification run whose training accuracy (``train_acc`` of each epoch in ``history``) stayed
    within ``params.chance_margin`` of 1 / ``num_classes`` in every epoch, once it has ``params.chance_min_steps``
    optimiser steps or more (``steps``)."""
    if params.chance_margin is None or not num_classes or not history or steps < params.chance_min_steps:
        return
    chance = 1 / num_classes
    accs = [row["train_acc"] for row in history]
    if all(abs(acc - chance) <= params.chance_margin for acc in accs):
        raise PipelineError(f"{what}: training accuracy stayed within divergence.chance_margin = "
                            f"{params.chance_margin:g} of chance ({chance:.3g} for {num_classes} classes) in all "
                            f"{len(accs)} epoch(s), {steps} steps (last {accs[-1]:.3f}): {hint}, or check that the "
                            "labels match the images")


class Resumable:
    """Epoch-level checkpointing of a training loop's whole state.

    Every loop hands it all the modules it trains before its first step, so this is also where, under
    torchrun on CUDA, their batch norms become synchronised (:func:`pipeline_lib.distributed.sync_batchnorm`).
    Every process reads a partial checkpoint (the same file, so all make the same choice); rank 0 alone
    writes or deletes one.
    """

    def __init__(self, out: Path, resume_key: str | None, parts: Mapping[str, Stateful],
                 generators: Mapping[str, torch.Generator]) -> None:
        for part in parts.values():
            if isinstance(part, nn.Module):
                distributed.sync_batchnorm(part)
        self.path = partial_path(Path(out))
        self.key = resume_key
        self.parts = parts
        self.generators = generators
        self.history: list[dict[str, float]] = []
        self.start_epoch = 0
        self._t0 = time.perf_counter()

    def restore(self, desc: str) -> None:
        """Continue from the partial checkpoint if it was made with this ``resume_key`` (the same inputs and
        params) and fits the current parts; else delete it with one log line and start fresh."""
        if not self.path.is_file() or self.key is None:
            return
        try:  # a partial is only a cache: whatever keeps it from being read, it is dropped, never a traceback
            ckpt = load_checkpoint(self.path)
            key = ckpt["meta"].get("resume_key")
        except Exception:  # noqa: BLE001 (torch.load raises many types on a cut or foreign file)
            return self._discard("cannot be read")
        if key != self.key:
            return self._discard("made from other inputs or params")
        saved_parts = {name: copy.deepcopy(part.state_dict()) for name, part in self.parts.items()}
        saved_rng = torch.get_rng_state()
        saved_gens = {name: gen.get_state() for name, gen in self.generators.items()}
        try:
            for name, part in self.parts.items():
                part.load_state_dict(ckpt["state"][name])
            torch.set_rng_state(ckpt["state"]["__torch_rng"])
            for name, gen in self.generators.items():
                gen.set_state(ckpt["state"][f"__gen_{name}"])
            history, start_epoch = list(ckpt["meta"]["history"]), int(ckpt["meta"]["epoch"])
            seconds = float(ckpt["meta"]["seconds"])
        except Exception as err:  # noqa: BLE001 (size mismatches, missing or unexpected keys, other types)
            for name, part in self.parts.items():  # undo what was loaded before the failure
                part.load_state_dict(saved_parts[name])
            torch.set_rng_state(saved_rng)
            for name, gen in self.generators.items():
                gen.set_state(saved_gens[name])
            return self._discard(f"does not fit this model ({_one_line(err)})")
        self.history, self.start_epoch = history, start_epoch
        self._t0 = time.perf_counter() - seconds
        tqdm.write(f"resuming {desc} from epoch {self.start_epoch} ({self.path})")

    def _discard(self, why: str) -> None:
        if distributed.is_main():  # another process may still open it: it then finds it gone, and starts fresh too
            self.path.unlink(missing_ok=True)
        tqdm.write(f"discarding {self.path}: {why}; starting fresh")

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._t0

    def end_epoch(self, epoch: int, row: dict[str, float], every: int, last: bool) -> None:
        """Record epoch ``epoch`` (1-based), its values averaged over the processes, and checkpoint when due
        (never after the last one)."""
        self.history.append({"epoch": epoch, **distributed.mean_values(row), "seconds": self.seconds})
        if self.key is not None and epoch % every == 0 and not last:
            state: dict[str, Any] = {name: part.state_dict() for name, part in self.parts.items()}
            state["__torch_rng"] = torch.get_rng_state()
            state.update({f"__gen_{n}": g.get_state() for n, g in self.generators.items()})
            save_checkpoint(self.path, state, {"resume_key": self.key, "history": self.history,
                                               "epoch": epoch, "seconds": self.seconds})

    def result(self) -> TrainResult:
        return TrainResult(self.history, self.seconds, self.start_epoch)


@dataclass(frozen=True)
class SeriesPlan:
    """Which epochs' weights a run keeps for checkpoint selection (params ``selection``): every ``every``-th epoch
    and the last, thinned evenly to at most ``keep`` (the last always kept)."""

    every: int = 1
    keep: int = 4

    @classmethod
    def of(cls, params: SelectionParams) -> "SeriesPlan":
        """The plan params.yaml's ``selection`` section sets."""
        return cls(params.every, params.keep)

    def epochs(self, total: int) -> tuple[int, ...]:
        """The kept epochs (from 1) of a run of ``total`` epochs."""
        candidates = [e for e in range(1, total + 1) if e % self.every == 0 or e == total]
        if len(candidates) <= self.keep:
            return tuple(candidates)
        if self.keep == 1:
            return (total,)
        picks = sorted({round(i * (len(candidates) - 1) / (self.keep - 1)) for i in range(self.keep)})
        return tuple(candidates[i] for i in picks)


class Series:
    """A run's checkpoint series: the weights of the deployed ``module`` at the epochs the :class:`SeriesPlan`
    keeps, written to ``<series>.partial/`` as training goes (a resumed run keeps the epochs it had, a fresh one
    starts the folder anew) and moved to ``paths.series(out)`` by :func:`pipeline_lib.artifacts.publish_series`
    once the stage has written its final checkpoint."""

    def __init__(self, plan: SeriesPlan, out: Path, module: nn.Module) -> None:
        self.plan, self.module = plan, module
        self.path = partial_path(paths.series(Path(out)))

    @classmethod
    def kept(cls, plan: SeriesPlan | None, out: Path, module: nn.Module) -> "Series | None":
        """The series of ``module`` when the stage asked for one (``plan``), else None."""
        return cls(plan, out, module) if plan is not None else None

    def start(self, resumed_from: int, key: str | None) -> None:
        """Keep only what a run resumed at epoch ``resumed_from`` (0: fresh) with ``key`` had written."""
        if not distributed.is_main():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        for old in self.path.glob("*.pt"):
            try:
                meta = load_checkpoint(old)["meta"]
                stale = meta.get("resume_key") != key or int(meta["epoch"]) > resumed_from or not resumed_from
            except (PipelineError, KeyError, ValueError):
                stale = True
            if stale:
                old.unlink()

    def end_epoch(self, epoch: int, total: int, last: bool, key: str | None) -> None:
        if last or epoch in self.plan.epochs(total):
            state = {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()}
            save_checkpoint(self.path / f"epoch{epoch:04d}.pt", state, {"epoch": epoch, "resume_key": key})


@dataclass(frozen=True)
class At:
    """Where a step is: its epoch and its step within the epoch (both from 0), and the epoch's length."""

    epoch: int
    step: int
    steps: int

    @property
    def where(self) -> str:
        """How error messages name the step: ``epoch 3 step 12`` (both from 1)."""
        return f"epoch {self.epoch + 1} step {self.step + 1}"

    @property
    def iteration(self) -> int:
        """Steps before this one, over the whole run (GAM's schedules count iterations)."""
        return self.epoch * self.steps + self.step


Step = Callable[[Any, At], Mapping[str, float]]


@dataclass
class Loop:
    """What a method hands :func:`fit`: its step, its batches and its schedule.

    ``step(batch, at)`` runs one training step (its optimiser updates, each through :func:`descend`) and returns
    the scalars it logs. :func:`fit` sums them over the epoch, in the order first logged, and the epoch's history
    row is ``summary(sums, steps)``: by default each sum over the epoch's steps (a step that logs nothing for a
    key adds 0 to it). ``batches()`` makes one epoch's batches; an epoch ends after ``steps`` steps or when they
    run out. ``start`` runs at each epoch's start (train modes); ``monitor`` gives the target metric of the
    training curves (never used to select a model); ``stop(row, epoch)`` (epoch from 1) returns why the run ends
    after this epoch, or None; ``postfix`` names the row's values the epoch bar shows.
    """

    desc: str
    epochs: int
    steps: int
    batches: Callable[[], Iterable]
    step: Step
    checkpoint_every: int
    start: Callable[[], Any] | None = None
    summary: Callable[[dict[str, float], int], dict[str, float]] | None = None
    monitor: Callable[[], float] | None = None
    stop: Callable[[dict[str, float], int], str | None] | None = None
    postfix: tuple[str, ...] = ()


def fit(loop: Loop, out: Path, resume_key: str | None, parts: Mapping[str, Stateful],
        generators: Mapping[str, torch.Generator], series: Series | None = None) -> TrainResult:
    """The training loop of every method: epochs of steps, progress bars, the per-epoch history and monitor,
    and resumable checkpoints of ``parts`` and ``generators`` (:class:`Resumable`, keyed by ``resume_key``).

    Divergence checks run inside the steps (:func:`descend`, with the :class:`LossGrowth` watchers the method
    lists in ``parts`` so that a resumed run keeps their starts), so a run stops at the step that diverged.
    A ``series`` keeps the deployed part's weights at the epochs its plan names (checkpoint selection).
    """
    state = Resumable(out, resume_key, parts, generators)
    state.restore(loop.desc)
    if series is not None:
        series.start(state.start_epoch, resume_key)
    elif distributed.is_main():  # a series an earlier run of this stage kept is not this run's
        shutil.rmtree(partial_path(paths.series(Path(out))), ignore_errors=True)
    bar = epoch_bar(state.start_epoch, loop.epochs, loop.desc)
    for epoch in bar:
        if loop.start is not None:
            loop.start()
        sums: dict[str, float] = {}
        steps = 0
        for batch in step_bar(loop.batches(), loop.steps, f"epoch {epoch + 1}"):
            if steps >= loop.steps:
                break
            for key, value in loop.step(batch, At(epoch, steps, loop.steps)).items():
                sums[key] = sums.get(key, 0) + value
            steps += 1
        row = loop.summary(sums, steps) if loop.summary else {k: v / max(steps, 1) for k, v in sums.items()}
        if loop.monitor is not None:  # target metric for the training curves only (never selects a model)
            row["target_metric"] = loop.monitor()
        bar.set_postfix({k: f"{row[k]:.3g}" for k in loop.postfix if k in row})
        reason = loop.stop(row, epoch + 1) if loop.stop is not None else None
        last = reason is not None or epoch + 1 == loop.epochs
        if series is not None:
            series.end_epoch(epoch + 1, loop.epochs, last, resume_key)
        state.end_epoch(epoch + 1, row, loop.checkpoint_every, last=last)
        if reason is not None:
            bar.write(f"{loop.desc}: {reason}")
            break
    return state.result()


def _one_line(err: BaseException, limit: int = 160) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def epoch_bar(start: int, total: int, desc: str) -> tqdm:
    """Progress over epochs; under torchrun shown by rank 0 only (one bar, not one per process)."""
    return tqdm(range(start, total), desc=desc, unit="epoch", initial=start, total=total, dynamic_ncols=True,
                disable=not distributed.is_main())


def step_bar(batches: Iterable, total: int, desc: str) -> tqdm:
    """Progress within an epoch (segmentation epochs take minutes); cleared when the epoch ends."""
    return tqdm(batches, total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True, mininterval=2,
                disable=not distributed.is_main())


def steps_per_epoch(items: int, batch_size: int, max_steps: int | None) -> int:
    """Steps of an epoch that is one pass over ``items``, cut at ``max_steps`` (null: the whole pass)."""
    steps = max(items // batch_size, 1)
    return min(steps, max_steps) if max_steps else steps


def budget_epochs(epochs: int, steps_in_epoch: int, max_steps: int | None) -> int:
    """The epochs a run gets: ``epochs`` (the paper's count), or fewer when a step budget ``max_steps``
    runs out first, rounded up to whole epochs. A small source (USPS, 56 batches) then keeps the
    paper's epochs while a large one (MNIST, 468) is cut: a budget in steps, not passes."""
    if not max_steps:
        return epochs
    return max(1, min(epochs, math.ceil(max_steps / max(steps_in_epoch, 1))))


def fixed_steps(items: int, batch_size: int, steps: int | None) -> int:
    """Steps of an epoch of exactly ``steps`` iterations (null: one pass over ``items``), for stages that
    cycle their data (:func:`pipeline_lib.batches.cycled_pairs`): GAM's "20,000 iterations" are 20 epochs of 1,000
    whatever the source's size."""
    return steps if steps else max(items // batch_size, 1)


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The model's batch-norm layers that keep running statistics."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, batches: Iterable, device: torch.device, max_batches: int,
                        forward: Callable[[torch.Tensor], Any] | None = None) -> int:
    """Re-estimate the running mean and variance of every batch-norm layer of ``model`` from scratch.

    Forward ``max_batches`` batches of ``batches`` (an image tensor, or a tuple whose first item is one)
    through ``forward`` (default: the whole model; pass the forward that training ran, e.g. up to the
    encoder layer) without gradients, batch-norm layers in train mode, with a cumulative average
    (``momentum=None``), so each layer's statistics describe the final net on this data. Layers the pass
    does not reach keep their statistics; weights, momenta and every module's train/eval mode are restored.
    A model without batch norm, or ``max_batches`` 0, is left untouched (and ``batches`` is not read).
    Returns the number of batches used.

    Under torchrun each process passes its shares of the batches. SyncBatchNorm layers (CUDA) gather the
    global batch's statistics themselves; plain ones (CPU) end with the processes' statistics averaged, so
    every process keeps the same (the mean exactly the global one, the variance the mean of the shares').
    """
    layers = batchnorm_layers(model)
    if not layers or max_batches <= 0:
        return 0
    modes = {m: m.training for m in model.modules()}
    momenta = [bn.momentum for bn in layers]
    saved = [(bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()) for bn in layers]
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None
    model.eval()
    for bn in layers:
        bn.train()
    used = 0
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            with autocast(device):
                (forward or model)(x.to(device, non_blocking=True))
            used += 1
            if used >= max_batches:
                break
    finally:
        for bn, momentum in zip(layers, momenta):
            bn.momentum = momentum
        for m, training in modes.items():
            m.train(training)
    for bn, (mean, var, count) in zip(layers, saved):
        if bn.num_batches_tracked.item() == 0:  # not reached (or no data): keep what training left
            bn.running_mean.copy_(mean), bn.running_var.copy_(var), bn.num_batches_tracked.copy_(count)
    distributed.average_([t for bn in layers if not isinstance(bn, nn.SyncBatchNorm)
                          for t in (bn.running_mean, bn.running_var)])
    return used


def build_optimizer(kind: Literal["adam", "sgd"], parameters: Iterable[nn.Parameter], lr: float, *,
                    momentum: float = 0.9, betas: tuple[float, float] = (0.9, 0.999),
                    weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """The one place optimisers are made: Adam (``betas``) or SGD (``momentum``) over the parameters
    of ``parameters`` that require gradients, in the order given."""
    trainable = [p for p in parameters if p.requires_grad]
    if kind == "adam":
        return torch.optim.Adam(trainable, lr=lr, betas=betas, weight_decay=weight_decay)
    if kind == "sgd":
        return torch.optim.SGD(trainable, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r} (adam or sgd)")


def train_supervised(model: nn.Module, dataset: Dataset, params: TrainSupervisedParams, device: torch.device,
                     generator: torch.Generator, out: Path, meta: dict[str, Any], desc: str = "train",
                     hint: str = "lower train_supervised.lr in params.yaml or check the input data",
                     divergence: DivergenceParams = DivergenceParams(),
                     series: SeriesPlan | None = None) -> TrainResult:
    """Train ``model`` with cross-entropy on a dataset of (image, label); resumable via ``<out>.partial``
    (keyed by ``meta["resume_key"]``).

    Labels are class indices (classification) or masks (segmentation), where 255 is not scored.
    Segmentation params may cap the steps per epoch and read frames with DataLoader workers.

    Divergence (``divergence``) raises a one-line :class:`PipelineError` naming ``hint``, before the stage can
    write its checkpoint: a loss above ``loss_growth`` x its start, at any step; and, for classification
    only, a training accuracy within ``chance_margin`` of 1 / classes in every epoch of a long enough run,
    at its end. Segmentation skips the chance test: a collapsed net scores the majority class's pixel
    share, which depends on the dataset, the crops and the ignored pixels, so no fixed chance level fits;
    a diverging segmentation run is caught by the loss test.
    """
    model.to(device)
    opt = build_optimizer(params.optimizer, model.parameters(), params.lr, momentum=params.momentum,
                          weight_decay=params.weight_decay)
    loader = shuffled_loader(dataset, params.batch_size, generator, params.num_workers)
    growth = LossGrowth(divergence.loss_growth, f"{desc}: loss")
    per_epoch = steps_per_epoch(len(dataset), params.batch_size, params.max_steps_per_epoch)
    loop = Loop(desc, budget_epochs(params.epochs, per_epoch, params.max_steps), per_epoch, lambda: loader,
                functools.partial(_supervised_step, model, opt, device, hint, growth), params.checkpoint_every,
                start=model.train, summary=_supervised_row, postfix=("loss", "train_acc"))
    result = fit(loop, out, meta.get("resume_key"), {"model": model, "optimizer": opt, "divergence": growth},
                 {"loader": generator}, Series.kept(series, out, model))
    # the final net's statistics, on training batches (crops and flips as trained; measured to fit full frames)
    recompute_batchnorm(model, loader, device, params.batchnorm_batches)
    if getattr(model, "task", "classification") == "classification":
        steps = per_epoch * len(result.history)
        check_chance(result.history, getattr(model, "num_classes", None), steps, divergence, desc, hint)
    return result


def _supervised_step(model: nn.Module, opt: torch.optim.Optimizer, device: torch.device, hint: str,
                     growth: LossGrowth, batch: tuple[torch.Tensor, torch.Tensor], at: At) -> dict[str, float]:
    """Cross-entropy on one batch of (images, class indices or masks); 255 is not scored."""
    x, y = (t.to(device, non_blocking=True) for t in batch)
    with autocast(device):
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.float(), y, ignore_index=IGNORE_INDEX)
    descend(opt, loss, at.where, hint, watch=growth)
    scored = y != IGNORE_INDEX
    return {"loss_sum": loss.item() * len(y), "items": len(y),
            "correct": ((logits.argmax(1) == y) & scored).sum().item(), "scored": scored.sum().item()}


def _supervised_row(sums: dict[str, float], steps: int) -> dict[str, float]:
    """The epoch's loss per image and accuracy per scored label."""
    return {"loss": sums.get("loss_sum", 0.0) / max(sums.get("items", 0), 1),
            "train_acc": sums.get("correct", 0) / max(sums.get("scored", 0), 1)}
