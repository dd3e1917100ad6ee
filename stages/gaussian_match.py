"""GAM section 4.1: match the per-channel mean and std of the source model's chosen layers on target
data to the source statistics, layer by layer ("i.i.d. Gaussian matching"); and the Source-or-Not
picture of section 5.1 for the source model."""

from __future__ import annotations

import argparse

from pipeline_lib import paths
from pipeline_lib.artifacts import save_checkpoint
from pipeline_lib.cli import experiment, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import train_set
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.methods import gam
from pipeline_lib.methods.gam import gaussian_match
from pipeline_lib.methods.gam_spec import gam_model, source_or_not_png
from pipeline_lib.plots import source_or_not
from pipeline_lib.models import load_task_model
from pipeline_lib.runtime import resolve_device, seed_everything
from pipeline_lib.training import check_layers


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    src, tgt = resolve_domain(params, exp.source), resolve_domain(params, exp.target)
    backbone, cfg = params.backbones[exp.backbone], params.section("gam", exp.backbone).gaussian_match
    seed_everything(args.seed)
    device = resolve_device(params.device)
    model, upstream = load_task_model(paths.supervised_model(exp.source, exp.backbone, args.seed), backbone)
    key = f"{params.track(exp.backbone).prefix}gam.layers.{exp.backbone}"
    layers = check_layers(model, params.section("gam", exp.backbone).layers.get(exp.backbone, ()), key)
    source = train_set(src, backbone)  # full frames, unaugmented
    target = train_set(tgt, backbone, labels=False)
    matched, log = gaussian_match(model, source, target, layers, device, cfg.batch_size, cfg.max_batches)
    out = gam_model(args.experiment, "gaussian", args.seed)
    save_checkpoint(out, matched.cpu().state_dict(), {
        "experiment": args.experiment, "seed": args.seed, "profile": params.profile, "num_classes": model.num_classes,
        "matchers": matched.matched_layers(), "layers": layers, "log": log,
        "train_seconds": upstream["train_seconds"], "device": str(device)})
    source_or_not(gam.source_or_not(model, source, target, device, args.seed), source_or_not_png(
        args.experiment, args.seed), f"Source or not? {exp.source} (orange) vs {exp.source} / {exp.target} (blue), "
        f"source model, seed {args.seed}")
    for row in log:
        print(f"{row['layer']}: mean |mu_s - mu_t| {row['mean_gap_before']:.3g} -> 0, "
              f"{'folded into its weights' if row['folded'] else 'explicit per-channel affine'}")
    print(f"matched {len(layers)} layer(s) -> {out}")


if __name__ == "__main__":
    raise SystemExit(run_stage(stage_parser(__doc__, experiment=True, seed=True), main))
