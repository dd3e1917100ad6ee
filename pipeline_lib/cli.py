"""Shared plumbing for the thin stage CLIs in ``stages/``.

``run_stage(parser, main)`` loads and validates params.yaml, calls ``main(args, params)`` and
turns a :class:`PipelineError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
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


#: set to a folder, every stage writes there which project modules it loaded (tests/test_codedeps.py)
RECORD_MODULES = "PIPELINE_RECORD_MODULES"


def _record_modules(folder: str) -> None:
    """Write ``{"cmd": <this stage's DAG command>, "modules": [...]}``: the project modules loaded."""
    module = getattr(sys.modules["__main__"].__spec__, "name", None) if sys.modules.get("__main__") else None
    cmd = " ".join(["python3 -m", str(module), *sys.argv[1:]])
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("pipeline_lib", "stages"))
    out = Path(folder) / (hashlib.sha256(cmd.encode()).hexdigest()[:16] + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cmd": cmd, "modules": loaded}))


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
    if os.environ.get(RECORD_MODULES):
        _record_modules(os.environ[RECORD_MODULES])
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
