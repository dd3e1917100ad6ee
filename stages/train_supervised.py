"""Train a task model with labels of one domain: source-only (on the source) or oracle (on the target)."""

from __future__ import annotations

import argparse

from pipeline_lib import paths
from pipeline_lib.artifacts import save_checkpoint
from pipeline_lib.cli import finish_training, require, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import num_classes, train_set
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.models import build_backbone
from pipeline_lib.provenance import stage_fingerprint
from pipeline_lib.runtime import resolve_device, seed_everything
from pipeline_lib.training import train_supervised


def main(args: argparse.Namespace, params: Params) -> None:
    require(args.backbone, params.backbones, "backbone")
    require(args.domain, params.known_domains(), "domain")
    domain = resolve_domain(params, args.domain)
    backbone, cfg = params.backbones[args.backbone], params.track(args.backbone).train_supervised
    out = paths.supervised_model(args.domain, args.backbone, args.seed)
    generator = seed_everything(args.seed)
    device = resolve_device(params.device)
    data = train_set(domain, backbone, cfg)
    model = build_backbone(backbone, num_classes=num_classes(domain))
    meta = {"domain": args.domain, "backbone": args.backbone, "seed": args.seed, "profile": params.profile,
            "train_params": cfg.model_dump(), "num_classes": model.num_classes}
    meta["resume_key"] = stage_fingerprint(params, args.backbone, device, [domain.artifact], **meta)
    result = train_supervised(model, data, cfg, device, generator, out, meta,
                              desc=f"{args.domain}/{args.backbone}/seed{args.seed}",
                              hint=f"lower {params.track(args.backbone).prefix}train_supervised.lr in params.yaml",
                              divergence=params.divergence)
    save_checkpoint(out, model.cpu().state_dict(), {**meta, "train_seconds": result.seconds, "device": str(device)})
    finish_training(out, result)
    last = result.history[-1]
    print(f"trained {out}: loss {last['loss']:.4f}, train acc {last['train_acc']:.4f}, "
          f"{result.seconds:.1f}s on {device}")


if __name__ == "__main__":
    parser = stage_parser(__doc__, seed=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--backbone", required=True)
    raise SystemExit(run_stage(parser, main))
