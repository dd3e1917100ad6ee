"""Faults in the team's shared DVC remote (issue 35): a byte flipped in a stored checkpoint is caught when it is
pulled, and nothing is left in the workspace for a stage to read; two clones pushing the same run at the same time
both succeed and a third pulls a complete, verified set. Plain DVC repositories with the project's own
`.dvc/config` (its remote `local` re-hashes what it downloads: `verify = true`) and a folder remote."""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline_helpers import ROOT, env_for, run
from remote_servers import folder_objects

pytestmark = pytest.mark.slow

#: what a run leaves for DVC to share: a checkpoint and its history, a prepared domain
FILES = {"models/supervised/mnist5k-lenet/seed0.pt": 200_000, "models/supervised/mnist5k-lenet/seed0.history.csv": 300,
         "data/domains/mnist5k.npz": 500_000}


def _write_run(repo: Path, seed: int) -> dict[str, str]:
    """The run's files (the same bytes for the same ``seed``), tracked by DVC; their hashes."""
    rng = random.Random(seed)
    hashes = {}
    for rel, size in FILES.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        hashes[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    run(["dvc", "add", "-q", *FILES], repo)
    run("git add -A && git commit -qm run", repo)
    return hashes


def _project(path: Path, remote: Path) -> Path:
    """A git + DVC repository with the project's DVC config, its remote `local` pointed at ``remote``."""
    path.mkdir(parents=True)
    run("git init -q && dvc init -q", path)
    shutil.copy(ROOT / ".dvc/config", path / ".dvc/config")
    _point(path, remote)
    run("git add -A && git commit -qm init", path)
    return path


def _point(repo: Path, remote: Path) -> None:
    run(["dvc", "remote", "modify", "--local", "local", "url", str(remote)], repo)


def _clone(origin: Path, dest: Path, remote: Path) -> Path:
    run(["git", "clone", "-q", str(origin), str(dest)], origin.parent)
    _point(dest, remote)
    return dest


def test_the_projects_remote_rehashes_what_it_downloads():
    shown = run(["dvc", "config", "remote.local.verify"], ROOT).stdout.strip()
    assert shown == "true"


def _flip_byte(data: bytes) -> bytes:
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01  # one bit of one byte, the size unchanged
    return bytes(flipped)


def test_a_byte_flipped_in_a_stored_checkpoint_is_caught_at_pull_and_not_used(tmp_path):
    remote = tmp_path / "remote"
    origin = _project(tmp_path / "origin", remote)
    hashes = _write_run(origin, seed=0)
    run(["dvc", "push", "-q"], origin)
    checkpoint = next(iter(FILES))
    md5 = yaml.safe_load((origin / f"{checkpoint}.dvc").read_text())["outs"][0]["md5"]
    stored = remote / "files/md5" / md5[:2] / md5[2:]
    stored.chmod(0o644)
    stored.write_bytes(_flip_byte(stored.read_bytes()))

    clone = _clone(origin, tmp_path / "clone", remote)
    proc = run(["dvc", "pull"], clone, check=False)
    assert proc.returncode != 0 and checkpoint in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (clone / checkpoint).exists()  # nothing downstream can read it
    assert not any(p.is_file() for p in (clone / ".dvc/cache").rglob(md5[2:]))  # nor is it cached as good
    for rel, digest in hashes.items():  # the intact objects arrive whole
        if rel != checkpoint:
            assert hashlib.sha256((clone / rel).read_bytes()).hexdigest() == digest
    status = run(["dvc", "status", "--json"], clone).stdout
    assert checkpoint in status  # DVC reports it missing: a rerun of its stage, or a push of a good copy, is due


def test_two_clones_pushing_the_same_run_at_once_both_succeed_and_a_third_pulls_it_whole(tmp_path):
    remote = tmp_path / "remote"
    origin = _project(tmp_path / "origin", remote)
    a, b = _clone(origin, tmp_path / "a", remote), _clone(origin, tmp_path / "b", remote)
    hashes = _write_run(a, seed=1)
    assert _write_run(b, seed=1) == hashes  # the same experiment, the same outputs
    pushes = [subprocess.Popen(["dvc", "push"], cwd=repo, env=env_for(repo), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True) for repo in (a, b)]
    outputs = [p.communicate(timeout=300)[0] for p in pushes]
    assert [p.returncode for p in pushes] == [0, 0], outputs
    assert folder_objects(remote) == {p for p in folder_objects(a / ".dvc/cache") if p.startswith("files/")}

    run(["git", "pull", "-q", str(a), "HEAD"], origin)
    third = _clone(origin, tmp_path / "third", remote)
    run(["dvc", "pull"], third)
    assert {rel: hashlib.sha256((third / rel).read_bytes()).hexdigest() for rel in FILES} == hashes
    assert run(["dvc", "status", "--json"], third).stdout.strip() == "{}"
