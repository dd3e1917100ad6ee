"""Evaluate one report row's model (one seed) on the target and source test splits."""

from __future__ import annotations

import argparse

from pipeline_lib import paths
from pipeline_lib.artifacts import write_json
from pipeline_lib.cli import experiment, require, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.tensors import domain_split
from pipeline_lib.evaluation import evaluate_confusion
from pipeline_lib.metrics import accuracy
from pipeline_lib.models import load_task_model
from pipeline_lib.runtime import resolve_device


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    require(args.method, exp.methods, f"method of experiment {args.experiment}")
    backbone = params.backbones[exp.backbone]
    device = resolve_device(params.device)
    model, meta = load_task_model(paths.method_model(params, args.experiment, args.method, args.seed), backbone)
    result = {"experiment": args.experiment, "method": args.method, "seed": args.seed, "profile": params.profile,
              "train_seconds": meta["train_seconds"], "model_code_version": meta["code_version"]}
    for role in ("target", "source"):
        domain = getattr(exp, role)
        data, num_classes = domain_split(paths.domain_npz(domain), "test", backbone)
        conf = evaluate_confusion(model, *data.tensors, num_classes, device, params.evaluate.batch_size)
        result[role] = {"domain": domain, "accuracy": accuracy(conf.numpy()), "confusion": conf.tolist()}
    write_json(paths.metrics_json(args.experiment, args.method, args.seed), result)
    print(f"{args.experiment} {args.method} seed {args.seed}: target acc {result['target']['accuracy']:.4f}, "
          f"source acc {result['source']['accuracy']:.4f}")


if __name__ == "__main__":
    parser = stage_parser(__doc__, experiment=True, seed=True)
    parser.add_argument("--method", required=True)
    raise SystemExit(run_stage(parser, main))
