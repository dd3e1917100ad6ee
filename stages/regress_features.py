"""Feature-map regression, section 3.1: finetune H2 (from H1) on pairs (X1, X2 = T(X1)) so that its feature maps of
X2 match H1's of X1 at one post-pooling layer (pool<k>) or all of them (inc: W_inc, dec: W_dec); no D2 labels."""

from __future__ import annotations

import argparse

from pipeline_lib.artifacts import save_checkpoint
from pipeline_lib.cli import experiment, finish_training, run_stage, stage_parser
from pipeline_lib.config import FrameParams, Params
from pipeline_lib.domains.loading import train_set
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.evaluation import experiment_target_monitor
from pipeline_lib.methods.fmr import PairedSet, regress_features
from pipeline_lib.methods.fmr_params import variant_weights
from pipeline_lib.methods.fmr_spec import VARIANTS, fmr_model, layers, layers_key
from pipeline_lib.models import load_task_model
from pipeline_lib.provenance import stage_fingerprint
from pipeline_lib.registry import Experiment
from pipeline_lib.runtime import resolve_device, seed_everything
from pipeline_lib.training import SeriesPlan, check_layers


def main(args: argparse.Namespace, params: Params) -> None:
    spec = experiment(params, args.experiment)
    exp = Experiment(params, args.experiment)
    src, tgt = resolve_domain(params, spec.source), resolve_domain(params, spec.target)
    backbone, cfg = params.backbones[spec.backbone], params.section("fmr", spec.backbone).regress
    seed_everything(args.seed)
    device = resolve_device(params.device)
    h1_path = exp.source_model(args.seed)
    h1, upstream = load_task_model(h1_path, backbone)
    order = check_layers(h1, layers(exp), layers_key(exp))
    weights = variant_weights(order, args.variant, cfg.weights_inc)
    # unaugmented pairs: a segmentation batch is cropped and flipped alike on both sides in the loop
    pairs = PairedSet(train_set(src, backbone), train_set(tgt, backbone, labels=False))
    out = fmr_model(args.experiment, args.variant, args.seed)
    meta = {"experiment": args.experiment, "variant": args.variant, "seed": args.seed, "profile": params.profile,
            "fmr_params": cfg.model_dump(), "weights": weights, "num_classes": h1.num_classes}
    monitor = experiment_target_monitor(src, tgt, backbone, params.track(spec.backbone).evaluate, h1.num_classes,
                                        device)  # curves only
    key = stage_fingerprint(params, spec.backbone, device, [h1_path, src.artifact, tgt.artifact], **meta)
    crop = cfg.crop if isinstance(cfg, FrameParams) else None
    flip = cfg.flip if isinstance(cfg, FrameParams) else False
    model, result = regress_features(h1, pairs, weights, cfg, device, args.seed, out, key,
                                     desc=f"fmr {args.variant} {args.experiment}/seed{args.seed}", crop=crop,
                                     flip=flip, monitor=monitor, divergence=params.divergence,
                                     series=SeriesPlan.of(params.selection))
    save_checkpoint(out, model.cpu().state_dict(), {
        **meta, "train_seconds": upstream["train_seconds"] + result.seconds, "stage_seconds": result.seconds,
        "device": str(device), "settings": "regressed: " + ", ".join(f"{k} (w {w:.2g})" for k, w in weights.items())})
    finish_training(out, result)
    print(f"regressed {', '.join(weights)} -> {out}: loss {result.history[-1]['loss']:.4g}, {result.seconds:.1f}s")


if __name__ == "__main__":
    parser = stage_parser(__doc__, experiment=True, seed=True, variants=VARIANTS.values())
    raise SystemExit(run_stage(parser, main))
