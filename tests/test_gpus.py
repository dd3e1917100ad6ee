"""GPU slots (pipeline_lib/gpus.py): with N GPUs at most N stages use one at a time, whichever runner started them.
The GPU count is faked with PIPELINE_GPUS and the slot files live in a temporary folder (PIPELINE_GPU_LOCKS)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pipeline_lib import gpus
from pipeline_lib.errors import PipelineError
from pipeline_lib.runtime import resolve_device

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def slots(tmp_path, monkeypatch) -> Path:
    """A private slot folder, no GPU settings from the caller's environment, nothing held afterwards."""
    for name in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "LOCAL_RANK",
                 gpus.GPUS_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(gpus.LOCK_DIR_ENV, str(tmp_path / "slots"))
    yield tmp_path / "slots"
    gpus.release()


def _free(slots: Path, name: str) -> bool:
    """Whether no process holds GPU ``name``'s slot (checked without waiting)."""
    fd = os.open(slots / f"gpu{name}.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_the_gpu_count_comes_from_the_environment_before_the_driver(slots, monkeypatch, tmp_path):
    proc = tmp_path / "proc"
    (proc / "0000:17:00.0").mkdir(parents=True)
    (proc / "0000:65:00.0").mkdir()
    monkeypatch.setattr(gpus, "_NVIDIA_PROC", proc)
    assert gpus.visible_gpus() == ["0", "1"]  # the driver's entries
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert gpus.visible_gpus() == ["3", "5"]
    monkeypatch.setenv(gpus.GPUS_ENV, "1")
    assert gpus.visible_gpus() == ["3"]
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        monkeypatch.delenv(gpus.GPUS_ENV, raising=False)
        assert gpus.visible_gpus() == []
    monkeypatch.setenv(gpus.GPUS_ENV, "two")
    with pytest.raises(PipelineError, match="PIPELINE_GPUS='two' is not a GPU count") as err:
        gpus.visible_gpus()
    assert "\n" not in str(err.value)


def test_no_gpu_means_no_slot_and_no_wait(slots, monkeypatch, tmp_path):
    monkeypatch.setattr(gpus, "_NVIDIA_PROC", tmp_path / "no-driver")
    monkeypatch.setattr(gpus.shutil, "which", lambda name: None)
    assert gpus.visible_gpus() == [] and gpus.claim() is None
    assert not slots.exists()


_STAGE = textwrap.dedent("""
    import json, logging, os, sys, time
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from pipeline_lib import gpus
    gpus.claim()
    start = time.time()
    time.sleep(1.5)  # "training"
    print(json.dumps({"gpu": os.environ["CUDA_VISIBLE_DEVICES"], "start": start, "end": time.time()}))
""")


def _two_stages(count: int, slots: Path) -> list[tuple[dict, str]]:
    """Start two fake GPU stages at once with ``count`` GPUs; their (gpu, start, end) and logs."""
    env = {**os.environ, gpus.GPUS_ENV: str(count), gpus.LOCK_DIR_ENV: str(slots), "PYTHONPATH": str(ROOT)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    procs = [subprocess.Popen([sys.executable, "-c", _STAGE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    done = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), done
    return [(json.loads(out), err) for out, err in done]


def test_with_one_gpu_two_gpu_stages_run_one_after_the_other(slots):
    (a, log_a), (b, log_b) = sorted(_two_stages(1, slots), key=lambda r: r[0]["start"])
    assert a["gpu"] == b["gpu"] == "0"
    assert b["start"] >= a["end"] - 0.05, "the second stage used the GPU while the first still held it"
    assert "waiting for a free GPU" in log_b and "got GPU 0" in log_b
    assert "waiting" not in log_a


def test_with_two_gpus_two_stages_run_at_once_each_on_its_own(slots):
    (a, log_a), (b, log_b) = sorted(_two_stages(2, slots), key=lambda r: r[0]["start"])
    assert {a["gpu"], b["gpu"]} == {"0", "1"}
    assert b["start"] < a["end"], "two GPUs, yet the stages ran one after the other"
    assert "waiting" not in log_a + log_b


def test_a_stage_takes_its_slot_before_cuda_starts_and_gives_it_back_on_the_cpu(slots, monkeypatch):
    """resolve_device claims a GPU before the first CUDA call (which fixes the visible devices), and a stage that
    finds no usable CUDA after all returns the slot and the environment."""
    monkeypatch.setenv(gpus.GPUS_ENV, "2")
    seen = []

    def is_available() -> bool:
        seen.append((os.environ.get("CUDA_VISIBLE_DEVICES"), gpus._held is not None))
        return False

    monkeypatch.setattr(torch.cuda, "is_available", is_available)
    assert resolve_device("auto").type == "cpu"
    assert seen == [("0", True)]
    assert gpus._held is None and "CUDA_VISIBLE_DEVICES" not in os.environ
    assert _free(slots, "0") and _free(slots, "1")
    assert resolve_device("cpu").type == "cpu" and len(seen) == 1  # a CPU stage never asks


def test_a_torchrun_job_takes_gpus_0_to_k_on_rank_0_only(slots, monkeypatch):
    monkeypatch.setenv(gpus.GPUS_ENV, "3")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert gpus.claim() is None  # rank 1 follows rank 0
    monkeypatch.setenv("LOCAL_RANK", "0")
    held = gpus.claim()
    assert held is not None and held.names == ["0", "1"]
    assert "CUDA_VISIBLE_DEVICES" not in os.environ  # each process uses GPU LOCAL_RANK
    assert not _free(slots, "0") and not _free(slots, "1") and _free(slots, "2")


def test_inside_a_slurm_job_the_scheduler_owns_the_gpus(slots, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert gpus.claim() is None


def test_a_stage_whose_cuda_started_early_still_uses_its_own_gpu(slots, monkeypatch):
    """Where CUDA had started before the slot was taken (all GPUs visible), the stage's default device becomes
    the slot's GPU instead of GPU 0."""
    monkeypatch.setenv(gpus.GPUS_ENV, "2")
    other = gpus.acquire(["0", "1"], wanted=1)  # another stage holds GPU 0
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert resolve_device("auto").type == "cuda"
    assert chosen == [1] and os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    other.release()


def test_device_cuda_without_a_gpu_is_refused_before_anything_runs(slots, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # no GPU CUDA would see, on any machine
    with pytest.raises(PipelineError, match=r"^device: cuda, but this machine has no visible NVIDIA GPU .*: set "
                                            r"device: auto or cpu in params.yaml"):
        gpus.check_device("cuda")
    gpus.check_device("auto")
    gpus.check_device("cpu")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    gpus.check_device("cuda")
    monkeypatch.setenv(gpus.GPUS_ENV, "0")  # slots turned off: the GPU is still there
    gpus.check_device("cuda")


def test_snakemake_and_make_demo_refuse_device_cuda_on_a_machine_without_gpus(source_copy, tmp_path):
    """Planned locally, the run stops when the DAG is built, with one line; with a cluster profile it plans (the
    login node need not have the jobs' GPUs)."""
    from pipeline_helpers import run

    project = tmp_path / "p"
    subprocess.run(["cp", "-a", str(source_copy), str(project)], check=True)
    text = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(text.replace("device: auto", "device: cuda", 1))
    env = {"CUDA_VISIBLE_DEVICES": "-1"}
    local = run(["snakemake", "-n", "--cores", "1", "data/domains/mnist5k.npz"], project, check=False, env=env)
    assert local.returncode != 0 and local.stderr.strip().splitlines()[-1].startswith("error: device: cuda, but"), \
        local.stderr
    check = run([sys.executable, "-m", "pipeline_lib.dag", "--check"], project, check=False, env=env)
    assert check.returncode == 2 and check.stderr.startswith("error: device: cuda, but"), check.stderr
    cluster = run(["snakemake", "-n", "--profile", "profiles/slurm", "data/domains/mnist5k.npz"], project,
                  check=False, env=env)
    assert cluster.returncode == 0, cluster.stderr
