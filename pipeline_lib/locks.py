"""One runner per workspace, one process per stage invocation (``fcntl.flock`` under ``.pipeline/``).

Two locks, both taken by :func:`pipeline_lib.cli.run_stage` before a stage reads params or touches an output:

- **Stage lock** ``.pipeline/locks/<stage>-<hash>.lock``, keyed by the stage module and its arguments
  (``--params`` excluded: the outputs' paths come from the arguments). The stage holds an exclusive
  ``flock`` on it for its whole run; a second invocation of the same stage stops at once with one line
  (exit status 2). The kernel drops the lock when the holder exits or is killed (SIGKILL included),
  so a dead holder never blocks anything. The file also records the holder (pid, start, command) for
  the message and the temporary siblings (``atomic_path``/``atomic_dir``) it has in flight: a run that
  was killed leaves them listed, and the next run of the same stage removes exactly those, while
  holding the lock, so a live writer's temporary file is never touched.
- **Runner record** ``.pipeline/runner.lock``: the Snakemake or DVC process (the outermost ``snakemake`` /
  ``dvc`` ancestor of the stage) that owns the workspace. A stage started by a runner takes a short
  ``flock`` on the file, reads the record and stops with one line if another runner is recorded and
  still alive (same pid *and* start time, so a reused pid does not count); otherwise it records its
  own runner. Records of dead runners are simply taken over. Parallel jobs of one runner share the
  record; a stage run by hand (no runner ancestor) takes only its stage lock. The Snakefile claims the
  workspace in ``onstart`` too, before Snakemake removes the outputs of its first job; ``dvc repro``
  has no such hook and removes a stage's (non-persistent) outputs before the stage can refuse.

The lock files are never deleted (deleting a file that others may be about to lock races); they are
a few hundred bytes each and ``.pipeline/`` is ignored by git and DVC.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_lib.errors import PipelineError

#: the folder (under the workspace root, the stages' working directory) holding the lock files
LOCK_DIR = ".pipeline"
#: the workflow runners that own a workspace while they run (process or script names)
RUNNERS = ("snakemake", "dvc")
#: interpreters that run a runner's script (``argv[1]``): a console script under python, a wrapper under a shell
_SHELLS = ("sh", "bash", "dash", "zsh")
#: what ``atomic_path``/``atomic_dir`` name their temporary siblings: ``.<name>.<8 random chars>.tmp``
TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
#: how long to wait for another stage's update of the runner record (microseconds in practice)
_RECORD_WAIT_S = 10.0
#: what ``flock`` raises on a file system without locks: the stage then runs unlocked, with a warning
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
_log = logging.getLogger(__name__)


def _try_lock(fd: int, path: Path) -> bool | None:
    """Take an exclusive ``flock`` on ``fd`` without waiting: True if taken, False if another process holds it,
    None where the file system has no locks (then nothing is locked, and nothing may be cleaned up)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as err:
        if err.errno not in _NO_LOCKS:
            raise
        _log.warning("%s: this file system does not support locks (%s); running without the workspace locks",
                     path, err.strerror)
        return None
    return True


@dataclass(frozen=True)
class Runner:
    """A live runner process: its name (``snakemake``/``dvc``), pid and start time (epoch seconds)."""

    name: str
    pid: int
    started: float

    def record(self) -> dict[str, Any]:
        return {"runner": self.name, "pid": self.pid, "started": self.started}

    def same(self, other: Runner | None) -> bool:
        """The same process (start times are read from ``/proc`` by each stage: compared with a tolerance)."""
        return other is not None and other.pid == self.pid and abs(other.started - self.started) < 0.5


def _clock(epoch: float) -> str:
    """``HH:MM`` for today, ``Mon DD HH:MM`` for an earlier day."""
    when = time.localtime(epoch)
    fmt = "%H:%M" if time.strftime("%Y%m%d", when) == time.strftime("%Y%m%d") else "%b %d %H:%M"
    return time.strftime(fmt, when)


