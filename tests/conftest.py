"""Shared fixtures: tiny params, the repository root, a planning copy of it, the optional real data folder."""

from __future__ import annotations

import copy
import subprocess
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


#: where a run of the pipeline writes in a workspace; the suite must leave all of them in the checkout as they were
WORKSPACE_OUTPUTS = ("data", "models", "metrics", "reports", "logs", "benchmarks", ".snakemake", ".dvc/cache",
                     ".dvc/tmp", "dvc.lock", "dvc.yaml", "params.yaml")


def _workspace_state() -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file a pipeline run writes in the checkout, and of every source file git sees changed."""
    state: dict[str, tuple[int, int]] = {}
    listed = [ROOT / p for p in WORKSPACE_OUTPUTS]
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                             capture_output=True, text=True).stdout.splitlines()
    listed += [ROOT / line[3:] for line in changed]
    for top in listed:
        for path in ([top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []):
            if path.is_file() and "__pycache__" not in path.parts:
                st = path.stat()
                state[str(path.relative_to(ROOT))] = (st.st_size, st.st_mtime_ns)
    return state


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = _workspace_state()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a test wrote to the user's checkout (issue 35): every test plans and runs in a copy."""
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    after = _workspace_state()
    touched = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    if touched:
        print(f"\nerror: the tests changed {len(touched)} file(s) of the checkout, which a user's `make demo` "
              f"may own: {', '.join(touched[:10])}; a test must plan and run in a copy (tests/conftest.py)")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_BEFORE = pytest.StashKey[dict]()
