"""Evaluate one report row's model (one seed) on the target and source test splits."""

from __future__ import annotations

import argparse

import torch

from pipeline_lib import paths
from pipeline_lib.artifacts import load_checkpoint, load_domain, write_json
from pipeline_lib.cli import require, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.transforms import to_model_tensor
from pipeline_lib.evaluation import evaluate_confusion
from pipeline_lib.metrics import accuracy
from pipeline_lib.models import build_backbone
from pipeline_lib.runtime import resolve_device


def main(args: argparse.Namespace, params: Params) -> None:
    require(args.experiment, params.experiments, "experiment")
    exp = params.experiments[args.experiment]
    require(args.method, exp.methods, f"method of experiment {args.experiment}")
    backbone = params.backbones[exp.backbone]
    device = resolve_device(params.device)
    ckpt = load_checkpoint(paths.method_model(params, args.experiment, args.method, args.seed))
    model = build_backbone(backbone, num_classes=ckpt["meta"]["num_classes"])
    model.load_state_dict(ckpt["state"])
    result = {"experiment": args.experiment, "method": args.method, "seed": args.seed,
              "profile": params.profile, "train_seconds": ckpt["meta"]["train_seconds"],
              "model_code_version": ckpt["meta"]["code_version"]}
    for role in ("target", "source"):
        domain = load_domain(paths.domain_npz(getattr(exp, role)))
        images = to_model_tensor(domain.test.images, backbone.channels, backbone.size)
        conf = evaluate_confusion(model, images, torch.from_numpy(domain.test.labels), len(domain.classes),
                                  device, params.evaluate.batch_size)
        result[role] = {"domain": domain.name, "accuracy": accuracy(conf.numpy()),
                        "confusion": conf.tolist(), "classes": list(domain.classes)}
    write_json(paths.metrics_json(args.experiment, args.method, args.seed), result)
    print(f"{args.experiment} {args.method} seed {args.seed}: target acc {result['target']['accuracy']:.4f}, "
          f"source acc {result['source']['accuracy']:.4f}")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    raise SystemExit(run_stage(parser, main))
