"""A user's dataset folder is tracked by both runners: editing a frame in place or adding one makes the domain's
prepare and what follows out of date under `snakemake -n` and `dvc status` / `dvc repro`; touching a frame (same
bytes) makes nothing out of date. Tiny profile, one folder domain (outside the project, as a user's data is) with 6
frames, its prepare and the source-only training that reads it. Removing or renaming a frame changes the folder's
manifest just as adding one does (tests/test_manifest.py), so the pipeline's view of it is tested once, here."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from pipeline_helpers import (FOLDER_CLASSES, FOLDER_IDS, copy_project, folder_frame, run, snakemake_plan,
                              write_folder_domain)
from pipeline_lib import paths

pytestmark = pytest.mark.slow

PREPARE = "prepare__own_a"
INDEX = "data/domains/own_a.json"
MODEL = str(paths.supervised_model("own_a", "street", 0))
TRAIN = "train_supervised__own_a__street__s0"


def _record(project: Path) -> None:
    """Record the run in dvc.lock and put the outputs' times back in DAG order (as `make record` does)."""
    run(["dvc", "commit", "--force", PREPARE, TRAIN], project)
    run(["snakemake", "--cores", "1", "--touch", "--forceall", MODEL], project)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("raw")
    project = copy_project(tmp / "p", profile="tiny")
    folder = {"classes": FOLDER_CLASSES, "ids": FOLDER_IDS, "ignore_id": 0, "test_glob": "seq07_*"}
    params = yaml.safe_load((project / "params.yaml").read_text())
    write_folder_domain(tmp / "data/own_a", (0, 0, 0), seed=1, per_sequence=2)
    params["seeds"] = [0]
    params["data"]["folders"].update({"own_a": {"root": str(tmp / "data/own_a"), **folder},
                                      "own_b": {"root": str(tmp / "data/own_b"), **folder}})  # never prepared here
    params["experiments"]["own"] = {"source": "own_a", "target": "own_b", "backbone": "street",
                                    "methods": ["source_only"]}
    params["dvc_experiments"] = ["own"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run([sys.executable, "-m", "pipeline_lib.dag"], project)
    run("git add -A && git commit -qm own", project)
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert str(tmp / "data/own_a") in stages[PREPARE]["deps"] and INDEX in stages[TRAIN]["deps"]
    run(["snakemake", "--cores", "2", MODEL], project)
    _record(project)
    return project


def _frames(project: Path) -> Path:
    return Path(yaml.safe_load((project / "params.yaml").read_text())["data"]["folders"]["own_a"]["root"])


def _stale(project: Path) -> tuple[set[str], set[str]]:
    """(jobs `snakemake -n` plans for the model, stages `dvc status` reports of prepare and the training)."""
    planned = set(snakemake_plan(project, MODEL))
    status = json.loads(run(["dvc", "status", "--json", PREPARE, TRAIN], project).stdout or "{}")
    return planned, set(status)


def _content(project: Path) -> str:
    return json.loads((project / INDEX).read_text())["content"]


def test_the_recorded_run_is_current_under_both_runners(project):
    assert _stale(project) == (set(), set())
    assert json.loads((project / "data/manifests/own_a.json").read_text())["files"] == 12


def test_touching_a_frame_makes_nothing_out_of_date(project):
    frame = _frames(project) / "images/seq01_000.png"
    os.utime(frame)  # now: newer than every output
    assert _stale(project) == (set(), set())


def test_editing_a_frame_in_place_reruns_prepare_and_the_training_under_dvc(project):
    before = _content(project)
    frame = _frames(project) / "images/seq01_001.png"
    pixels = np.asarray(Image.open(frame)).copy()
    pixels[:8, :8] = 255 - pixels[:8, :8]
    Image.fromarray(pixels).save(frame)  # the same name, other pixels
    assert _stale(project) == ({PREPARE, TRAIN}, {PREPARE})
    log = run(["dvc", "repro", TRAIN], project).stdout
    assert f"Running stage '{PREPARE}'" in log and f"Running stage '{TRAIN}'" in log  # the index changed
    assert _content(project) != before
    run(["snakemake", "--cores", "1", "--touch", "--forceall", MODEL], project)
    assert _stale(project) == (set(), set())


def test_adding_a_frame_reruns_prepare_and_the_training_under_snakemake(project):
    before, trained = _content(project), json.loads((project / INDEX).read_text())["counts"]["train"]
    root = _frames(project)
    image, labels = folder_frame(np.random.default_rng(9), np.zeros(3))
    Image.fromarray(image).save(root / "images/seq02_005.png")
    Image.fromarray(labels).save(root / "labels/seq02_005.png")
    assert _stale(project) == ({PREPARE, TRAIN}, {PREPARE})
    run(["snakemake", "--cores", "2", MODEL], project)
    assert _content(project) != before
    assert json.loads((project / INDEX).read_text())["counts"]["train"] == trained + 1
    _record(project)
    assert _stale(project) == (set(), set())
