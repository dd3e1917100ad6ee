"""Evaluate one report row's model (one seed) on the target and source test splits.

The row's checkpoint and how to load it come from its method's declaration (the registry); for a row whose
training kept a checkpoint series, the one ``selection.validator`` picked (``select``). Beside the
metrics, a few target test images with their predictions are kept for the report's picture grid."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pipeline_lib import paths, registry
from pipeline_lib.artifacts import atomic_path, read_json, write_json
from pipeline_lib.cli import experiment, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import test_set
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.errors import PipelineError
from pipeline_lib.evaluation import evaluate_classification, evaluate_segmentation
from pipeline_lib.metrics import accuracy, segmentation_scores
from pipeline_lib.runtime import resolve_device


def chosen_checkpoint(experiment: str, method: str, seed: int, validator: str) -> tuple[Path, dict[str, object]]:
    """The checkpoint ``validator`` picked for a seed (``select``'s output), with what the metrics record of it."""
    selection = read_json(paths.selection_json(experiment, method))
    run = next((r for r in selection["runs"] if r["seed"] == seed), None)
    if run is None or validator not in run["picks"]:
        raise PipelineError(f"{paths.selection_json(experiment, method)}: no choice by {validator} for seed {seed}; "
                            "rerun its select stage")
    chosen = run["checkpoints"][run["picks"][validator]]
    return Path(chosen["file"]), {"selected_by": validator, "selected_epoch": chosen["epoch"],
                                  "epochs_kept": [c["epoch"] for c in run["checkpoints"]]}


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    row = registry.row(args.method)
    if row.model is None:
        raise PipelineError(f"method {args.method} has no model to evaluate (its report row has its own stage)")
    backbone, cfg = params.backbones[exp.backbone], params.track(exp.backbone).evaluate
    device = resolve_device(params.device)
    spec = registry.Experiment(params, args.experiment)
    checkpoint, picked = row.model.checkpoint(spec, args.seed), {}
    if row.model.series:  # the checkpoint selection.validator picked from the series the training kept
        checkpoint, picked = chosen_checkpoint(args.experiment, args.method, args.seed, params.selection.validator)
    model, meta = registry.load_model(args.method, checkpoint, backbone)
    result = {"experiment": args.experiment, "method": args.method, "seed": args.seed, "profile": params.profile,
              "train_seconds": meta["train_seconds"], "model_code_version": meta["code_version"], **picked,
              **({"settings": meta["settings"]} if "settings" in meta else {})}  # a training stage's note on its run
    for role in ("target", "source"):
        domain = getattr(exp, role)
        data = test_set(resolve_domain(params, domain), backbone)
        preview = cfg.preview_frames if role == "target" else 0
        if backbone.task == "classification":
            conf, shown = evaluate_classification(model, *data.tensors, model.num_classes, device, cfg.batch_size,
                                                  preview)
            result[role] = {"domain": domain, "accuracy": accuracy(conf.numpy()), "confusion": conf.tolist()}
        else:
            src = resolve_domain(params, exp.source)
            classes, eval_classes = src.classes, src.eval_classes  # e.g. SYNTHIA scores 16 classes
            conf, shown = evaluate_segmentation(model, data, model.num_classes, device,
                                                cfg.batch_size, cfg.infer_max_width, cfg.num_workers, preview)
            result[role] = {"domain": domain, "classes": list(classes), "eval_classes": list(eval_classes),
                            **segmentation_scores(conf.numpy(), eval_classes), "confusion": conf.tolist()}
        if role == "target":
            previewed = shown
    # both outputs once both passes are done, the metrics last: a failure in either pass leaves both as they were
    with atomic_path(paths.predictions_preview(args.experiment, args.method, args.seed)) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **previewed)
    write_json(paths.metrics_json(args.experiment, args.method, args.seed), result)
    key = "accuracy" if backbone.task == "classification" else "miou"
    print(f"{args.experiment} {args.method} seed {args.seed}: target {key} {result['target'][key]:.4f}, "
          f"source {key} {result['source'][key]:.4f}")


if __name__ == "__main__":
    parser = stage_parser(__doc__, experiment=True, seed=True)
    parser.add_argument("--method", required=True)
    raise SystemExit(run_stage(parser, main))
