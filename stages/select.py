"""Score every checkpoint a report row's training kept (all its seeds) with every unsupervised validator, and
with the target-label oracle beside them; write which checkpoint each one picks (docs/selection.md).

The validators see target *training* images only (never their labels), held-out source images with their labels
and source training images; the oracle scores each checkpoint on the target test split and is marked as reading
target labels. ``evaluate`` then scores the checkpoint that ``selection.validator`` picked."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from pipeline_lib import paths, registry
from pipeline_lib.artifacts import write_json
from pipeline_lib.cli import experiment, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import test_set, train_set
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.errors import PipelineError
from pipeline_lib.evaluation import evaluate_classification, evaluate_segmentation
from pipeline_lib.metrics import accuracy, segmentation_scores
from pipeline_lib.runtime import resolve_device
from pipeline_lib.selection import outputs, picks, scores
from pipeline_lib.validators import VALIDATORS


def _sample(data: Dataset, n: int, seed: int) -> Dataset:
    """``n`` items of ``data`` drawn once with ``seed`` (the same for every checkpoint)."""
    if len(data) <= n:  # type: ignore[arg-type]
        return data
    return Subset(data, torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].tolist())  # type: ignore[arg-type]


def _images(data: Dataset, batch_size: int) -> list[torch.Tensor]:
    """The images of ``data`` in batches; whatever else an item holds (a label) is dropped unread."""
    return [batch[0] for batch in DataLoader(data, batch_size=batch_size)]


def _images_and_labels(data: Dataset, batch_size: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The images of a labelled (source) set in batches, and all its labels, in one pass."""
    batches = list(DataLoader(data, batch_size=batch_size))
    return [batch[0] for batch in batches], torch.cat([batch[1] for batch in batches])


def series_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("epoch*.pt"))
    if not files:
        raise PipelineError(f"{folder}: no checkpoint series; rerun the stage that trains {folder.with_suffix('.pt')}")
    return files


def main(args: argparse.Namespace, params: Params) -> None:
    experiment(params, args.experiment)  # a one-line error for an unknown name
    exp, row = registry.Experiment(params, args.experiment), registry.row(args.method)
    if row.model is None:
        raise PipelineError(f"method {args.method} has no model to select")
    backbone, cfg, sel = params.backbones[exp.backbone], params.track(exp.backbone).evaluate, params.selection
    device = resolve_device(params.device)
    src, tgt = resolve_domain(params, exp.source), resolve_domain(params, exp.target)
    segmentation = backbone.task == "segmentation"
    n_target, n_source = (sel.frames, sel.frames) if segmentation else (sel.target_samples, sel.source_samples)
    batch = 1 if segmentation else cfg.batch_size
    target = _images(_sample(train_set(tgt, backbone, labels=False), n_target, 0), batch)  # no target labels
    source_val, source_labels = _images_and_labels(_sample(test_set(src, backbone), n_source, 1), batch)
    source_train = _images(_sample(train_set(src, backbone, labels=False), n_source, 2), batch)
    target_test = test_set(tgt, backbone)  # the oracle's, and only the oracle's
    runs = []
    for seed in exp.row_seeds(args.method):
        checkpoints = []
        for path in series_files(paths.series(row.model.checkpoint(exp, seed))):
            model, meta = registry.load_model(args.method, path, backbone)
            score = scores(outputs(model, target, device), outputs(model, source_val, device), source_labels,
                           outputs(model, source_train, device), seed)
            if segmentation:
                conf, _ = evaluate_segmentation(model, target_test, model.num_classes, device, cfg.batch_size,
                                                cfg.infer_max_width, cfg.num_workers)
                metric = float(segmentation_scores(conf.numpy(), src.eval_classes)["miou"])  # type: ignore[arg-type]
            else:
                conf, _ = evaluate_classification(model, *target_test.tensors, model.num_classes, device,  # type: ignore[attr-defined]
                                                  cfg.batch_size)
                metric = accuracy(conf.numpy())
            checkpoints.append({"file": str(path), "epoch": int(meta["epoch"]), "scores": score,
                                "target_metric": metric})
        runs.append({"seed": seed, "checkpoints": checkpoints, "picks": picks(checkpoints, VALIDATORS)})
        best = {name: checkpoints[i]["epoch"] for name, i in runs[-1]["picks"].items()}
        print(f"{exp.name} {args.method} seed {seed}: {len(checkpoints)} checkpoints; epoch picked by {best}")
    write_json(paths.selection_json(exp.name, args.method), {
        "experiment": exp.name, "method": args.method, "profile": params.profile,
        "metric": "miou" if segmentation else "accuracy",
        "reads_target_labels": {**{name: False for name in VALIDATORS}, "last": False, "oracle": True},
        "samples": {"target_train": sum(len(x) for x in target), "source_val": len(source_labels),
                    "source_train": sum(len(x) for x in source_train)},
        "runs": runs})


if __name__ == "__main__":
    parser = stage_parser(__doc__, experiment=True)
    parser.add_argument("--method", required=True)
    raise SystemExit(run_stage(parser, main))
