"""CyCADA feature level (ADDA): adapt the encoder of f_S on raw source ("feat") or of the pixel-only
model on translated source ("pixel_feat") to the unlabelled target; "feat_reg" adds GAM's
weight-drift regulariser to "feat" (GAM Table 1: ADDA + weight regulariser)."""

from __future__ import annotations

import argparse

from pipeline_lib import paths
from pipeline_lib.artifacts import save_checkpoint
from pipeline_lib.cli import experiment, finish_training, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import train_set, translated_set
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.evaluation import experiment_target_monitor
from pipeline_lib.methods.adda import adapt_features
from pipeline_lib.methods.adda_stage import adapted_model
from pipeline_lib.methods.cycada_spec import pixel_model, translated_dataset
from pipeline_lib.models import load_task_model
from pipeline_lib.provenance import stage_fingerprint
from pipeline_lib.runtime import resolve_device, seed_everything
from pipeline_lib.training import SeriesPlan


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    src, tgt = resolve_domain(params, exp.source), resolve_domain(params, exp.target)
    track = params.track(exp.backbone)
    backbone, cfg = params.backbones[exp.backbone], params.section("cycada", exp.backbone).adapt_features
    if args.variant == "feat_reg":  # GAM Table 1's "ADDA + weight regulariser" row
        gam = params.section("gam", exp.backbone)
        cfg = cfg.model_copy(update={"weight_reg": gam.adda_weight_reg,
                                     "drift_reduction": gam.match_activations.drift_reduction})
    seed_everything(args.seed)
    device = resolve_device(params.device)
    if args.variant in ("feat", "feat_reg"):
        model_path, source_data = paths.supervised_model(exp.source, exp.backbone, args.seed), src.artifact
        source = train_set(src, backbone, cfg)
    else:
        model_path = pixel_model(args.experiment, args.seed)
        source_data = translated_dataset(args.experiment, args.seed)
        source, _ = translated_set(source_data, backbone, cfg)
    target = train_set(tgt, backbone, cfg, labels=False)
    model, upstream = load_task_model(model_path, backbone)
    out = adapted_model(args.experiment, args.variant, args.seed)
    meta = {"experiment": args.experiment, "variant": args.variant, "seed": args.seed, "profile": params.profile,
            "adapt_params": cfg.model_dump(), "num_classes": model.num_classes}
    monitor = experiment_target_monitor(src, tgt, backbone, track.evaluate, model.num_classes, device)  # curves only
    key = stage_fingerprint(params, exp.backbone, device, [model_path, source_data, tgt.artifact], **meta)
    adapted, result = adapt_features(model, source, target, cfg, device, args.seed, out, key,
                                     desc=f"{args.variant} {args.experiment}/seed{args.seed}", monitor=monitor,
                                     divergence=params.divergence, series=SeriesPlan.of(params.selection))
    save_checkpoint(out, adapted.cpu().state_dict(), {
        **meta, "train_seconds": upstream["train_seconds"] + result.seconds, "stage_seconds": result.seconds,
        "epochs_run": len(result.history), "device": str(device)})
    finish_training(out, result)
    print(f"adapted {out}: {len(result.history)} epoch(s), {result.seconds:.1f}s")


if __name__ == "__main__":
    parser = stage_parser(__doc__, experiment=True, seed=True, variants=["feat", "pixel_feat", "feat_reg"])
    raise SystemExit(run_stage(parser, main))
