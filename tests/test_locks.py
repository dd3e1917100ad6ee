"""Issue 13 items 4-6: one runner per workspace, one process per stage, one-line I/O errors and interrupts.

The multi-process tests run a tiny stand-in stage (``run_stage`` around a :class:`ShardWriter` that can pause
mid-write), not a pipeline stage: each process costs only the import of ``pipeline_lib.cli``. Runners are
stood in for by a shell script named ``snakemake`` or ``dvc`` (what :func:`find_runner` looks for in the
stage's ancestors); one test runs the real Snakemake with two parallel jobs.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from pipeline_lib import artifacts, cli, locks
from pipeline_lib.config import load_params
from pipeline_lib.errors import PipelineError

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

STAND_IN = '''\
"""Stand-in stage: writes out/<name> (a sharded set), pausing mid-write for $STANDIN_HOLD seconds."""
import argparse
import os
import time
from pathlib import Path

import numpy as np

from pipeline_lib.artifacts import ShardWriter
from pipeline_lib.cli import run_stage, stage_parser
from pipeline_lib.errors import PipelineError


def main(args: argparse.Namespace, params: object) -> None:
    with ShardWriter(Path("out") / args.name, 4, {"name": args.name}) as writer:
        writer.add(np.zeros((3, 2, 2), np.uint8), np.arange(3))
        Path(f"{args.name}.started").touch()
        time.sleep(float(os.environ.get("STANDIN_HOLD", "0")))  # not an argument: the lock is keyed by those
        if args.wait_for:  # a barrier: succeeds only if the other job runs at the same time
            deadline = time.monotonic() + 60
            while not Path(f"{args.wait_for}.started").exists():
                if time.monotonic() > deadline:
                    raise PipelineError(f"{args.wait_for} never started alongside {args.name}")
                time.sleep(0.02)
        writer.close()


if __name__ == "__main__":
    parser = stage_parser(None)
    parser.add_argument("--name", default="seed0")
    parser.add_argument("--wait-for", default="")
    raise SystemExit(run_stage(parser, main))
'''

#: a stand-in runner: runs each argument as a shell job, all at once, and waits for them
FAKE_RUNNER = '#!/bin/sh\nfor job in "$@"; do sh -c "$job" & done\nwait\n'


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "standin.py").write_text(STAND_IN)
    return tmp_path


def _env(hold: float = 0) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "STANDIN_HOLD": str(hold)}


def _stage(ws: Path, *args: str) -> list[str]:
    return [sys.executable, str(ws / "standin.py"), *args]


def _start(ws: Path, *args: str) -> subprocess.Popen:
    """The stand-in, paused mid-write for a minute, with Ctrl-C handled as in a terminal: a test run started
    as a background job inherits an ignored SIGINT, and a child that inherits it never raises KeyboardInterrupt."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # exec turns a handler into the default
    try:
        return subprocess.Popen(_stage(ws, *args), cwd=ws, env=_env(hold=60), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def _run(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(_stage(ws, *args), cwd=ws, env=_env(), capture_output=True, text=True, timeout=120)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"stand-in ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _temps(folder: Path, name: str = "seed0") -> list[Path]:
    return sorted(folder.glob(f".{name}.*.tmp"))


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def _fake_runner(ws: Path, name: str) -> Path:
    runner = ws / "bin" / name
    runner.parent.mkdir(exist_ok=True)
    runner.write_text(FAKE_RUNNER)
    runner.chmod(0o755)
    return runner


# --- item 4 (a): one process per stage invocation -------------------------------------------------------------

def test_a_second_invocation_of_a_running_stage_stops_and_a_killed_holder_frees_the_lock(workspace):
    artifacts.write_shards(workspace / "out" / "seed0", np.ones((2, 2, 2), np.uint8), np.arange(2), 4, {})
    before = (workspace / "out" / "seed0" / artifacts.MANIFEST).read_text()  # an earlier run's output
    first = _start(workspace)
    try:
        _wait_for(workspace / "seed0.started", first)
        (leftover,) = _temps(workspace / "out")
        second = _run(workspace)
        assert second.returncode == 2
        line = _one_line(second.stderr)
        assert line.startswith("error: this stage (python3 -m standin) is already running in this workspace "
                               f"(pid {first.pid} since ") and line.endswith("; wait for it or stop it, then rerun")
        assert _temps(workspace / "out") == [leftover]  # the first's half-written set is untouched ...
        assert (workspace / "out" / "seed0" / artifacts.MANIFEST).read_text() == before  # ... and so is the output
        decoy = workspace / "out" / ".other.abcd1234.tmp"  # another output's temp: never this stage's business
        decoy.mkdir()
        first.send_signal(signal.SIGKILL)
        first.wait(60)
    finally:
        first.kill()
        first.wait()
    assert leftover.exists()  # SIGKILL runs no cleanup

    again = _run(workspace)  # the kernel dropped the killed holder's lock: this run may go on
    assert again.returncode == 0, again.stderr
    assert not leftover.exists() and not _temps(workspace / "out")  # the killed run's debris is gone
    assert decoy.exists()
    assert artifacts.read_shards(workspace / "out" / "seed0")[2]["count"] == 3


@pytest.mark.parametrize("sig, status, word", [(signal.SIGINT, 130, "interrupted (Ctrl-C)"),
                                               (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_an_interrupted_stage_prints_one_line_and_leaves_no_half_written_output(workspace, sig, status, word):
    proc = _start(workspace)
    try:
        _wait_for(workspace / "seed0.started", proc)
        assert _temps(workspace / "out")
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status
    assert _one_line(stderr) == (f"error: {word}; unfinished outputs were discarded: rerun the stage to continue")
    assert not _temps(workspace / "out") and not (workspace / "out" / "seed0").exists()


# --- item 4 (b): one runner per workspace -----------------------------------------------------------------------

def _record_runner(ws: Path, name: str, pid: int) -> None:
    (ws / ".pipeline").mkdir(exist_ok=True)
    record = {"runner": name, "pid": pid, "started": psutil.Process(pid).create_time()}
    (ws / ".pipeline" / "runner.lock").write_text(json.dumps(record))


def _under(runner: Path, ws: Path, *jobs: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(runner), *jobs], cwd=ws, env=_env(), capture_output=True, text=True, timeout=120)


def _job(ws: Path, name: str, *args: str) -> str:
    cmd = " ".join(_stage(ws, "--name", name, *args))
    return f"{cmd} >{name}.out 2>{name}.err; echo $? >{name}.rc"


def _result(ws: Path, name: str) -> tuple[int, str]:
    return int((ws / f"{name}.rc").read_text()), (ws / f"{name}.err").read_text()


def test_a_stage_under_another_runner_is_refused_while_the_recorded_runner_lives(workspace):
    other = subprocess.Popen(["sleep", "60"])  # stands in for a live Snakemake that owns the workspace
    try:
        _record_runner(workspace, "snakemake", other.pid)
        dvc = _fake_runner(workspace, "dvc")
        _under(dvc, workspace, _job(workspace, "a"))
        status, stderr = _result(workspace, "a")
        since = time.strftime("%H:%M", time.localtime(psutil.Process(other.pid).create_time()))
        assert status == 2
        assert _one_line(stderr) == (f"error: this workspace is in use by snakemake (pid {other.pid}) since {since}; "
                                     "wait for it or stop it, then rerun")
        assert not (workspace / "out" / "a").exists()
        by_hand = _run(workspace, "--name", "c")  # no runner: only its stage lock applies
        assert by_hand.returncode == 0, by_hand.stderr
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()

    _under(dvc, workspace, _job(workspace, "a"))  # the recorded runner is dead: its record is taken over
    assert _result(workspace, "a") == (0, "")
    record = json.loads((workspace / ".pipeline" / "runner.lock").read_text())
    assert record["runner"] == "dvc" and record["pid"] != other.pid


def test_the_real_snakemake_is_found_as_the_runner_and_runs_two_jobs_at_once(workspace):
    (workspace / "Snakefile").write_text(textwrap.dedent(f"""\
        rule all:
            input: "out/a", "out/b"
        rule job:
            output: directory("out/{{name}}")
            params: other=lambda wildcards: "b" if wildcards.name == "a" else "a"
            shell: "{sys.executable} standin.py --name {{wildcards.name}} --wait-for {{params.other}}"
        """))
    proc = subprocess.run([str(BIN / "snakemake"), "--cores", "2", "--quiet"], cwd=workspace, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (workspace / "out" / "a").is_dir() and (workspace / "out" / "b").is_dir()
    assert json.loads((workspace / ".pipeline" / "runner.lock").read_text())["runner"] == "snakemake"


# --- the lock primitives, in process ----------------------------------------------------------------------------

@pytest.mark.parametrize("comm, cmdline, expected", [
    ("snakemake", ["/w/.venv/bin/python", "/w/.venv/bin/snakemake", "--cores", "2"], "snakemake"),
    ("python3", ["python3", "-m", "snakemake", "-n"], "snakemake"),
    ("dvc", ["/usr/bin/dvc", "repro"], "dvc"),
    ("dvc", ["/bin/sh", "/tmp/bin/dvc", "job"], "dvc"),
    ("python3", ["python3", "-m", "stages.prepare", "--domain", "dvc"], None),
    ("bash", ["bash", "-c", "snakemake --cores 2"], None),
    ("tee", ["tee", "logs/dvc"], None),
])
def test_runner_names(comm, cmdline, expected):
    assert locks.runner_name(comm, cmdline) == expected


def test_a_job_of_a_cluster_run_has_no_runner_of_its_own(monkeypatch):
    import psutil

    class _Proc:
        def __init__(self, pid, cmdline, parents=()):
            self.pid, self._cmdline, self._parents = pid, cmdline, list(parents)

        def name(self):
            return "python3"

        def cmdline(self):
            return self._cmdline

        def create_time(self):
            return 1.0

        def parents(self):
            return self._parents

    main = _Proc(10, ["python3", "-m", "snakemake", "--profile", "profiles/slurm"])
    job = _Proc(20, ["python3", "-m", "snakemake", "--executor", "slurm-jobstep", "--mode", "remote"], [main])
    stage = _Proc(30, ["python3", "-m", "stages.prepare", "--domain", "mnist5k"], [job, main])
    monkeypatch.setattr(psutil, "Process", lambda: stage)
    assert locks.find_runner() is None  # the submitting Snakemake owns the workspace
    job._cmdline = ["python3", "-m", "snakemake", "--cores", "2"]  # a helper subprocess of a local run
    assert locks.find_runner() == locks.Runner("snakemake", 10, 1.0)


def test_stage_lock_excludes_a_second_holder_and_the_key_ignores_the_params_file(tmp_path):
    first = locks.StageLock(tmp_path, "stages.prepare", {"params": "params.yaml", "domain": "mnist5k"}, "cmd 1")
    first.acquire()
    second = locks.StageLock(tmp_path, "stages.prepare", {"params": "other.yaml", "domain": "mnist5k"}, "cmd 2")
    with pytest.raises(PipelineError, match=rf"^this stage \(cmd 1\) is already running .*\(pid {os.getpid()} since"):
        second.acquire()
    locks.StageLock(tmp_path, "stages.prepare", {"params": "params.yaml", "domain": "optdigits"}, "x").acquire()
    first.release()
    second.acquire()
    second.release()


def test_claim_workspace_refuses_a_live_other_runner_and_takes_over_a_dead_one(tmp_path):
    me = locks.Runner("dvc", os.getpid(), psutil.Process().create_time())
    locks.claim_workspace(tmp_path, me)
    locks.claim_workspace(tmp_path, me)  # jobs of one runner share the workspace
    other = locks.Runner("snakemake", os.getppid(), psutil.Process(os.getppid()).create_time())
    with pytest.raises(PipelineError, match=rf"^this workspace is in use by dvc \(pid {os.getpid()}\) since "
                                            r"\d\d:\d\d; wait for it or stop it, then rerun$"):
        locks.claim_workspace(tmp_path, other)
    reused = locks.Runner("dvc", os.getpid(), me.started - 1000)  # same pid, another process: stale
    (tmp_path / ".pipeline" / "runner.lock").write_text(json.dumps(reused.record()))
    locks.claim_workspace(tmp_path, other)
    assert json.loads((tmp_path / ".pipeline" / "runner.lock").read_text())["runner"] == "snakemake"


# --- item 5: I/O errors and interrupts, in process --------------------------------------------------------------

@pytest.fixture
def in_workspace(workspace, monkeypatch):
    """Run ``run_stage`` in this process, in ``workspace``, as if by hand."""
    monkeypatch.chdir(workspace)
    monkeypatch.setattr(cli, "find_runner", lambda: None)
    threads = torch.get_num_threads()
    yield workspace
    torch.set_num_threads(threads)


def _run_in_process(main) -> int:
    return cli.run_stage(cli.stage_parser(None), main, [])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp")) if folder.exists() else []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod; the next test simulates it")
def test_an_unwritable_output_folder_gives_one_line(in_workspace, capsys):
    (in_workspace / "out").mkdir(mode=0o555)
    try:
        status = _run_in_process(lambda args, params: artifacts.write_json("out/metrics.json", {"a": 1}))
    finally:
        (in_workspace / "out").chmod(0o755)
    assert status == 2
    assert _one_line(capsys.readouterr().err) == ("error: permission denied on out/metrics.json; give your user write "
                                                  "access to out (e.g. chmod u+rwx out, or fix its owner), then rerun")
    assert not _leftovers(in_workspace / "out")


def test_a_permission_error_on_the_rename_gives_one_line_and_no_half_file(in_workspace, capsys, monkeypatch):
    def denied(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(src), str(dst))

    monkeypatch.setattr(artifacts.os, "replace", denied)
    assert _run_in_process(lambda args, params: artifacts.write_json("out/metrics.json", {"a": 1})) == 2
    assert _one_line(capsys.readouterr().err) == ("error: permission denied on out/metrics.json; give your user write "
                                                  "access to out (e.g. chmod u+rwx out, or fix its owner), then rerun")
    assert not (in_workspace / "out" / "metrics.json").exists() and not _leftovers(in_workspace / "out")


def test_a_full_disk_gives_one_line_naming_the_artifact(in_workspace, capsys, monkeypatch):
    def full(self, *args, **kwargs):  # what write(2) raises on a full disk: no file name
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full)
    assert _run_in_process(lambda args, params: artifacts.write_json("out/metrics.json", {"a": 1})) == 2
    assert _one_line(capsys.readouterr().err) == (
        "error: no space left on the device while writing out/metrics.json; free space there (delete outputs you "
        "no longer need, `dvc gc`) or move the workspace to a larger disk, then rerun")
    assert not _leftovers(in_workspace / "out")


def test_a_full_disk_inside_a_sharded_set_names_the_shard_and_drops_the_set(in_workspace, capsys, monkeypatch):
    def full(filename, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filename))

    def main(args, params):
        with artifacts.ShardWriter("out/seed0", 4, {}) as writer:
            writer.add(np.zeros((3, 2), np.uint8), np.arange(3))

    monkeypatch.setattr(np.lib.format, "open_memmap", full)
    assert _run_in_process(main) == 2
    assert _one_line(capsys.readouterr().err).startswith(
        "error: no space left on the device while writing out/seed0/shard-00000.images.npy; free space there")
    assert not _leftovers(in_workspace / "out") and not (in_workspace / "out" / "seed0").exists()


def test_ctrl_c_inside_a_stage_exits_130_with_one_line_and_no_half_written_output(in_workspace, capsys):
    def main(args, params):
        with artifacts.atomic_dir("out/seed0") as tmp:
            (tmp / "part").write_text("half")
            raise KeyboardInterrupt

    assert _run_in_process(main) == 130
    assert _one_line(capsys.readouterr().err) == ("error: interrupted (Ctrl-C); unfinished outputs were discarded: "
                                                  "rerun the stage to continue")
    assert not _leftovers(in_workspace / "out") and not (in_workspace / "out" / "seed0").exists()


def test_the_next_run_removes_only_the_recorded_temps_of_a_killed_run(in_workspace):
    out = in_workspace / "out"
    out.mkdir()
    mine, other = out / ".seed0.abcd1234.tmp", out / ".seed0.zzzz9999.tmp"  # other: not in the record
    mine.mkdir()
    other.mkdir()

    def main(args, params):
        assert not mine.exists(), "removed before the stage runs"

    lock = locks.StageLock(in_workspace, cli._stage_module(main), {"params": "params.yaml"}, "the killed run")
    lock.acquire()
    lock.temp_created(mine)  # as atomic_dir reports it ...
    os.close(lock._fd)  # ... then the process dies: the kernel drops the lock, the record stays
    lock._fd = None
    assert _run_in_process(main) == 0
    assert not mine.exists() and other.exists()


# --- item 6 (a): YAML syntax errors ------------------------------------------------------------------------------

def test_a_yaml_syntax_error_keeps_the_parser_detail_and_points_at_the_culprit(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile: tiny\nseeds: [0, 1\nthreads_per_job: 1\n")
    with pytest.raises(PipelineError) as err:
        load_params(path)
    assert str(err.value) == (f"{path}: not valid YAML at line 3, column 16: expected ',' or ']', but got ':' "
                              "(while parsing a flow sequence that starts at line 2, column 8); fix the syntax")
    path.write_text("profile: tiny\n  seeds: [0]\n")
    with pytest.raises(PipelineError, match=r"not valid YAML at line 2, column 8: mapping values are not allowed "
                                            r"here; fix the syntax$"):
        load_params(path)
