"""At most one stage per GPU on this machine, whichever runner started it: GPU slots.

``snakemake --cores 8`` starts up to 8 jobs at once, and ``dvc exp run --run-all --jobs N`` (or
``dvc queue start --jobs N``) runs N queued experiments side by side; neither knows which jobs will use CUDA
(``device: auto`` trains on the GPU whenever there is one, whatever ``resources.rules.<rule>.gpu`` says). So the
stage itself takes a GPU when it decides to use one: :func:`pipeline_lib.runtime.resolve_device` calls
:func:`claim` before its first CUDA call. There is one slot file per GPU, ``gpu<i>.lock`` in
:func:`lock_dir` (machine-wide, shared by every workspace and user); a stage holds an exclusive ``flock`` on one
free slot for the rest of its run and sees only that GPU (``CUDA_VISIBLE_DEVICES``). When every slot is held it
logs one line, ``waiting for a free GPU``, and waits. The kernel drops the lock when the stage exits or is killed,
so a dead stage never keeps a GPU.

A stage under ``torchrun --nproc_per_node K`` (a rule's ``gpu`` resource above 1) uses GPUs 0..K-1, one per
process: its rank 0 takes exactly those K slots, in order (so two such jobs never each hold part of the other's
GPUs), and the other processes follow it at the first collective.

How many GPUs (:func:`visible_gpus`), without initialising CUDA (which would fix the visible devices before the
stage picks one, and costs a ``torch`` import in the Snakefile): ``PIPELINE_GPUS`` if set (0 turns the slots off;
tests fake a count with it), else the entries of ``CUDA_VISIBLE_DEVICES`` if set, else the NVIDIA driver's
``/proc/driver/nvidia/gpus/`` entries, else ``nvidia-smi -L``. No GPU, no slot: CPU stages never wait. Inside a
SLURM job (``SLURM_JOB_ID``) the scheduler has allocated the GPUs already, and the slots are off.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from pipeline_lib.errors import PipelineError

#: how many GPUs the slots share out (overrides detection; 0: no slots)
GPUS_ENV = "PIPELINE_GPUS"
#: the folder of the slot files (default: ``<temp dir>/pipeline-gpus``)
LOCK_DIR_ENV = "PIPELINE_GPU_LOCKS"
#: seconds between two looks at the slots while all are held
POLL_S = 0.5
_NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")
_log = logging.getLogger(__name__)


def visible_gpus() -> list[str]:
    """The GPUs stages may use, as ``CUDA_VISIBLE_DEVICES`` names them (``["0", "1"]``), found without CUDA."""
    given = os.environ.get(GPUS_ENV)
    listed = _cuda_visible()
    if given is not None:
        try:
            count = int(given)
            if count < 0:
                raise ValueError
        except ValueError:
            raise PipelineError(f"{GPUS_ENV}={given!r} is not a GPU count; set it to a whole number >= 0 "
                                "(0: stages take no GPU slot) or unset it") from None
        return listed[:count] if listed is not None and len(listed) >= count else [str(i) for i in range(count)]
    if listed is not None:
        return listed
    return [str(i) for i in range(_detected())]


def _cuda_visible() -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES``'s entries up to the first invalid one, as CUDA reads it (-1 hides every GPU); None
    where it is not set."""
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is None:
        return None
    listed: list[str] = []
    for entry in (e.strip() for e in cvd.split(",")):
        if not entry or entry.startswith("-"):
            break
        listed.append(entry)
    return listed


def check_device(setting: str) -> None:
    """Refuse ``device: cuda`` on a machine with no GPU that CUDA would see (``CUDA_VISIBLE_DEVICES``, else the
    driver), before any job runs (the Snakefile, for runs on this machine, and ``python -m pipeline_lib.dag
    --check``). ``auto`` and ``cpu`` always run; ``PIPELINE_GPUS`` (how many slots, 0: none) plays no part. Without
    this, each stage would fail at its start, and Snakemake's cleanup of the failed job would delete the output a
    previous run had completed."""
    listed = _cuda_visible()
    if setting == "cuda" and (len(listed) if listed is not None else _detected()) == 0:
        raise PipelineError("device: cuda, but this machine has no visible NVIDIA GPU (no driver entries, "
                            "nvidia-smi lists none, or CUDA_VISIBLE_DEVICES hides them): set device: auto or cpu in "
                            "params.yaml, or run on a GPU machine")


