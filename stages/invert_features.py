"""Feature-map regression, section 3.3: D1 test images as H1 and as H2 see them (feature inversion from white
noise with content and Gram style losses at the regressed layers), beside the images and their shifted pairs."""

from __future__ import annotations

import argparse

from pipeline_lib.cli import experiment, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import sample_images
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.domains.transforms import to_uint8_images
from pipeline_lib.methods.fmr import invert_features
from pipeline_lib.methods.fmr_spec import fmr_model, inversion_png, inversion_variant, layers
from pipeline_lib.models import load_task_model
from pipeline_lib.plots import image_rows
from pipeline_lib.registry import Experiment
from pipeline_lib.runtime import resolve_device, seed_everything


def main(args: argparse.Namespace, params: Params) -> None:
    spec = experiment(params, args.experiment)
    exp = Experiment(params, args.experiment)
    cfg = params.section("fmr", spec.backbone).inversion
    backbone = params.backbones[spec.backbone]
    seed = exp.seeds[0]
    seed_everything(seed)
    device = resolve_device(params.device)
    src, tgt = resolve_domain(params, spec.source), resolve_domain(params, spec.target)
    x1 = sample_images(src, backbone, cfg.images)
    x2 = sample_images(tgt, backbone, cfg.images)
    variant = inversion_variant(exp)
    rows = [(f"X1 ({spec.source})", to_uint8_images(x1)), (f"X2 = T(X1) ({spec.target})", to_uint8_images(x2))]
    for name, path in (("H1", exp.source_model(seed)), (f"H2 ({variant})", fmr_model(exp.name, variant, seed))):
        model, _ = load_task_model(path, backbone)
        seen = invert_features(model, x1, [layers(exp)[-1]], list(layers(exp)), cfg.steps, cfg.lr, cfg.momentum,
                               cfg.style_weight, seed, device)
        rows.append((f"X1 as {name} sees it", to_uint8_images(seen)))
    out = inversion_png(exp.name, seed)
    image_rows(rows, out, f"{exp.name}: feature inversion from white noise, content at {layers(exp)[-1]}, style "
               f"at {', '.join(layers(exp))}, seed {seed}")
    print(f"feature inversion of {len(x1)} image(s) -> {out}")


if __name__ == "__main__":
    raise SystemExit(run_stage(stage_parser(__doc__, experiment=True), main))
