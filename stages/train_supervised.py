"""Train a task model with labels of one domain: source-only (on the source) or oracle (on the target)."""

from __future__ import annotations

import argparse

import pandas as pd
import torch

from pipeline_lib import paths
from pipeline_lib.artifacts import atomic_path, load_domain, save_checkpoint
from pipeline_lib.cli import params_hash, require, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.transforms import to_model_tensor
from pipeline_lib.models import build_backbone
from pipeline_lib.runtime import resolve_device, seed_everything
from pipeline_lib.training import partial_path, train_supervised


def main(args: argparse.Namespace, params: Params) -> None:
    require(args.backbone, params.backbones, "backbone")
    backbone = params.backbones[args.backbone]
    domain = load_domain(paths.domain_npz(args.domain))
    out = paths.supervised_model(args.domain, args.backbone, args.seed)
    generator = seed_everything(args.seed)
    device = resolve_device(params.device)
    images = to_model_tensor(domain.train.images, backbone.channels, backbone.size)
    labels = torch.from_numpy(domain.train.labels)
    model = build_backbone(backbone, num_classes=len(domain.classes))
    cfg = params.train_supervised
    meta = {"domain": args.domain, "backbone": args.backbone, "backbone_params": backbone.model_dump(),
            "seed": args.seed, "profile": params.profile, "train_params": cfg.model_dump(),
            "num_classes": len(domain.classes)}
    meta["resume_key"] = params_hash(meta)
    result = train_supervised(model, images, labels, cfg, device, generator, out, meta,
                              desc=f"{args.domain}/{args.backbone}/seed{args.seed}")
    model.cpu()
    save_checkpoint(out, model.state_dict(), {**meta, "train_seconds": result.seconds, "device": str(device)})
    with atomic_path(paths.supervised_history(args.domain, args.backbone, args.seed)) as tmp:
        pd.DataFrame(result.history).to_csv(tmp, index=False)
    partial_path(out).unlink(missing_ok=True)
    last = result.history[-1]
    print(f"trained {out}: loss {last['loss']:.4f}, train acc {last['train_acc']:.4f}, {result.seconds:.1f}s on {device}")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--backbone", required=True)
    parser.add_argument("--seed", type=int, required=True)
    raise SystemExit(run_stage(parser, main))