def _detected() -> int:
    """NVIDIA GPUs on this machine: the driver's ``/proc`` entries, else ``nvidia-smi -L``'s lines; 0 if neither."""
    try:
        found = sum(1 for _ in _NVIDIA_PROC.iterdir())
        if found:
            return found
    except OSError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def lock_dir() -> Path:
    """The slot files' folder, made writable for every user (sticky, like /tmp)."""
    folder = Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "pipeline-gpus")
    if not folder.is_dir():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if LOCK_DIR_ENV not in os.environ:
                os.chmod(folder, 0o1777)
        except OSError as err:
            raise PipelineError(f"cannot create the GPU slot folder {folder}: {err.strerror}; set {LOCK_DIR_ENV} "
                                f"to a folder you can write to, or {GPUS_ENV}=0 to turn the slots off") from None
    return folder


def _open(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # another user's slot file: a read-only descriptor locks as well
        return os.open(path, os.O_RDONLY)
    try:
        os.fchmod(fd, 0o666)
    except OSError:
        pass
    return fd


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as err:
        if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return True  # no locks on this file system: behave as without slots
        raise
    return True


class Slots:
    """The GPU slots this process holds (their names as ``CUDA_VISIBLE_DEVICES`` gives them)."""

    def __init__(self, names: list[str], fds: list[int], positions: list[int] | None = None) -> None:
        self.names, self._fds = names, fds
        #: where each slot is among the GPUs CUDA saw before the slot narrowed them (its torch device index then)
        self.positions = positions if positions is not None else list(range(len(names)))
        self.visible: str | None = None  # CUDA_VISIBLE_DEVICES before the slot narrowed it (None: unset)

    def release(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


def _slot_file(folder: Path, name: str) -> Path:
    return folder / f"gpu{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.lock"


def acquire(gpus: list[str], wanted: int | None = None, poll_s: float = POLL_S) -> Slots:
    """One free slot of ``gpus`` (``wanted`` None), or exactly the first ``wanted`` of them, in order; waits while
    they are held, saying so once."""
    folder = lock_dir()
    fds = [_open(_slot_file(folder, name)) for name in gpus]
    waited, started = False, time.monotonic()
    try:
        if wanted is not None:
            for fd in fds[:wanted]:  # in order: no two multi-GPU jobs each hold a part of the other's GPUs
                while not _try(fd):
                    waited = waited or _waiting(len(gpus), folder)
                    time.sleep(poll_s)
            chosen = list(range(wanted))
        else:
            chosen = []
            while not chosen:
                chosen = next(([i] for i, fd in enumerate(fds) if _try(fd)), [])
                if not chosen:
                    waited = waited or _waiting(len(gpus), folder)
                    time.sleep(poll_s)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    for i, fd in enumerate(fds):
        if i not in chosen:
            os.close(fd)
    names = [gpus[i] for i in chosen]
    if waited:
        _log.info("got GPU %s after %.0f s", ",".join(names), time.monotonic() - started)
    return Slots(names, [fds[i] for i in chosen], chosen)


def _waiting(count: int, folder: Path) -> bool:
    _log.info("waiting for a free GPU: all %d are in use by other stages (slots in %s; %s=N sets how many)",
              count, folder, GPUS_ENV)
    return True


_held: Slots | None = None


def claim() -> Slots | None:
    """Take this stage's GPU slot(s) before it first touches CUDA (idempotent; kept until the process exits or
    :func:`release`): one free GPU, made the only visible one; under ``torchrun``, rank 0 takes GPUs
    0..LOCAL_WORLD_SIZE-1 and the other ranks none. None where there are no slots (no GPU, a SLURM job)."""
    global _held
    if _held is not None:
        return _held
    if os.environ.get("SLURM_JOB_ID") and GPUS_ENV not in os.environ:
        return None
    gpus = visible_gpus()
    if not gpus:
        return None
    world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    if world > 1:
        if int(os.environ.get("LOCAL_RANK", "0")) != 0:
            return None
        _held = acquire(gpus, wanted=min(world, len(gpus)))
    else:
        _held = acquire(gpus)
        _held.visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        os.environ["CUDA_VISIBLE_DEVICES"] = _held.names[0]
    return _held


def release() -> None:
    """Give the slot(s) back (a stage that found no usable CUDA after all)."""
    global _held
    if _held is None:
        return
    _held.release()
    if len(_held.names) == 1 and os.environ.get("CUDA_VISIBLE_DEVICES") == _held.names[0]:
        if _held.visible is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = _held.visible
    _held = None
