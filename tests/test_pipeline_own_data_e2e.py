"""A user's own data end to end on the tiny profile: two folder domains with 11 classes of their own
(images + label PNGs + a class list in params.yaml, a held-out sequence chosen by glob), an experiment
between them, and the report with per-class IoUs, confusion plots and the prediction grid in those
classes and colours. The target domain's name holds a space, which every path and shell line must carry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline_helpers import FOLDER_CLASSES as CLASSES
from pipeline_helpers import FOLDER_IDS as IDS
from pipeline_helpers import copy_project, run, write_folder_domain

pytestmark = pytest.mark.slow

METHODS = ["source_only", "cycada_feat", "oracle"]


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("own")
    project = copy_project(tmp / "p", profile="tiny")
    write_folder_domain(tmp / "data/own_a", (0, 0, 0), seed=1)
    write_folder_domain(tmp / "data/own b", (60, -40, 30), seed=2)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["seeds"] = [0]
    folder = {"classes": CLASSES, "ids": IDS, "ignore_id": 0, "test_glob": "seq07_*"}
    params["data"]["folders"].update({"own_a": {"root": str(tmp / "data/own_a"), **folder},
                                      "own b": {"root": str(tmp / "data/own b"), **folder}})
    params["experiments"]["own"] = {"source": "own_a", "target": "own b", "backbone": "street", "methods": METHODS}
    params["dvc_experiments"] = ["own"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run([sys.executable, "-m", "pipeline_lib.dag"], project)
    run(["snakemake", "--cores", "2", "reports/own.csv"], project)
    return project


def test_folder_domains_hold_out_the_glob_sequence(own):
    for name in ("own_a", "own b"):
        index = json.loads((own / f"data/domains/{name}.json").read_text())
        assert index["counts"] == {"train": 8, "test": 4} and index["classes"] == CLASSES
        assert {Path(image).stem[:5] for image, _ in index["splits"]["test"]} == {"seq07"}
        assert (own / f"data/domains/{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_report_scores_the_domains_own_classes(own):
    table = pd.read_csv(own / "reports/own.csv")
    assert len(table) == len(METHODS) and set(table["metric"]) == {"mIoU %"}
    assert [c for c in table if c.startswith("iou_")] == [f"iou_{c}" for c in CLASSES]
    assert table["target_miou"].astype(float).between(0, 100).all()
    metrics = json.loads((own / "metrics/own/source_only/seed0.json").read_text())
    assert metrics["target"]["classes"] == CLASSES and np.asarray(metrics["target"]["confusion"]).shape == (11, 11)
    assert np.asarray(metrics["target"]["confusion"]).sum() == 4 * 64 * 94  # 4 test frames, 2 columns ignored
    for png in ["predictions.png", *(f"confusion/{m}.png" for m in METHODS)]:
        assert (own / "reports/own" / png).read_bytes()[:4] == b"\x89PNG"


def test_the_domain_named_with_a_space_prepares_under_dvc_too(own):
    """DVC runs the same quoted command line (`--domain 'own b'`) to the same index."""
    index = (own / "data/domains/own b.json").read_text()
    run(["dvc", "repro", "--force", "--single-item", "prepare__own b"], own)
    assert (own / "data/domains/own b.json").read_text() == index
    assert "'own b'" in yaml.safe_load((own / "dvc.yaml").read_text())["stages"]["prepare__own b"]["cmd"]
