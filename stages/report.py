"""Write reports/<experiment>.csv and its plots from the evaluated metrics and training histories."""

from __future__ import annotations

import argparse

from pipeline_lib import paths
from pipeline_lib.cli import experiment, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.report import write_report


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    table = write_report(params, args.experiment)
    metrics = ["target_acc", "source_acc"] if params.backbones[exp.backbone].task == "classification" \
        else ["target_miou", "target_fwiou", "target_pixel_acc", "source_miou"]
    cols = ["method", *metrics, "paper", "n_seeds", "profile"]
    print(table[cols].to_string(index=False))
    print(f"report: {paths.report_csv(args.experiment)}")


if __name__ == "__main__":
    raise SystemExit(run_stage(stage_parser(__doc__, experiment=True), main))