def runner_name(comm: str, cmdline: list[str]) -> str | None:
    """``snakemake``/``dvc`` if a process with this name and command line is one, else None.

    Matches ``snakemake ...`` and ``dvc ...`` (a console script: its process name or ``argv[0]``),
    ``python /path/to/snakemake ...`` and ``python -m snakemake ...``; never a bare substring.
    """
    names = {comm}
    if cmdline:
        program = Path(cmdline[0]).name
        names.add(program)
        if len(cmdline) > 1 and (program.startswith("python") or program in _SHELLS):
            if cmdline[1] == "-m" and len(cmdline) > 2 and program.startswith("python"):
                names.add(cmdline[2].split(".")[0])
            elif not cmdline[1].startswith("-"):  # python /path/to/snakemake, /bin/sh /path/to/dvc
                names.add(Path(cmdline[1]).name)
    for name in RUNNERS:
        if name in names or f"{name}-script.py" in names:
            return name
    return None


def cluster_job(cmdline: list[str]) -> bool:
    """Whether a Snakemake command line runs one job of a cluster run (SLURM, Kubernetes: ``--mode remote``)."""
    return any(arg == "--mode" and value == "remote" for arg, value in zip(cmdline, cmdline[1:])) \
        or "--mode=remote" in cmdline


def find_runner() -> Runner | None:
    """The outermost ``snakemake``/``dvc`` process among this process and its ancestors, if any.

    Outermost, so that a runner's helper subprocesses (Snakemake spawns ``python -m snakemake`` for
    some jobs) count as the runner itself. Any failure to read ``/proc`` means "no runner". A job of a
    cluster run (its Snakemake in ``--mode remote``, on a compute node or beside other jobs on one) has no
    runner of its own: the submitting Snakemake claimed the workspace, and the job takes its stage lock only.
    """
    try:
        import psutil

        chain = [psutil.Process()]
        chain.extend(chain[0].parents())
    except Exception:  # noqa: BLE001 - no /proc, no psutil: behave as if run by hand
        return None
    found = None
    for proc in chain:
        try:
            cmdline = proc.cmdline()
            name = runner_name(proc.name(), cmdline)
            if name == "snakemake" and cluster_job(cmdline):
                return None
            if name:
                found = Runner(name, proc.pid, proc.create_time())
        except Exception:  # noqa: BLE001 - a process that vanished or is not ours to read
            continue
    return found


def alive(pid: int, started: float) -> bool:
    """Whether process ``pid`` exists and is the one that started at ``started`` (not a reused pid)."""
    try:
        import psutil

        return abs(psutil.Process(pid).create_time() - started) < 0.5
    except Exception:  # noqa: BLE001 - gone (NoSuchProcess), or unreadable: treat as gone
        return False


def _read_record(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 1 << 20, 0)
        record = json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write_record(fd: int, record: dict[str, Any]) -> None:
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _lock_dir(workspace: Path) -> Path:
    folder = workspace / LOCK_DIR
    try:
        (folder / "locks").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PipelineError(f"cannot create the lock folder {folder}: {err.strerror}; run the stage in a workspace "
                            "you can write to") from None
    return folder


def claim_workspace(workspace: Path, runner: Runner) -> None:
    """Record ``runner`` as the owner of ``workspace``; PipelineError if another live runner owns it."""
    path = _lock_dir(workspace) / "runner.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + _RECORD_WAIT_S
        while _try_lock(fd, path) is False:
            if time.monotonic() > deadline:
                raise PipelineError(f"{path} stays locked; a stage seems stuck while claiming the workspace "
                                    "(stopped with Ctrl-Z?): end it, then rerun")
            time.sleep(0.05)
        held = _read_record(fd)
        try:
            owner = Runner(str(held["runner"]), int(held["pid"]), float(held["started"]))
        except (KeyError, TypeError, ValueError):
            owner = None
        if owner is not None and not runner.same(owner) and alive(owner.pid, owner.started):
            raise PipelineError(f"this workspace is in use by {owner.name} (pid {owner.pid}) since "
                                f"{_clock(owner.started)}; wait for it or stop it, then rerun")
        if not runner.same(owner):  # none, or a dead one: take it over
            _write_record(fd, runner.record())
    finally:
        os.close(fd)  # also releases the flock


