"""Shared plumbing for the thin stage CLIs in ``stages/``.

``run_stage(parser, main)`` takes the workspace's locks (:mod:`pipeline_lib.locks`: one runner per
workspace, one process per stage invocation; debris of a killed earlier run of the stage is removed),
loads and validates params.yaml and calls ``main(args, params)``. What can go wrong for a user becomes
one line on stderr, never a traceback: a :class:`PipelineError` or an I/O error (permissions, a full
disk: the line names the path and the fix) exits with status 2, Ctrl-C with 130, SIGTERM with 143.
Outputs are written atomically (:mod:`pipeline_lib.artifacts`), so a stopped stage leaves none half-written.

Every stage also runs as several processes under ``torchrun --nproc_per_node N -m stages.<name> ...``:
``run_stage`` joins the process group (:mod:`pipeline_lib.distributed`), rank 0 alone takes the locks (the
others write nothing; a lock it cannot take stops all of them with its line), and at the end every process
waits for the others, so none leaves while rank 0 still writes.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import logging
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import torch

from pipeline_lib import distributed
from pipeline_lib.artifacts import atomic_path, partial_path, publish_series, set_temp_hook
from pipeline_lib.config import ExperimentParams, Params, load_params
from pipeline_lib.errors import PipelineError
from pipeline_lib.locks import StageLock, claim_workspace, find_runner
from pipeline_lib.paths import history, series

if TYPE_CHECKING:  # a type only: the stages that train import the training module, prepare and evaluate do not
    from pipeline_lib.training import TrainResult


def stage_parser(description: str | None, *, experiment: bool = False, seed: bool = False,
                 variants: Iterable[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    if experiment:
        parser.add_argument("--experiment", required=True)
    if seed:
        parser.add_argument("--seed", type=int, required=True)
    if variants:
        parser.add_argument("--variant", required=True, choices=sorted(set(variants)))
    return parser


#: set to a folder, every stage writes there which project modules it loaded (the e2e tests check them)
RECORD_MODULES = "PIPELINE_RECORD_MODULES"


def _record_modules(folder: str, cmd: str) -> None:
    """Write ``{"cmd": <this stage's DAG command>, "modules": [...]}``: the project modules loaded."""
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("pipeline_lib", "stages"))
    out = Path(folder) / (hashlib.sha256(cmd.encode()).hexdigest()[:16] + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cmd": cmd, "modules": loaded}))


#: exit statuses of a stage stopped by Ctrl-C (SIGINT) and by SIGTERM, as a shell reports those signals
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


class Terminated(BaseException):
    """SIGTERM, raised in the stage's main thread so that ``finally`` blocks remove temporary files."""


def _say(line: str) -> None:
    """Print one line on stderr; under ``... | tee log`` Ctrl-C may have closed the pipe already."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def io_error_line(err: OSError) -> str:
    """One line for an I/O error: what failed on which path, and the fix."""
    where = os.fsdecode(err.filename) if isinstance(err.filename, (str, bytes, os.PathLike)) else None
    target = where or "an output (the path was not reported)"
    folder = (os.path.dirname(where.rstrip(os.sep)) or ".") if where else "the output folders"
    if err.errno in (errno.EACCES, errno.EPERM):
        fix = f"chmod u+rwx {shlex.quote(folder)}" if where else "chmod u+rwx <folder>"
        return (f"permission denied on {target}; give your user write access to {folder} "
                f"(e.g. {fix}, or fix its owner), then rerun")
    if err.errno == errno.EROFS:
        return f"cannot write {target}: read-only file system; run the pipeline in a writable workspace, then rerun"
    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        what = "no space left on the device" if err.errno == errno.ENOSPC else "disk quota exceeded"
        return (f"{what} while writing {target}; free space there (delete outputs you no longer need, "
                "`dvc gc`) or move the workspace to a larger disk, then rerun")
    code = errno.errorcode.get(err.errno or 0, "")
    return f"{target}: {err.strerror or err}{f' ({code})' if code else ''}; fix that, then rerun"


def _stage_module(main: Callable[..., Any]) -> str:
    """``stages.<name>`` of the running stage (``main``'s module, or what ``python -m`` ran)."""
    module = getattr(main, "__module__", None) or "__main__"
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = getattr(spec, "name", None) or Path(sys.argv[0]).stem or "stage"
    return module


def _on_sigterm(owner: int) -> Callable[[int, Any], None]:
    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
        if os.getpid() != owner:  # a forked helper (a DataLoader worker): die as without the handler
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated()
    return handler


def _lock_stage(workspace: Path, module: str, args: argparse.Namespace, command: str) -> StageLock:
    """Claim the workspace for the runner, if any (one runner per workspace; a stage run by hand takes
    only its stage lock), and take this stage's lock, which also removes what a killed earlier run left."""
    runner = find_runner()
    if runner is not None:
        claim_workspace(workspace, runner)
    lock = StageLock(workspace, module, vars(args), command, runner)
    lock.acquire()
    return lock


def run_stage(parser: argparse.ArgumentParser, main: Callable[[argparse.Namespace, Params], None],
              argv: list[str] | None = None) -> int:
    """Run one stage: locks, params, ``main(args, params)``; returns the exit status (see the module doc)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    args = parser.parse_args(argv)
    module = _stage_module(main)
    words = ["python3", "-m", module, *(sys.argv[1:] if argv is None else argv)]
    command = shlex.join(words)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    lock: StageLock | None = None
    hooked, previous_hook = False, None
    try:
        if in_main_thread:
            signal.signal(signal.SIGTERM, _on_sigterm(os.getpid()))
        distributed.init()
        lock = distributed.on_main(lambda: _lock_stage(Path.cwd(), module, args, command))
        if lock is not None:  # rank 0: the only process that writes, so the only one with temporary files
            held = lock
            previous_hook = set_temp_hook(lambda tmp, alive: held.temp_created(tmp) if alive else held.temp_gone(tmp))
            hooked = True
        params = load_params(args.params, sections="lazy")  # a method's section when the stage reads it
        torch.set_num_threads(params.threads_per_job)  # same threads under both runners -> same numbers
        main(args, params)
        distributed.barrier()  # rank 0's last writes are done before any process leaves
    except PipelineError as err:
        _say(f"error: {err}")
        return 2
    except OSError as err:
        _say(f"error: {io_error_line(err)}")
        return 2
    except KeyboardInterrupt:
        _say("error: interrupted (Ctrl-C); unfinished outputs were discarded: rerun the stage to continue")
        return EXIT_INTERRUPTED
    except Terminated:
        _say("error: terminated (SIGTERM); unfinished outputs were discarded: rerun the stage to continue")
        return EXIT_TERMINATED
    finally:
        if hooked:
            set_temp_hook(previous_hook)
        if lock is not None:
            lock.release()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm if previous_sigterm is not None else signal.SIG_DFL)
        distributed.teardown()
    if os.environ.get(RECORD_MODULES) and distributed.is_main():
        _record_modules(os.environ[RECORD_MODULES], " ".join(words))  # as the DAG writes the command
    return 0


def require(name: str, known: Any, what: str) -> None:
    if name not in known:
        raise PipelineError(f"unknown {what} {name!r} (known: {', '.join(known)})")


def experiment(params: Params, name: str) -> ExperimentParams:
    require(name, params.experiments, "experiment")
    return params.experiments[name]


def finish_training(out: Path, result: TrainResult) -> None:
    """Write the per-epoch history next to the checkpoint, move the checkpoint series (if the run kept one) into
    place and drop the resume file (rank 0 only)."""
    if not distributed.is_main():
        return
    from pipeline_lib.history import write_history  # imported here: pandas costs every stage process that loads it
    with atomic_path(history(out)) as tmp:
        write_history(tmp, result.history)
    publish_series(out, series(out))
    partial_path(out).unlink(missing_ok=True)
