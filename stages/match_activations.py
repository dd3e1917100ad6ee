"""GAM section 4.2 (eq. 3): adversarially match the chosen layers' activation distributions, with
the weight-drift regulariser ("full") or without it ("noreg")."""

from __future__ import annotations

import argparse

from pipeline_lib import paths
from pipeline_lib.artifacts import save_checkpoint
from pipeline_lib.cli import experiment, finish_training, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import train_set
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.evaluation import experiment_target_monitor
from pipeline_lib.methods.gam import match_activations
from pipeline_lib.methods.gam_spec import gam_model
from pipeline_lib.models import load_task_model
from pipeline_lib.provenance import stage_fingerprint
from pipeline_lib.runtime import resolve_device, seed_everything
from pipeline_lib.training import SeriesPlan, check_layers


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    src, tgt = resolve_domain(params, exp.source), resolve_domain(params, exp.target)
    backbone, cfg = params.backbones[exp.backbone], params.section("gam", exp.backbone).match_activations
    if args.variant == "noreg":
        cfg = cfg.model_copy(update={"weight_reg": 0.0})
    seed_everything(args.seed)
    device = resolve_device(params.device)
    f_s = paths.supervised_model(exp.source, exp.backbone, args.seed)
    source_model, upstream = load_task_model(f_s, backbone)
    init = gam_model(args.experiment, "gaussian", args.seed) if cfg.init == "gaussian" else None
    start = load_task_model(init, backbone)[0] if init else source_model
    key = f"{params.track(exp.backbone).prefix}gam.layers.{exp.backbone}"
    layers = check_layers(source_model, params.section("gam", exp.backbone).layers.get(exp.backbone, ()), key)
    source = train_set(src, backbone, cfg)
    target = train_set(tgt, backbone, cfg, labels=False)
    out = gam_model(args.experiment, args.variant, args.seed)
    meta = {"experiment": args.experiment, "variant": args.variant, "seed": args.seed, "profile": params.profile,
            "gam_params": cfg.model_dump(), "layers": layers, "num_classes": source_model.num_classes}
    monitor = experiment_target_monitor(src, tgt, backbone, params.track(exp.backbone).evaluate,
                                        source_model.num_classes, device)  # curves only
    key = stage_fingerprint(params, exp.backbone, device, [*([init] if init else []), f_s, src.artifact, tgt.artifact],
                            **meta)
    model, result = match_activations(start, source_model, source, target, cfg, layers, device, args.seed, out, key,
                                      desc=f"gam {args.variant} {args.experiment}/seed{args.seed}", monitor=monitor,
                                      divergence=params.divergence, series=SeriesPlan.of(params.selection))
    save_checkpoint(out, model.cpu().state_dict(), {
        **meta, "matchers": model.matched_layers(), "train_seconds": upstream["train_seconds"] + result.seconds,
        "stage_seconds": result.seconds, "device": str(device)})
    finish_training(out, result)
    print(f"matched activations -> {out}: {len(result.history)} epoch(s), {result.seconds:.1f}s")


if __name__ == "__main__":
    parser = stage_parser(__doc__, experiment=True, seed=True, variants=["full", "noreg"])
    raise SystemExit(run_stage(parser, main))
