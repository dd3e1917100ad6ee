"""Shared fixtures: tiny params, the repository root, a planning copy of it, the optional real data folder."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_lib.config import Params, parse_params

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def source_copy(tmp_path_factory) -> Path:
    """The project's source files (what git would commit, as they are now) in a fresh temporary git repo, with no
    outputs: where tests plan and lint the default DAG. Never the checkout itself, which may hold a user's
    `make demo` outputs (a plan there finds them up to date) and which a parse would write to (data manifests).
    Shared by the session: tests only read it and dry-run in it."""
    from pipeline_helpers import copy_project

    return copy_project(tmp_path_factory.mktemp("source_copy"))


@pytest.fixture(scope="session")
def raw_params() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def tiny_raw(raw_params: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(raw_params)
    raw["profile"] = "tiny"
    raw["seeds"] = [0]
    return raw


@pytest.fixture
def tiny_params(tiny_raw: dict[str, Any]) -> Params:
    return parse_params(tiny_raw)
