"""bench/bench_scale.py's GPU measurement: skipped with one line where there is no GPU; its code runs on CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "bench/bench_scale.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_gpu_steps_skip_without_a_gpu():
    done = _bench("--gpu-steps", "1", "--gpu-only", env={"CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "--gpu-steps 1: no GPU here (torch.cuda.is_available() is False); skipped"


@pytest.mark.slow
def test_gpu_steps_code_runs_on_cpu_and_prints_the_cost_table_lines():
    done = _bench("--gpu-steps", "1", "--gpu-only", "--device", "cpu", "--gpu-shrink", "8")
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in done.stdout.splitlines() if "frames_per_s" in line]
    assert [line.split(":")[0] for line in lines] == ["train_supervised", "train_task", "train_cyclegan", "translate",
                                                      "evaluate", "select"]
