"""Export a trained calibrator and its frozen model as one TorchScript file (Ye et al. 5.3).

The file maps images (N, C, H, W in [-1, 1]) to the frozen model's logits through the calibrator.
It is checked against the two-step pipeline (calibrator, then model) on target images before it is
written; the parameter counts and the check land in ``<variant>.deploy.json`` for the report.
"""

from __future__ import annotations

import argparse
import warnings
import torch

from pipeline_lib.artifacts import atomic_path, write_json
from pipeline_lib.cli import experiment, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import sample_images
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.errors import PipelineError
from pipeline_lib.methods.calibrator_spec import VARIANTS, calibrator_model, deployed_model, deployment_json
from pipeline_lib.models.calibrator import load_calibrated_model, parameter_count, trace_deployed

TOLERANCE = 1e-4


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    tgt = resolve_domain(params, exp.target)
    backbone = params.backbones[exp.backbone]
    torch.set_grad_enabled(False)
    model, meta = load_calibrated_model(calibrator_model(args.experiment, args.variant, args.seed), backbone)
    cfg = params.section("calibrator", exp.backbone)
    example = sample_images(tgt, backbone, 8 if backbone.task == "classification" else 1, cfg.max_width)
    traced = trace_deployed(model, example)
    out = deployed_model(args.experiment, args.variant, args.seed)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch marks TorchScript deprecated; the issue asks for it
        torch.jit.save(traced, str(tmp))
        loaded = torch.jit.load(str(tmp))
        gap = (loaded(example) - model.model(model.calibrator(example))).abs().max().item()
        if not gap <= TOLERANCE:
            raise PipelineError(f"export: the TorchScript file's logits differ from calibrator -> model by {gap:.3g} "
                                f"(> {TOLERANCE}); nothing written")
    n_cal, n_model = parameter_count(model.calibrator), parameter_count(model.model)
    write_json(deployment_json(args.experiment, args.variant, args.seed), {
        "experiment": args.experiment, "variant": args.variant, "seed": args.seed,
        "calibrator_parameters": n_cal, "model_parameters": n_model, "ratio": n_cal / n_model,
        "file": str(out), "file_bytes": out.stat().st_size, "input_shape": list(example.shape),
        "max_abs_difference": gap, "linf": meta["calibrator"]["linf"]})
    print(f"exported {out} ({out.stat().st_size / 1e6:.1f} MB, traced at {tuple(example.shape)}): calibrator "
          f"{n_cal:,} parameters = {100 * n_cal / n_model:.2f}% of the model's {n_model:,}; max |diff| {gap:.2g}")


if __name__ == "__main__":
    parser = stage_parser(__doc__, experiment=True, seed=True, variants=VARIANTS.values())
    raise SystemExit(run_stage(parser, main))
