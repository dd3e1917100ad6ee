"""Helpers for the end-to-end tests: project copies and reading Snakemake's plan."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = str(Path(sys.executable).parent)


def env_for(project: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(project)
    env["DVC_NO_ANALYTICS"] = "1"
    env.setdefault("GIT_AUTHOR_NAME", "test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@example.com")
    env.setdefault("GIT_COMMITTER_NAME", "test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@example.com")
    return env


def run(cmd: list[str] | str, cwd: Path, check: bool = True, timeout: int = 900,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env={**env_for(cwd), **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, shell=isinstance(cmd, str))
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def copy_project(dest: Path, **overrides: Any) -> Path:
    """Copy the project's source files (what git would commit) to ``dest`` as a fresh git repo."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    for rel in listed:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params.update(overrides)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run([sys.executable, "-m", "pipeline_lib.dag"], dest)
    run("git init -q && git add -A && git commit -qm init", dest)
    return dest


def snakemake_plan(project: Path, *targets: str, force: bool = False) -> dict[str, dict[str, Any]]:
    """Jobs Snakemake would run: stage name -> {rule, inputs, outputs, cmd, wildcards} (parsed from a dry run).

    Rules are per stage kind; a job is named by its log, ``logs/<stage>.log``, as in dvc.yaml."""
    args = ["snakemake", "-n", "-p", "--cores", "1", *(["-F"] if force else []), *targets]
    out = run(args, project).stdout
    blocks: list[dict[str, Any]] = []
    for line in out.splitlines():
        if m := re.match(r"^(?:local)?rule (\S+):$", line):
            blocks.append({"rule": m.group(1), "inputs": [], "outputs": [], "cmd": None, "log": None,
                           "wildcards": {}})
        elif blocks and (m := re.match(r"^\s+(input|output|log|wildcards): (.*)$", line)):
            items = [p.strip() for p in m.group(2).split(",")]
            if m.group(1) == "log":
                blocks[-1]["log"] = items[0]
            elif m.group(1) == "wildcards":
                blocks[-1]["wildcards"] = dict(item.split("=", 1) for item in items)
            else:
                blocks[-1][m.group(1) + "s"] = items
        elif blocks and line.startswith("Shell command: "):
            blocks[-1]["cmd"] = line.removeprefix("Shell command: ").split(" 2>&1 | tee ")[0]
    return {Path(b["log"]).stem: b for b in blocks if b["rule"] != "all"}


def record_modules(project: Path) -> dict[str, str]:
    """Environment that makes every stage record the project modules it loads (see pipeline_lib.cli)."""
    return {"PIPELINE_RECORD_MODULES": str(project / ".modules")}


def undeclared_modules(project: Path) -> dict[str, list[str]]:
    """Per stage run in ``project`` with :func:`record_modules`: loaded project modules missing from its deps."""
    import json

    from pipeline_lib.codedeps import module_file
    from pipeline_lib.config import load_params
    from pipeline_lib.dag import build_stages

    stages = {s.cmd: s for s in build_stages(load_params(project / "params.yaml"))}
    missing: dict[str, list[str]] = {}
    records = sorted((project / ".modules").glob("*.json"))
    assert records, "no stage recorded its modules"
    for record in records:
        seen = json.loads(record.read_text())
        stage = stages[seen["cmd"]]
        files = {module_file(m).relative_to(ROOT).as_posix() for m in seen["modules"] if module_file(m)}
        if files - set(stage.deps):
            missing[stage.name] = sorted(files - set(stage.deps))
    return missing


def stages_using(project: Path, source_file: str) -> set[str]:
    """Stages (of the dvc_experiments) that list ``source_file`` among their code dependencies."""
    from pipeline_lib.config import load_params
    from pipeline_lib.dag import build_stages

    params = load_params(project / "params.yaml")
    return {s.name for s in build_stages(params, params.dvc_experiments) if source_file in s.deps}


def downstream(project: Path, names: set[str]) -> set[str]:
    """``names`` and every stage of the dvc_experiments that (transitively) reads their outputs."""
    from pipeline_lib.config import load_params
    from pipeline_lib.dag import build_stages

    params = load_params(project / "params.yaml")
    stages = build_stages(params, params.dvc_experiments)
    found = set(names)
    changed = True
    while changed:
        outs = {o for s in stages if s.name in found for o in s.outs}
        more = {s.name for s in stages if s.name not in found and outs & set(s.deps)}
        found |= more
        changed = bool(more)
    return found


#: a user's own segmentation domain for the end-to-end tests (:func:`write_folder_domain`): 11 classes of its own
FOLDER_CLASSES = ["road", "lane marking", "curb", "grass", "tree", "house", "sky", "car", "bike", "person", "sign"]
FOLDER_IDS = list(range(10, 21))  # label-PNG value of each class; 0 is unlabelled
FOLDER_SEQUENCES = ("seq01", "seq02", "seq07")


def folder_frame(rng: Any, tint: Any, h: int = 64, w: int = 96) -> tuple[Any, Any]:
    """Horizontal bands of the 11 classes in a random order, a few unlabelled pixels, class colours + ``tint``
    (uint8 image, uint8 label PNG values)."""
    import numpy as np

    order = rng.permutation(len(FOLDER_CLASSES))
    bands = np.linspace(0, h, len(FOLDER_CLASSES) + 1).astype(int)
    train_ids = np.zeros((h, w), np.int64)
    for k, cls in enumerate(order):
        train_ids[bands[k]:bands[k + 1]] = cls
    labels = np.asarray(FOLDER_IDS, np.uint8)[train_ids]
    labels[:, :2] = 0  # unlabelled border
    base = np.stack([(train_ids * 23) % 256, (train_ids * 71) % 256, (train_ids * 131) % 256], -1)
    image = np.clip(base + tint + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    return image, labels


def write_folder_domain(root: Path, tint: tuple[int, int, int], seed: int, per_sequence: int = 4) -> None:
    """``root/images/<seq>_<i>.png`` + ``root/labels/<seq>_<i>.png``: ``per_sequence`` frames of each of
    :data:`FOLDER_SEQUENCES`."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    for seq in FOLDER_SEQUENCES:
        for i in range(per_sequence):
            image, labels = folder_frame(rng, np.asarray(tint))
            Image.fromarray(image).save(root / "images" / f"{seq}_{i:03d}.png")
            Image.fromarray(labels).save(root / "labels" / f"{seq}_{i:03d}.png")
