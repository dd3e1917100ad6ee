"""Shared plumbing for the thin stage CLIs in ``stages/``.

``run_stage(main)`` loads and validates params.yaml, calls ``main(args, params)`` and turns
a :class:`PipelineError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from typing import Any, Callable

from pipeline_lib.config import Params, load_params
from pipeline_lib.errors import PipelineError

log = logging.getLogger("pipeline")


def stage_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return parser


def params_hash(*parts: Any) -> str:
    """Stable hash of JSON-able values (used to decide whether a partial checkpoint may be resumed)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def run_stage(parser: argparse.ArgumentParser, main: Callable[[argparse.Namespace, Params], None],
              argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        main(args, params)
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def require(name: str, known: Any, what: str) -> None:
    if name not in known:
        raise PipelineError(f"unknown {what} {name!r} (known: {', '.join(known)})")
