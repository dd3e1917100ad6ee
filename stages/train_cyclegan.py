"""CyCADA pixel level: train G_S->T, G_T->S, D_S, D_T with the semantic loss of the frozen source model."""

from __future__ import annotations

import argparse

from pipeline_lib import paths
from pipeline_lib.artifacts import save_checkpoint
from pipeline_lib.cli import experiment, finish_training, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import train_set
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.methods.cycada import CycleGAN, train_cyclegan
from pipeline_lib.methods.cycada_spec import cyclegan_model
from pipeline_lib.models import load_task_model
from pipeline_lib.provenance import stage_fingerprint
from pipeline_lib.runtime import resolve_device, seed_everything


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    src, tgt = resolve_domain(params, exp.source), resolve_domain(params, exp.target)
    backbone, cfg = params.backbones[exp.backbone], params.section("cycada", exp.backbone).cyclegan
    seed_everything(args.seed)
    device = resolve_device(params.device)
    source = train_set(src, backbone, cfg)
    target = train_set(tgt, backbone, cfg, labels=False)
    f_s = paths.supervised_model(exp.source, exp.backbone, args.seed)
    source_model, _ = load_task_model(f_s, backbone)
    net = CycleGAN.build(backbone.channels, cfg)
    out = cyclegan_model(args.experiment, args.seed)
    meta = {"experiment": args.experiment, "seed": args.seed, "profile": params.profile,
            "channels": backbone.channels, "cyclegan_params": cfg.model_dump()}
    key = stage_fingerprint(params, exp.backbone, device, [src.artifact, tgt.artifact, f_s], **meta)
    result = train_cyclegan(net, source_model, source, target, cfg, device, args.seed, out, key,
                            desc=f"cyclegan {args.experiment}/seed{args.seed}", divergence=params.divergence)
    save_checkpoint(out, net.state_dict(), {**meta, "train_seconds": result.seconds, "device": str(device)})
    finish_training(out, result)
    print(f"trained {out} in {result.seconds:.1f}s on {device}: " + ", ".join(
        f"{k} {v:.3f}" for k, v in result.history[-1].items() if k.startswith("loss")))


if __name__ == "__main__":
    raise SystemExit(run_stage(stage_parser(__doc__, experiment=True, seed=True), main))
