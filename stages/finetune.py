"""Feature-map regression's baseline B2 (section 3.2): H1 finetuned on D2 with D2's labels."""

from __future__ import annotations

import argparse

from pipeline_lib.artifacts import save_checkpoint
from pipeline_lib.cli import experiment, finish_training, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import train_set
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.methods.fmr_spec import fmr_model
from pipeline_lib.models import load_task_model
from pipeline_lib.provenance import stage_fingerprint
from pipeline_lib.registry import Experiment
from pipeline_lib.runtime import resolve_device, seed_everything
from pipeline_lib.training import train_supervised


def main(args: argparse.Namespace, params: Params) -> None:
    experiment(params, args.experiment)  # an unknown name stops here, with one line
    exp = Experiment(params, args.experiment)
    tgt = resolve_domain(params, exp.target)
    backbone, cfg = params.backbones[exp.backbone], params.section("fmr", exp.backbone).finetune
    generator = seed_everything(args.seed)
    device = resolve_device(params.device)
    h1_path = exp.source_model(args.seed)
    model, upstream = load_task_model(h1_path, backbone)
    out = fmr_model(args.experiment, "finetune", args.seed)
    meta = {"experiment": args.experiment, "variant": "finetune", "seed": args.seed, "profile": params.profile,
            "train_params": cfg.model_dump(), "num_classes": model.num_classes}
    meta["resume_key"] = stage_fingerprint(params, exp.backbone, device, [h1_path, tgt.artifact], **meta)
    result = train_supervised(model, train_set(tgt, backbone, cfg), cfg, device, generator, out, meta,
                              desc=f"B2 finetune {args.experiment}/seed{args.seed}",
                              hint=f"lower {exp.key('fmr.finetune.lr')} in params.yaml", divergence=params.divergence)
    save_checkpoint(out, model.cpu().state_dict(), {**meta, "train_seconds": upstream["train_seconds"] + result.seconds,
                                                    "stage_seconds": result.seconds, "device": str(device)})
    finish_training(out, result)
    print(f"finetuned {h1_path} on {exp.target} -> {out}: train acc {result.history[-1]['train_acc']:.4f}, "
          f"{result.seconds:.1f}s")


if __name__ == "__main__":
    raise SystemExit(run_stage(stage_parser(__doc__, experiment=True, seed=True), main))
