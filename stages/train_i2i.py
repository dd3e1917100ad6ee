"""I2IAdapt (Murez et al., CVPR 2018): train the shared encoder, classifier, decoders and critics on the loss
terms a named lambda set switches on (params ``[segmentation.]i2i.sets``); draws translation examples."""

from __future__ import annotations

import argparse

from pipeline_lib.artifacts import load_checkpoint, save_checkpoint
from pipeline_lib.cli import experiment, finish_training, require, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import num_classes, sample_images, train_set
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.domains.transforms import to_uint8_images
from pipeline_lib.errors import PipelineError
from pipeline_lib.evaluation import experiment_target_monitor
from pipeline_lib.methods.i2i import train_i2i, translations
from pipeline_lib.methods.i2i_spec import (i2i_model, init_problem, input_update, settings, train_fields,
                                           translation_png)
from pipeline_lib.models import build_backbone
from pipeline_lib.models.i2i import InputAdapter
from pipeline_lib.plots import image_rows
from pipeline_lib.provenance import stage_fingerprint
from pipeline_lib.registry import Experiment
from pipeline_lib.runtime import resolve_device, seed_everything
from pipeline_lib.training import SeriesPlan


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    src, tgt = resolve_domain(params, exp.source), resolve_domain(params, exp.target)
    backbone, cfg = params.backbones[exp.backbone], params.section("i2i", exp.backbone)
    require(args.set, cfg.sets, "i2i lambda set")
    weights = cfg.weights(args.set)
    seed_everything(args.seed)
    device = resolve_device(params.device)
    update = input_update(cfg, backbone)
    inner = build_backbone(backbone.model_copy(update=update), num_classes=num_classes(src))
    if cfg.init == "source_only":
        spec = Experiment(params, args.experiment)  # the declaration's key and dependency
        problem = init_problem(cfg, backbone, spec.key("i2i"), exp.backbone)
        if problem:
            raise PipelineError(problem)
        inner.load_state_dict(load_checkpoint(spec.source_model(args.seed))["state"])
    adapter = InputAdapter(inner, size=cfg.size if update else None, grey=cfg.grey and bool(update), scale=cfg.scale)
    source = train_set(src, backbone, cfg)
    target = train_set(tgt, backbone, cfg, labels=False)
    out = i2i_model(args.experiment, args.set, args.seed)
    meta = {"experiment": args.experiment, "set": args.set, "seed": args.seed, "profile": params.profile,
            "i2i_params": cfg.model_dump(include=set(train_fields(cfg))),
            "weights": weights, "num_classes": inner.num_classes, "backbone_update": update,
            "input": {"size": adapter.size, "grey": adapter.grey, "scale": adapter.scale},
            "settings": settings(cfg, args.set)}
    monitor = experiment_target_monitor(src, tgt, backbone, params.track(exp.backbone).evaluate, inner.num_classes,
                                        device)  # curves only
    key = stage_fingerprint(params, exp.backbone, device, [src.artifact, tgt.artifact], **meta)
    nets, result = train_i2i(inner, adapter, source, target, cfg, weights, device, args.seed, out, key,
                             desc=f"i2i {args.set} {args.experiment}/seed{args.seed}", monitor=monitor,
                             divergence=params.divergence, series=SeriesPlan.of(params.selection))
    save_checkpoint(out, inner.cpu().state_dict(), {**meta, "train_seconds": result.seconds,
                                                    "stage_seconds": result.seconds, "device": str(device)})
    finish_training(out, result)
    nets.cpu()  # a set without decoders draws its test inputs only
    x = adapter.prepare(sample_images(src, backbone, 10, cfg.max_width))
    y = adapter.prepare(sample_images(tgt, backbone, 10, cfg.max_width))
    rows = [(name, to_uint8_images(images)) for name, images in translations(nets, x, y)]
    image_rows(rows, translation_png(args.experiment, args.set, args.seed),
               f"{args.experiment}: I2I {args.set}, seed {args.seed} (test images)")
    print(f"i2i {args.set} -> {out}: {len(result.history)} epoch(s), {result.seconds:.1f}s")


if __name__ == "__main__":
    parser = stage_parser(__doc__, experiment=True, seed=True)
    parser.add_argument("--set", required=True, help="a lambda set of [segmentation.]i2i.sets")
    raise SystemExit(run_stage(parser, main))
