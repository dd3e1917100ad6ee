"""Stand-ins for the SLURM commands that snakemake-executor-plugin-slurm calls (tests/test_slurm_profile.py).

Each executable in this folder (``sbatch``, ``sacct``, ...) is a wrapper: ``standin.py <command> <args>``.
Put the folder first on PATH and set ``STANDIN_SLURM_LOG`` to a file (not named SLURM_*: the jobstep plugin
drops SLURM_* variables before it calls srun). Every ``sbatch`` call appends one JSON line there
({"event": "submit", "job_id", "argv", "line", "options", "script"}), runs the job at once on this machine,
then appends {"event": "end", "job_id", "state", "exit_code"}. Synchronously: the job's processes stay
descendants of the Snakemake that submitted it, which pipeline_lib/locks.py's runner check expects on one host.
``sacct`` and ``squeue`` answer from those lines in the formats the plugin parses; ``srun`` records its argv
({"event": "srun", "job_id", "argv"}), drops its options and runs the command. No queue, no limits.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

#: sbatch options without a value (everything else given as ``--opt value`` takes the next word)
_FLAGS = {"--parsable", "--requeue", "--no-requeue", "--exclusive", "--export=ALL"}
FIRST_JOB_ID = 1001


def _log() -> Path:
    try:
        return Path(os.environ["STANDIN_SLURM_LOG"])
    except KeyError:
        sys.exit("slurm stand-in: set STANDIN_SLURM_LOG to the file that records the submissions")


def _append(record: dict) -> None:
    with open(_log(), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # one writer at a time, so job ids and lines never interleave
        f.write(json.dumps(record) + "\n")


def _records() -> list[dict]:
    path = _log()
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _parse(argv: list[str]) -> tuple[dict[str, str], str | None]:
    """sbatch's options as {name: value} (flags map to "") and the batch script's path, if one is given."""
    options: dict[str, str] = {}
    script = None
    words = iter(argv)
    for word in words:
        if word in _FLAGS:
            options[word.split("=")[0]] = word.partition("=")[2]
        elif word.startswith("-") and "=" in word:
            name, _, value = word.partition("=")
            options[name] = value
        elif word.startswith("-"):
            options[word] = next(words, "")
        else:
            script = word
    return options, script


def sbatch(argv: list[str]) -> int:
    options, script_path = _parse(argv)
    script = options.get("--wrap")
    if script is None:  # a batch script: a file, or /dev/stdin (the plugin's pass_command_as_script)
        script = sys.stdin.read() if script_path in (None, "-", "/dev/stdin") else Path(script_path).read_text()
    log = _log()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a+") as f:  # the job id: one more than the submissions so far, under the log's lock
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        job_id = FIRST_JOB_ID + sum('"event": "submit"' in line for line in f)
        f.write(json.dumps({"event": "submit", "job_id": job_id, "argv": argv, "line": shlex.join(["sbatch", *argv]),
                            "options": options, "script": script}) + "\n")
    workdir = options.get("-D") or options.get("--chdir") or os.getcwd()
    output = (options.get("--output") or options.get("-o") or f"slurm-{job_id}.out").replace("%j", str(job_id))
    gpus = options.get("--gpus") or options.get("-G")
    env = {**os.environ, "SLURM_JOB_ID": str(job_id), "SLURM_JOBID": str(job_id),
           "SLURM_JOB_NAME": options.get("--job-name", ""), "SLURM_SUBMIT_DIR": os.getcwd(),
           "SLURM_CPUS_PER_TASK": options.get("--cpus-per-task", "1"), "SLURM_NTASKS": options.get("--ntasks", "1"),
           **({"SLURM_GPUS": gpus} if gpus else {}), **({"SLURM_MEM_PER_NODE": options["--mem"]}
                                                       if "--mem" in options else {})}
    Path(workdir, output).parent.mkdir(parents=True, exist_ok=True)
    with open(Path(workdir, output), "w") as out:
        code = subprocess.run(["/bin/sh", "-c", script], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                              stdout=out, stderr=subprocess.STDOUT).returncode
    _append({"event": "end", "job_id": job_id, "state": "COMPLETED" if code == 0 else "FAILED", "exit_code": code})
    print(job_id if "--parsable" in options else f"Submitted batch job {job_id}")
    return 0


def _states(name: str | None) -> list[tuple[int, str]]:
    """(job id, state) of every recorded job, of job name ``name`` only if given."""
    names, states = {}, {}
    for record in _records():
        if record["event"] == "srun":
            continue
        if record["event"] == "submit":
            names[record["job_id"]] = record["options"].get("--job-name")
            states[record["job_id"]] = "RUNNING"
        else:
            states[record["job_id"]] = record["state"]
    return [(j, s) for j, s in states.items() if name is None or names[j] == name]


def _option(argv: list[str], name: str) -> str | None:
    for i, word in enumerate(argv):
        if word == name and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(name + "="):
            return word.partition("=")[2]
    return None


def sacct(argv: list[str]) -> int:
    if "-o" in argv or "-nu" in argv:  # the plugin guessing an account (`sacct -nu <user> -o Account%256`)
        return 0  # no past jobs: it then submits without -A
    for job_id, state in _states(_option(argv, "--name")):  # `sacct -X --parsable2 --format=JobIdRaw,State`
        print(f"{job_id}|{state}")
    return 0


def squeue(argv: list[str]) -> int:  # `squeue --format=%i|%T --states=all --noheader --name <run uuid>`
    for job_id, state in _states(_option(argv, "--name")):
        print(f"{job_id}|{state}")
    return 0


def sinfo(argv: list[str]) -> int:  # `sinfo -o %P`: the partitions, the default one starred
    print("PARTITION\nstandin*")
    return 0


def sacctmgr(argv: list[str]) -> int:  # `sacctmgr -n -s list user <user> format=account%256`
    print("standin")
    return 0


def scontrol(argv: list[str]) -> int:  # `scontrol show config`: MaxArraySize and MinJobAge are read
    print("Configuration data as of standin\nMaxArraySize            = 1001\nMinJobAge               = 300 sec")
    return 0


def scancel(argv: list[str]) -> int:  # jobs have ended by the time sbatch returns: nothing to cancel
    return 0


def srun(argv: list[str]) -> int:
    """`srun -n1 --cpu-bind=q --cpus-per-task=1 --gpus=1 --nodes=1 <command...>`: run the command here."""
    _append({"event": "srun", "job_id": int(os.environ.get("SLURM_JOB_ID", 0)), "argv": argv})
    while argv and argv[0].startswith("-"):  # the plugin writes every option as -n1 / --name=value
        argv = argv[1:]
    if not argv:
        sys.exit("srun stand-in: no command")
    os.execvp(argv[0], argv)  # replaces this process, as a job step would run in the allocation


COMMANDS = {f.__name__: f for f in (sbatch, sacct, squeue, sinfo, sacctmgr, scontrol, scancel, srun)}


def main(command: str, argv: list[str]) -> None:
    sys.exit(COMMANDS[command](argv))


if __name__ == "__main__":  # `standin.py <command> <args...>`, as the wrappers call it
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: standin.py {{{','.join(COMMANDS)}}} [args...]")
    main(sys.argv[1], sys.argv[2:])
