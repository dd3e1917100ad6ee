"""Supervised training of a task model (source-only and target-oracle models).

The loop is resumable: every ``checkpoint_every`` epochs it saves model, optimiser,
RNG states and history to ``<out>.partial``; a rerun with the same settings continues
from there. The final artifact is written atomically only when training completes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from pipeline_lib.artifacts import load_checkpoint, save_checkpoint
from pipeline_lib.config import TrainSupervisedParams
from pipeline_lib.errors import PipelineError
from pipeline_lib.runtime import autocast


@dataclass
class TrainResult:
    history: list[dict[str, float]]
    seconds: float
    resumed_from_epoch: int


def make_optimizer(params: TrainSupervisedParams, model: nn.Module) -> torch.optim.Optimizer:
    if params.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=params.lr, momentum=params.momentum,
                           weight_decay=params.weight_decay)


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def check_finite(loss: torch.Tensor, where: str, hint: str) -> None:
    if not torch.isfinite(loss):
        raise PipelineError(f"loss became {loss.item()} at {where}: {hint}")


def train_supervised(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                     params: TrainSupervisedParams, device: torch.device, generator: torch.Generator,
                     out: Path, meta: dict[str, Any], desc: str = "train") -> TrainResult:
    """Train ``model`` with cross-entropy on (images, labels); resumable via ``<out>.partial``."""
    model.to(device)
    opt = make_optimizer(params, model)
    loader = DataLoader(TensorDataset(images, labels), batch_size=params.batch_size, shuffle=True,
                        generator=generator, drop_last=len(labels) > params.batch_size)
    history: list[dict[str, float]] = []
    start_epoch, elapsed = 0, 0.0
    partial = partial_path(out)
    if partial.is_file():
        ckpt = load_checkpoint(partial)
        if ckpt["meta"].get("resume_key") == meta.get("resume_key"):
            model.load_state_dict(ckpt["state"]["model"])
            opt.load_state_dict(ckpt["state"]["optimizer"])
            torch.set_rng_state(ckpt["state"]["torch_rng"])
            generator.set_state(ckpt["state"]["loader_rng"])
            history, start_epoch = ckpt["meta"]["history"], ckpt["meta"]["epoch"]
            elapsed = ckpt["meta"]["seconds"]
            tqdm.write(f"resuming {desc} from epoch {start_epoch} ({partial})")
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.perf_counter() - elapsed
    bar = tqdm(range(start_epoch, params.epochs), desc=desc, unit="epoch", initial=start_epoch,
               total=params.epochs, dynamic_ncols=True)
    for epoch in bar:
        model.train()
        total, correct, loss_sum = 0, 0, 0.0
        for step, (x, y) in enumerate(loader):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast(device):
                logits = model(x)
                loss = loss_fn(logits.float(), y)
            check_finite(loss, f"epoch {epoch + 1} step {step + 1}",
                         "lower train_supervised.lr in params.yaml or check the input data")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            total += len(y)
        row = {"epoch": epoch + 1, "loss": loss_sum / total, "train_acc": correct / total,
               "seconds": time.perf_counter() - t0}
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['train_acc']:.3f}")
        if (epoch + 1) % params.checkpoint_every == 0 and epoch + 1 < params.epochs:
            save_checkpoint(partial, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                      "torch_rng": torch.get_rng_state(), "loader_rng": generator.get_state()},
                            {**meta, "history": history, "epoch": epoch + 1, "seconds": row["seconds"]})
    return TrainResult(history=history, seconds=time.perf_counter() - t0, resumed_from_epoch=start_epoch)
