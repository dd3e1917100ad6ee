"""Build one domain offline (or read a real one) into ``data/domains/<name>.npz`` + a sample grid."""

from __future__ import annotations

import argparse

from pipeline_lib import paths
from pipeline_lib.artifacts import load_domain, save_domain
from pipeline_lib.cli import require, run_stage, stage_parser
from pipeline_lib.config import DIGIT_DOMAINS, Params
from pipeline_lib.domains import build_domain, domain_inputs
from pipeline_lib.plots import sample_grid


def main(args: argparse.Namespace, params: Params) -> None:
    require(args.domain, DIGIT_DOMAINS, "domain")
    inputs = {d: load_domain(paths.domain_npz(d)) for d in domain_inputs(args.domain, params)}
    domain = build_domain(args.domain, params, inputs)
    save_domain(paths.domain_npz(args.domain), domain)
    sample_grid(domain.train.images, domain.train.labels, paths.domain_samples_png(args.domain),
                f"{args.domain}: {len(domain.train)} train / {len(domain.test)} test")
    print(f"prepared {args.domain}: {len(domain.train)} train, {len(domain.test)} test, "
          f"images {domain.train.images.shape[1:]} -> {paths.domain_npz(args.domain)}")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--domain", required=True)
    raise SystemExit(run_stage(parser, main))
