"""CyCADA pixel only: train the task net (initialised from f_S) on the translated source images and labels."""

from __future__ import annotations

import argparse

from pipeline_lib import paths
from pipeline_lib.artifacts import save_checkpoint
from pipeline_lib.cli import experiment, finish_training, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import translated_set
from pipeline_lib.methods.cycada_spec import pixel_model, translated_dataset
from pipeline_lib.models import load_task_model
from pipeline_lib.provenance import stage_fingerprint
from pipeline_lib.runtime import resolve_device, seed_everything
from pipeline_lib.training import SeriesPlan, train_supervised


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    backbone, track = params.backbones[exp.backbone], params.track(exp.backbone)
    cfg = params.section("cycada", exp.backbone).train_task
    generator = seed_everything(args.seed)
    device = resolve_device(params.device)
    translated = translated_dataset(args.experiment, args.seed)
    f_s = paths.supervised_model(exp.source, exp.backbone, args.seed)
    data, manifest = translated_set(translated, backbone, cfg)
    model, source_meta = load_task_model(f_s, backbone)
    out = pixel_model(args.experiment, args.seed)
    meta = {"experiment": args.experiment, "seed": args.seed, "profile": params.profile,
            "train_params": cfg.model_dump(), "num_classes": model.num_classes}
    key = stage_fingerprint(params, exp.backbone, device, [translated, f_s], **meta)
    result = train_supervised(model, data, cfg, device, generator, out, {**meta, "resume_key": key},
                              desc=f"pixel {args.experiment}/seed{args.seed}",
                              hint=f"lower {track.prefix}cycada.train_task.lr in params.yaml",
                              divergence=params.divergence, series=SeriesPlan.of(params.selection))
    upstream = source_meta["train_seconds"] + manifest["cyclegan_seconds"]
    save_checkpoint(out, model.cpu().state_dict(), {**meta, "train_seconds": upstream + result.seconds,
                                                    "stage_seconds": result.seconds, "device": str(device)})
    finish_training(out, result)
    print(f"trained {out} on {len(data)} translated images in {result.seconds:.1f}s")


if __name__ == "__main__":
    raise SystemExit(run_stage(stage_parser(__doc__, experiment=True, seed=True), main))
