"""Lint: ``snakemake --lint`` is clean apart from one documented choice (docs/testing.md, "Tests and benchmarks"):
every rule runs in the project's one environment, so no rule names a conda environment or container of its own.
(``ruff check`` runs in ``.ci/run`` and ``make lint``.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PER_RULE_ENVIRONMENT = "* Specify a conda environment or container for each rule.:"


@pytest.mark.slow
def test_snakemake_lint_reports_only_the_per_rule_environment_choice(source_copy):
    out = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=source_copy, capture_output=True,
                         text=True)
    lints = {line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip().startswith("* ")}
    assert lints == {PER_RULE_ENVIRONMENT}, out.stdout + out.stderr