def stage_key(module: str, arguments: dict[str, Any]) -> str:
    """The lock file name of one stage invocation: the stage and its arguments, ``--params`` excluded."""
    values = {k: v for k, v in arguments.items() if k != "params"}
    digest = hashlib.sha256(json.dumps([module, values], sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{module.rsplit('.', 1)[-1]}-{digest}.lock"


def _remove(path: Path) -> None:
    """Remove a temporary file or folder that a killed run left (only names ``atomic_*`` gives them)."""
    if not TEMP_NAME.match(path.name):
        return
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except FileNotFoundError:
        pass


class StageLock:
    """The exclusive lock of one stage invocation in a workspace (see the module docstring).

    ``acquire()`` raises :class:`PipelineError` when a live process holds it; once held, the temporary
    siblings the previous holder left are removed and :meth:`temp_created`/:meth:`temp_gone` keep the
    record of this run's own ones (the hook of :func:`pipeline_lib.artifacts.set_temp_hook`).
    """

    def __init__(self, workspace: Path, module: str, arguments: dict[str, Any], command: str,
                 runner: Runner | None = None) -> None:
        self.path = _lock_dir(workspace) / "locks" / stage_key(module, arguments)
        self.workspace, self.command, self.runner = workspace, command, runner
        self._fd: int | None = None
        self._started = 0.0
        self._temps: list[str] = []

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            locked = _try_lock(fd, self.path)
        except OSError:
            os.close(fd)
            raise
        if locked is False:
            held = _read_record(fd)
            os.close(fd)
            who = f"pid {held['pid']}" if isinstance(held.get("pid"), int) else "another process"
            if isinstance(held.get("started"), (int, float)):
                who += f" since {_clock(float(held['started']))}"
            by = f" under {held['runner']}" if isinstance(held.get("runner"), str) else ""
            raise PipelineError(f"this stage ({held.get('command') or self.command}) is already running in this "
                                f"workspace ({who}{by}); wait for it or stop it, then rerun")
        self._fd, self._started = fd, time.time()
        leftovers = _read_record(fd).get("temps") if locked else None  # unlocked: a live writer's, maybe
        for leftover in leftovers if isinstance(leftovers, list) else []:
            if isinstance(leftover, str):  # the previous holder is gone (we hold its lock): these are debris
                _remove(self.workspace / leftover)  # (an absolute path stays itself)
        self._save()

    def _save(self) -> None:
        if self._fd is None:
            return
        try:
            _write_record(self._fd, {"pid": os.getpid(), "started": self._started, "command": self.command,
                                     "runner": self.runner.name if self.runner else None, "temps": self._temps})
        except OSError:  # best effort (a full disk): the stage's own write reports the problem
            pass

    def _name(self, temp: Path) -> str:
        """``temp`` relative to the workspace when it lies inside (the record survives moving the folder)."""
        full = os.path.abspath(temp)
        inside = os.path.relpath(full, os.path.abspath(self.workspace))
        return full if inside == os.pardir or inside.startswith(os.pardir + os.sep) else inside

    def temp_created(self, temp: Path) -> None:
        """Remember a temporary sibling this run is writing (removed by the next run if this one is killed)."""
        self._temps.append(self._name(temp))
        self._save()

    def temp_gone(self, temp: Path) -> None:
        """Forget a temporary sibling that was renamed onto its artifact or removed."""
        try:
            self._temps.remove(self._name(temp))
        except ValueError:
            return
        self._save()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
