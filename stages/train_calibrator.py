"""Light-weight calibrator (Ye et al., CVPR 2020): train G_c = I + G'_c for a frozen source model.

``--variant raw``: the source model trained on raw source images ("calibrator").
``--variant cycada``: CyCADA's pixel-only model and its translated source set ("CycleGAN + calibrator").
Also draws the Fourier view of section 5.1 (Fig. 6) on target test images.
"""

from __future__ import annotations

import argparse

import torch

from pipeline_lib.artifacts import save_checkpoint
from pipeline_lib.cli import experiment, finish_training, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import sample_images, train_set, translated_set
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.domains.transforms import to_uint8_images
from pipeline_lib.evaluation import experiment_target_monitor
from pipeline_lib.methods.calibrator import amplitude_spectra, train_calibrator
from pipeline_lib.methods.calibrator_params import settings
from pipeline_lib.methods.calibrator_spec import VARIANTS, calibrator_model, fourier_png, frozen_model
from pipeline_lib.methods.cycada_spec import translated_dataset
from pipeline_lib.registry import Experiment
from pipeline_lib.models import load_task_model
from pipeline_lib.models.calibrator import parameter_count
from pipeline_lib.plots import fourier_plot
from pipeline_lib.provenance import stage_fingerprint
from pipeline_lib.runtime import resolve_device, seed_everything
from pipeline_lib.training import SeriesPlan


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    src, tgt = resolve_domain(params, exp.source), resolve_domain(params, exp.target)
    backbone, cfg = params.backbones[exp.backbone], params.section("calibrator", exp.backbone)
    seed_everything(args.seed)
    device = resolve_device(params.device)
    frozen_path = frozen_model(Experiment(params, args.experiment), args.variant, args.seed)
    model, upstream = load_task_model(frozen_path, backbone)
    if args.variant == "raw":
        source, source_data = train_set(src, backbone, cfg), src.artifact
    else:
        source_data = translated_dataset(args.experiment, args.seed)
        source, _ = translated_set(source_data, backbone, cfg)
    target = train_set(tgt, backbone, cfg, labels=False)
    out = calibrator_model(args.experiment, args.variant, args.seed)
    meta = {"experiment": args.experiment, "variant": args.variant, "seed": args.seed, "profile": params.profile,
            "calibrator_params": cfg.model_dump(), "frozen_model": str(frozen_path),
            "num_classes": model.num_classes}
    monitor = experiment_target_monitor(src, tgt, backbone, params.track(exp.backbone).evaluate, model.num_classes,
                                        device)  # curves only
    key = stage_fingerprint(params, exp.backbone, device, [frozen_path, source_data, tgt.artifact], **meta)
    calibrator, result = train_calibrator(model, source, target, cfg, device, args.seed, out, key,
                                          desc=f"calibrator {args.variant} {args.experiment}/seed{args.seed}",
                                          monitor=monitor, divergence=params.divergence,
                                          series=SeriesPlan.of(params.selection))
    n_cal, n_model = parameter_count(calibrator), parameter_count(model)
    save_checkpoint(out, calibrator.cpu().state_dict(), {
        **meta, "settings": settings(cfg), "calibrator": {"channels": backbone.channels, "ngf": cfg.ngf,
                               "n_down": cfg.n_down,
                               "n_blocks": cfg.n_blocks, "linf": cfg.linf,
                               "output": cfg.output},
        "calibrator_parameters": n_cal, "model_parameters": n_model,
        "train_seconds": upstream["train_seconds"] + result.seconds, "stage_seconds": result.seconds,
        "device": str(device)})
    finish_training(out, result)
    images = sample_images(tgt, backbone, cfg.fourier_images, cfg.max_width)
    spectra = amplitude_spectra(calibrator, images, device)
    with torch.no_grad():
        shown = images[:8]
        calibrated = calibrator.cpu()(shown)
        scaled = (calibrated - shown) / (2 * cfg.linf)  # in [-1, 1] at the bound, whatever the bound
    fourier_plot(spectra, [(f"{exp.target} test images", to_uint8_images(shown)),
                           ("calibrated", to_uint8_images(calibrated.clamp(-1, 1))),
                           ("perturbation / bound (mid-grey = 0)", to_uint8_images(scaled.clamp(-1, 1)))],
                 fourier_png(args.experiment, args.variant, args.seed),
                 f"{args.experiment}: calibrator ({args.variant}), seed {args.seed}, L-inf bound {cfg.linf}")
    print(f"calibrator -> {out}: {n_cal:,} parameters, {100 * n_cal / n_model:.2f}% of the frozen model's "
          f"{n_model:,}; {len(result.history)} epoch(s), {result.seconds:.1f}s")


if __name__ == "__main__":
    parser = stage_parser(__doc__, experiment=True, seed=True, variants=VARIANTS.values())
    raise SystemExit(run_stage(parser, main))
