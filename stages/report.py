"""Write reports/<experiment>.csv and its confusion-matrix plots from the evaluated metrics."""

from __future__ import annotations

import argparse

from pipeline_lib import paths
from pipeline_lib.cli import require, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.report import write_report


def main(args: argparse.Namespace, params: Params) -> None:
    require(args.experiment, params.experiments, "experiment")
    table = write_report(params, args.experiment)
    cols = ["method", "target_acc", "source_acc", "paper", "paper_table", "n_seeds", "profile"]
    print(table[cols].to_string(index=False))
    print(f"report: {paths.report_csv(args.experiment)}")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--experiment", required=True)
    raise SystemExit(run_stage(parser, main))
