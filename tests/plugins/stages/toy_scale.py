"""The toy plugin's stage: the experiment's source model with its logits layer scaled by ``toy.scale``."""

from __future__ import annotations

import argparse

from pipeline_lib import paths
from pipeline_lib.artifacts import save_checkpoint
from pipeline_lib.cli import experiment, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.methods.toy import scale_logits
from pipeline_lib.methods.toy_spec import toy_model
from pipeline_lib.models import load_task_model


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    model, upstream = load_task_model(paths.supervised_model(exp.source, exp.backbone, args.seed),
                                      params.backbones[exp.backbone])
    scale = params.section("toy", exp.backbone).scale
    out = toy_model(args.experiment, args.seed)
    save_checkpoint(out, scale_logits(model, scale).state_dict(), {
        "experiment": args.experiment, "seed": args.seed, "profile": params.profile, "num_classes": model.num_classes,
        "train_seconds": upstream["train_seconds"], "settings": f"logits scaled by {scale:g}"})
    print(f"scaled the logits by {scale:g} -> {out}")


if __name__ == "__main__":
    raise SystemExit(run_stage(stage_parser(__doc__, experiment=True, seed=True), main))
