"""``python -m stages.<name>`` from an interpreter without the project's dependencies (what Snakemake
and DVC run when started as ``.venv/bin/snakemake`` without activating the venv): ``stages/__init__.py``
re-executes the stage with ``<repo>/.venv/bin/python``, or stops with a one-line error when there is none.

The system interpreter is ``/usr/bin/python3``; the tests that run it skip where it is missing or can
import torch itself. The "no venv" case runs from a temporary copy of ``stages/`` and ``pipeline_lib/``,
which has no ``.venv`` next to it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stages import _module_from_command_line

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"
ERROR = re.compile(r"^error: /usr/bin/python3 cannot import torch: activate the project environment "
                   r"\(source \.venv/bin/activate\) or run make install$")


def _bare_env(**extra: str) -> dict[str, str]:
    """What ``env -i PATH=/usr/bin:/bin`` leaves: no VIRTUAL_ENV, no PYTHONPATH."""
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), **extra}


def _system_python_lacks_torch() -> bool:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
                           env=_bare_env(), capture_output=True, text=True)
    return probe.stdout.strip() == "True"


needs_bare_python = pytest.mark.skipif(not _system_python_lacks_torch(),
                                       reason=f"{SYSTEM_PYTHON} is missing or can import torch")


def _report_help(cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([SYSTEM_PYTHON, "-m", "stages.report", "--help"], cwd=cwd, env=_bare_env(**env),
                          capture_output=True, text=True, timeout=300)


@needs_bare_python
@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="no project venv at .venv")
def test_a_stage_run_by_a_python_without_torch_reexecutes_with_the_project_venv():
    proc = _report_help(ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: ") and "--experiment" in proc.stdout  # stages.report imports torch
    assert "error" not in proc.stderr


@needs_bare_python
def test_without_a_venv_a_stage_stops_with_one_line_naming_the_fix(tmp_path):
    for folder in ("stages", "pipeline_lib"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    proc = _report_help(tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert ERROR.match(proc.stderr.rstrip("\n")) and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


@needs_bare_python
def test_a_reexecuted_stage_that_still_lacks_torch_stops_instead_of_looping():
    proc = _report_help(ROOT, PIPELINE_STAGES_REEXEC="1")  # as if .venv/bin/python had just failed too
    assert proc.returncode == 2 and ERROR.match(proc.stderr.rstrip("\n")), proc.stderr


@pytest.mark.parametrize("argv, module", [
    (["python", "-m", "stages.report", "--help"], "stages.report"),
    (["python", "-mstages.prepare", "-m", "x"], "stages.prepare"),
    (["python", "-Im", "stages.export"], "stages.export"),
    (["python", "-X", "utf8", "-W", "ignore", "-u", "-m", "stages.evaluate"], "stages.evaluate"),
    (["python", "-Wignore", "-m", "stages.evaluate"], "stages.evaluate"),
    (["python", "-c", "import stages.report", "-m", "stages.x"], None),
    (["python", "stages/report.py", "-m", "stages.x"], None),
    (["python"], None),
])
def test_the_module_being_run_is_read_from_the_original_command_line(argv, module):
    assert _module_from_command_line(argv) == module


@pytest.mark.slow
@pytest.mark.skipif(not _system_python_lacks_torch(), reason="needs a system python3 without torch")
def test_both_runners_run_stages_without_an_activated_environment(tmp_path):
    """`.venv/bin/snakemake` and `.venv/bin/dvc repro` from a shell that never activated the venv."""
    import sys

    from pipeline_helpers import copy_project

    project = copy_project(tmp_path / "p", profile="tiny", seeds=[0])
    venv = Path(sys.executable).parent.parent
    (project / ".venv").symlink_to(venv)  # where `make install` puts it
    env = _bare_env(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    snake = subprocess.run([str(venv / "bin/snakemake"), "--cores", "1", "data/domains/mnist5k.npz"], cwd=project,
                           env=env, capture_output=True, text=True, timeout=600)
    assert snake.returncode == 0, snake.stderr[-2000:]
    assert (project / "data/domains/mnist5k.npz").is_file()
    (project / "data/domains/mnist5k.npz").unlink()
    dvc = subprocess.run([str(venv / "bin/dvc"), "repro", "prepare__mnist5k"], cwd=project, env=env,
                         capture_output=True, text=True, timeout=600)
    assert dvc.returncode == 0, dvc.stdout[-2000:] + dvc.stderr[-2000:]
    assert (project / "data/domains/mnist5k.npz").is_file()
