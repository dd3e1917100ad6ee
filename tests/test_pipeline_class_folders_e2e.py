"""A user's class-per-folder data end to end on the tiny profile, with a ResNet-18: two generated folder domains
(``<root>/<class>/*.png|jpg``, images of several sizes and modes), a row of every classification method on them
(source only, oracle, CyCADA pixel+feat, whose feature level is ADDA, GAM, the calibrator, I2IAdapt), the
report, and DVC's view of the same DAG (``dvc commit`` then a clean ``dvc status``). One row per method keeps it
short; the digits e2e runs every row of the track and DVC's own run of it. Feature-map regression needs a paired
shift: ``tests/test_fmr.py`` regresses a ResNet's layer, and the digits e2e runs its stages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from pipeline_helpers import copy_project, run
from pipeline_lib import registry
from pipeline_lib.config import load_params

pytestmark = pytest.mark.slow

CLASSES = ["cup", "lamp", "pen"]
ROWS = ["source_only", "cycada_pixel_feat", "gam", "calibrator", "i2i_all", "oracle"]  # pixel+feat: ADDA too
REPORTS = ["reports/shapes.csv"]


def _write_domain(root: Path, tint: int, seed: int) -> None:
    """Per class a bright square at its own place on a noisy background, 10 images each, sizes and modes mixed."""
    rng = np.random.default_rng(seed)
    for k, cls in enumerate(CLASSES):
        (root / cls).mkdir(parents=True)
        for i in range(10):
            h, w = (24, 32) if i % 2 else (40, 36)
            image = np.clip(rng.normal(60 + tint, 20, (h, w, 3)), 0, 255).astype(np.uint8)
            top, left = (h // 4) * (k % 2), (w // 3) * k
            image[top:top + h // 2, left:left + w // 3] = 220
            pil = Image.fromarray(image)
            if i == 3:
                pil.convert("L").save(root / cls / f"{cls}_{i:02d}.png")  # grey
            elif i == 5:
                pil.save(root / cls / f"{cls}_{i:02d}.jpg", quality=95)
            else:
                pil.save(root / cls / f"{cls}_{i:02d}.png")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("classes")
    _write_domain(tmp / "data/shapes_a", 0, seed=1)
    _write_domain(tmp / "data/shapes_b", 50, seed=2)
    project = copy_project(tmp / "p", profile="tiny")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["seeds"] = [0]
    folder = {"layout": "classes", "size": 32, "test_fraction": 0.3}
    params["data"]["folders"].update({"shapes_a": {"root": str(tmp / "data/shapes_a"), **folder},
                                      "shapes_b": {"root": str(tmp / "data/shapes_b"), **folder}})
    params["backbones"]["small_resnet"] = {"arch": "resnet18", "size": 32}  # random weights: nothing to download
    params["gam"]["layers"]["small_resnet"] = ["pool", "logits"]
    params["experiments"]["shapes"] = {"source": "shapes_a", "target": "shapes_b", "backbone": "small_resnet",
                                       "methods": ROWS}
    params["dvc_experiments"] = ["shapes"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["python", "-m", "pipeline_lib.dag"], project)
    run("git add -A && git commit -qm 'class folders'", project)
    run(["snakemake", "--cores", "2", *REPORTS], project)
    return project


def test_prepare_keeps_every_class_in_both_splits_at_the_folder_size(shapes):
    from pipeline_lib.domains.store import load_domain
    for name in ("shapes_a", "shapes_b"):
        domain = load_domain(shapes / f"data/domains/{name}.npz")
        assert domain.classes == tuple(CLASSES) and domain.train.images.shape[1:] == (32, 32, 3)
        assert np.bincount(domain.test.labels).tolist() == [3, 3, 3]
        assert np.bincount(domain.train.labels).tolist() == [7, 7, 7]


def test_a_row_of_every_method_reaches_the_report(shapes):
    assert registry.Experiment(load_params(shapes / "params.yaml"), "shapes").rows == tuple(ROWS)
    table = pd.read_csv(shapes / "reports/shapes.csv")
    assert table["method"].tolist() == [registry.row(r).label for r in ROWS]
    assert set(table["metric"]) == {"accuracy %"} and (table["n_seeds"] == 1).all()
    assert table["target_mean"].between(0, 100).all() and table["backbone"].eq("small_resnet").all()


def test_dvc_sees_the_same_dag(shapes):
    run(["dvc", "commit", "--force", "--quiet"], shapes)
    assert run(["dvc", "status", "--json"], shapes).stdout.strip() == "{}"


def test_a_missing_weights_file_stops_the_plan_before_any_job(shapes, tmp_path):
    """ImageNet weights are never downloaded for a ResNet: a `weights:` file that is not there stops Snakemake while
    it builds the DAG (nothing is planned or run), with the key and where to get the file; the file is a dependency
    of every stage that builds the net, so `dvc repro --dry` refuses it too, naming it."""
    weights = tmp_path / "resnet18.pth"
    saved = {name: (shapes / name).read_text() for name in ("params.yaml", "dvc.yaml")}
    params = yaml.safe_load(saved["params.yaml"])
    params["backbones"]["small_resnet"]["weights"] = str(weights)
    (shapes / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        proc = run(["snakemake", "-n", "--cores", "1", *REPORTS], shapes, check=False)
        run(["python", "-m", "pipeline_lib.dag"], shapes)
        stages = yaml.safe_load((shapes / "dvc.yaml").read_text())["stages"]
        dry = run(["dvc", "repro", "--dry"], shapes, check=False)
    finally:
        for name, text in saved.items():
            (shapes / name).write_text(text)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-2000:]
    assert errors[0].startswith(f"error: backbones.small_resnet: resnet18 weights file {weights}")
    assert "https://download.pytorch.org/models/resnet18" in errors[0] and "Traceback" not in proc.stderr
    assert str(weights) in stages["train_supervised__shapes_a__small_resnet__s0"]["deps"]
    assert not any(str(weights) in s["deps"] for name, s in stages.items() if name.startswith("prepare__"))
    assert dry.returncode != 0 and str(weights) in dry.stderr and "Traceback" not in dry.stderr
