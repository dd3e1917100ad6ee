"""Train a task model with labels of one domain: source-only (on the source) or oracle (on the target)."""

from __future__ import annotations

import argparse

from pipeline_lib import paths
from pipeline_lib.artifacts import save_checkpoint
from pipeline_lib.cli import finish_training, params_hash, require, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.tensors import domain_split
from pipeline_lib.models import build_backbone
from pipeline_lib.runtime import resolve_device, seed_everything
from pipeline_lib.training import train_supervised


def main(args: argparse.Namespace, params: Params) -> None:
    require(args.backbone, params.backbones, "backbone")
    backbone = params.backbones[args.backbone]
    out = paths.supervised_model(args.domain, args.backbone, args.seed)
    generator = seed_everything(args.seed)
    device = resolve_device(params.device)
    data, num_classes = domain_split(paths.domain_npz(args.domain), "train", backbone)
    model = build_backbone(backbone, num_classes=num_classes)
    cfg = params.train_supervised
    meta = {"domain": args.domain, "backbone": args.backbone, "seed": args.seed, "profile": params.profile,
            "train_params": cfg.model_dump(), "num_classes": model.num_classes}
    meta["resume_key"] = params_hash(meta)
    result = train_supervised(model, *data.tensors, cfg, device, generator, out, meta,
                              desc=f"{args.domain}/{args.backbone}/seed{args.seed}")
    save_checkpoint(out, model.cpu().state_dict(), {**meta, "train_seconds": result.seconds, "device": str(device)})
    finish_training(out, result)
    last = result.history[-1]
    print(f"trained {out}: loss {last['loss']:.4f}, train acc {last['train_acc']:.4f}, {result.seconds:.1f}s on {device}")


if __name__ == "__main__":
    parser = stage_parser(__doc__, seed=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--backbone", required=True)
    raise SystemExit(run_stage(parser, main))
