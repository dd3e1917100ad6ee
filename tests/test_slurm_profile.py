"""profiles/slurm end to end on this machine: stand-in SLURM commands (tests/slurm_standins) record every sbatch
call and run the job here, so the test sees what a cluster would be asked for and that the job's outputs appear.

One GPU rule (train_supervised, gpu 1 from params.yaml's resources) and its dependency (prepare) on the tiny
profile. gpu 1 runs the stage as it is (only gpu > 1 goes through torchrun), so it trains on CPU here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline_helpers import BIN, ROOT, copy_project, run

pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed "
                    "(pip install -e '.[test]')")

pytestmark = pytest.mark.slow

STANDINS = ROOT / "tests" / "slurm_standins"
TARGET = "models/supervised/mnist5k-lenet_rgb/seed0.pt"
TRAIN = {"gpu": 1, "mem_mb": 3000, "runtime": 30}


def _records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "p", profile="tiny", seeds=[0], resources={"rules": {"train_supervised": TRAIN}})


def _env(project: Path) -> dict[str, str]:
    return {"PATH": os.pathsep.join([str(STANDINS), BIN, os.environ.get("PATH", "")]),
            "STANDIN_SLURM_LOG": str(project / "sbatch.jsonl")}


def test_slurm_profile_submits_each_job_with_its_rules_resources_and_the_outputs_appear(project):
    env, log = _env(project), project / "sbatch.jsonl"
    # --set-resources reaches the jobs (dry run: nothing is submitted); two GPUs launch torchrun
    plan = run(["snakemake", "--profile", "profiles/slurm", "--set-resources", "train_supervised:gpu=2", "-n",
                TARGET], project, env=env).stdout
    assert "gpu=2" in plan and "torchrun --standalone --nproc_per_node 2 -m stages.train_supervised" in plan
    assert not log.exists()

    out = run(["snakemake", "--profile", "profiles/slurm", "--slurm-init-seconds-before-status-checks", "1", TARGET],
              project, env=env, timeout=300)
    records = _records(log)
    submits = {r["options"]["--comment"]: r for r in records if r["event"] == "submit"}
    assert len(submits) == sum(r["event"] == "submit" for r in records) == 2  # one sbatch per job
    train = submits["rule_train_supervised_wildcards_mnist5k_lenet_rgb_0"]["options"]
    prepare = submits["rule_prepare_wildcards_mnist5k"]["options"]
    assert (train["--gpus"], train["--mem"], train["-t"], train["--cpus-per-task"]) == ("1", "3000", "30", "1")
    assert "--gpus" not in prepare and (prepare["--mem"], prepare["-t"], prepare["--ntasks"]) == ("4000", "60", "1")
    for options in (train, prepare):
        assert options["-D"] == str(project) and "--parsable" in options and "-A" not in options
        assert options["-p"] == "standin"  # sinfo's default partition
        assert "--target-jobs" in options["--wrap"] and "--executor slurm-jobstep" in options["--wrap"]
    assert "train_supervised:domain=mnist5k,backbone=lenet_rgb,seed=0" in train["--wrap"]
    # inside the allocation the jobstep plugin ran the job as one step with the GPU
    steps = {r["job_id"]: r["argv"] for r in records if r["event"] == "srun"}
    train_id = next(r["job_id"] for r in records if r["event"] == "submit" and r["options"] is train)
    assert {"-n1", "--gpus=1", "--cpus-per-task=1"} <= set(steps[train_id])
    assert [r["state"] for r in records if r["event"] == "end"] == ["COMPLETED", "COMPLETED"]
    # the job ran here, without torchrun (one GPU), and wrote its outputs
    assert "torchrun" not in out.stdout + out.stderr
    for path in (TARGET, "models/supervised/mnist5k-lenet_rgb/seed0.history.csv", "data/domains/mnist5k.npz",
                 "logs/train_supervised__mnist5k__lenet_rgb__s0.log"):
        assert (project / path).is_file(), path
    again = run(["snakemake", "--profile", "profiles/slurm", "-n", TARGET], project, env=env)
    assert "Nothing to be done" in again.stdout + again.stderr
