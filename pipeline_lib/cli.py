"""Shared plumbing for the thin stage CLIs in ``stages/``.

``run_stage(parser, main)`` loads and validates params.yaml, calls ``main(args, params)`` and
turns a :class:`PipelineError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from pipeline_lib.artifacts import atomic_path
from pipeline_lib.config import ExperimentParams, Params, load_params
from pipeline_lib.errors import PipelineError
from pipeline_lib.paths import history
from pipeline_lib.training import TrainResult, partial_path


def stage_parser(description: str | None, *, experiment: bool = False, seed: bool = False,
                 variants: Iterable[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    if experiment:
        parser.add_argument("--experiment", required=True)
    if seed:
        parser.add_argument("--seed", type=int, required=True)
    if variants:
        parser.add_argument("--variant", required=True, choices=sorted(set(variants)))
    return parser


def params_hash(*parts: Any) -> str:
    """Stable hash of JSON-able values (decides whether a partial checkpoint may be resumed)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def run_stage(parser: argparse.ArgumentParser, main: Callable[[argparse.Namespace, Params], None],
              argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        torch.set_num_threads(params.threads_per_job)  # same threads under both runners -> same numbers
        main(args, params)
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def require(name: str, known: Any, what: str) -> None:
    if name not in known:
        raise PipelineError(f"unknown {what} {name!r} (known: {', '.join(known)})")


def experiment(params: Params, name: str) -> ExperimentParams:
    require(name, params.experiments, "experiment")
    return params.experiments[name]


def finish_training(out: Path, result: TrainResult) -> None:
    """Write the per-epoch history next to the checkpoint and drop the resume file."""
    with atomic_path(history(out)) as tmp:
        import pandas as pd  # imported here: every stage process pays for what it imports
        pd.DataFrame(result.history).to_csv(tmp, index=False)
    partial_path(out).unlink(missing_ok=True)
