"""The segmentation track end to end on the tiny profile: embedded scenes, and GTA5 -> Cityscapes
on tiny files written in the datasets' exact layouts (and without them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from pipeline_lib import registry
from pipeline_lib.config import load_params
from pipeline_helpers import copy_project, record_modules, run, snakemake_plan, undeclared_modules

pytestmark = pytest.mark.slow

def _rows(project: Path) -> list[str]:
    """The labels of the experiment's rows in the project's (tiny) params, from the registry (a new method's rows are
    built and checked too)."""
    return [registry.row(m).label for m in registry.Experiment(load_params(project / "params.yaml"), "scenes").rows]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("scenes"), profile="tiny")
    run(["snakemake", "--cores", "2", "reports/scenes.csv", FMR_REPORT], project, env=record_modules(project))
    return project


FMR_REPORT = "reports/scenes_cubism.csv"  # feature-map regression on a paired shift of scenes_photo


def test_every_segmentation_stage_declares_every_project_module_it_loaded(scenes):
    assert undeclared_modules(scenes) == {}


def test_scenes_report_has_segmentation_rows_and_pictures(scenes):
    table = pd.read_csv(scenes / "reports/scenes.csv")
    assert list(table["method"]) == _rows(scenes) and set(table["metric"]) == {"mIoU %"}
    assert registry.row("i2i_all").label in set(table["method"])
    models = table[table["n_seeds"] > 0]
    for col in ("target_miou", "target_fwiou", "target_pixel_acc", "source_miou"):
        assert models[col].astype(float).between(0, 100).all()
    bound = table.iloc[-1]
    assert bound["uses_target_labels"] and 0 < float(bound["target_miou"]) <= 100
    assert len([c for c in table if c.startswith("iou_")]) == 19 and "iou_traffic light" in table
    assert set(models["seeds"].astype(int).astype(str)) == {"0"} and set(table["profile"]) == {"tiny"}
    metrics = json.loads((scenes / "metrics/scenes/source_only/seed0.json").read_text())
    assert metrics["target"]["domain"] == "scenes_photo" and len(metrics["target"]["iou"]) == 19
    assert np.asarray(metrics["target"]["confusion"]).sum() > 0
    manifest = json.loads((scenes / "data/translated/scenes/seed0/manifest.json").read_text())
    assert manifest["count"] == 16 and len(manifest["shards"]) == 2 and manifest["image_shape"] == [64, 128, 3]
    for png in ("predictions.png", "translation_seed0.png", "training_curves.png", "confusion/oracle.png",
                "tradeoff.png", "fourier_cycada_seed0.png", "i2i_translation_all_seed0.png", "i2i_embedding_seed0.png"):
        assert (scenes / "reports/scenes" / png).read_bytes()[:4] == b"\x89PNG"
    assert snakemake_plan(scenes, "reports/scenes.csv") == {}


def test_feature_map_regression_on_shifted_street_scenes(scenes):
    """The cubism copy of scenes_photo moves the masks with the pixels; the regression of the street backbone's
    deepest post-downsampling layer alone and of all four together (W_inc) runs, with the mean class accuracy the
    paper reports."""
    table = pd.read_csv(scenes / FMR_REPORT)
    rows = registry.Experiment(load_params(scenes / "params.yaml"), "scenes_cubism").rows
    assert list(table["method"]) == [registry.row(m).label for m in rows] and {"fmr_pool4", "fmr_inc"} <= set(rows)
    assert table["target_class_acc"].notna().all() and table["target_miou"].notna().all()
    regression = table[table["method"].str.startswith("FMR")]
    assert regression["distortion_pct"].notna().all() and regression["settings"].str.contains("block").all()
    base = np.load(scenes / "data/domains/scenes_photo.npz")
    shifted = np.load(scenes / "data/domains/scenes_cubism.npz")
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        assert shifted[key].shape == base[key].shape
    masks, moved = base["train_labels"], shifted["train_labels"]
    assert not np.array_equal(masks, moved) and set(np.unique(moved)) <= set(np.unique(masks))
    assert (scenes / "reports/scenes_cubism/fmr_inversion_seed0.png").read_bytes()[:4] == b"\x89PNG"


def _write_gta_and_cityscapes(root: Path) -> None:
    """A few frames in each dataset's layout: road below, sky above, one car."""
    def frame(seed: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        ids = np.full((h, w), 23, np.uint8)  # sky
        ids[h // 2:] = 7  # road
        x = int(rng.integers(0, w - 8))
        ids[h // 2 - 4:h // 2 + 4, x:x + 8] = 26  # car
        ids[0, :] = 0  # unlabelled
        colours = {23: (70, 130, 180), 7: (128, 64, 128), 26: (0, 0, 142), 0: (0, 0, 0)}
        image = np.zeros((h, w, 3), np.uint8)
        for k, c in colours.items():
            image[ids == k] = c
        return np.clip(image + rng.integers(0, 20, image.shape), 0, 255).astype(np.uint8), ids

    for i in range(6):
        image, ids = frame(i, 40, 72)
        for sub, arr in (("images", image), ("labels", ids)):
            (root / "gta5" / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(root / "gta5" / sub / f"{i:05d}.png")
    for split, n in (("train", 4), ("val", 2)):
        for i in range(n):
            image, ids = frame(100 + i, 32, 64)
            name = f"aachen_{i:06d}_000019"
            for top, suffix, arr in (("leftImg8bit", "leftImg8bit", image), ("gtFine", "gtFine_labelIds", ids)):
                folder = root / "cityscapes" / top / split / "aachen"
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(folder / f"{name}_{suffix}.png")


def _gta_project(tmp_path: Path, with_data: bool) -> Path:
    project = copy_project(tmp_path / "p", profile="tiny")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["seeds"] = [0]
    params["prepare"]["gta5"] = {"test_frames": 2}
    params["data"]["roots"].update(gta5=str(tmp_path / "data/gta5"), cityscapes=str(tmp_path / "data/cityscapes"))
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if with_data:
        _write_gta_and_cityscapes(tmp_path / "data")
    return project


def test_gta_to_cityscapes_runs_on_data_in_the_official_layouts(tmp_path):
    # both datasets' readers, training and full-resolution evaluation; the scenes test covers every stage kind
    project = _gta_project(tmp_path, with_data=True)
    targets = [f"metrics/gta_cityscapes/{m}/seed0.json" for m in ("source_only", "oracle")]
    run(["snakemake", "--cores", "2", *targets], project)
    index = json.loads((project / "data/domains/cityscapes.json").read_text())
    assert index["counts"] == {"train": 4, "test": 2}  # evaluated on val
    assert not Path(index["splits"]["test"][0][0]).is_absolute()
    assert json.loads((project / "data/domains/gta5.json").read_text())["counts"] == {"train": 4, "test": 2}
    for target in targets:
        metrics = json.loads((project / target).read_text())
        assert (metrics["source"]["domain"], metrics["target"]["domain"]) == ("gta5", "cityscapes")
        assert np.asarray(metrics["target"]["confusion"]).sum() == 2 * 31 * 64  # full-res val pixels, row 0 ignored
        assert len(metrics["target"]["iou"]) == 19


def test_missing_street_datasets_stop_at_once_with_layout_and_params_key(tmp_path):
    """Snakemake stops while it builds the DAG, before any job, with the reader's own line (the layout it expects,
    the key, the fix); `dvc repro --dry` refuses the same folder, naming it."""
    project = _gta_project(tmp_path, with_data=False)
    proc = run(["snakemake", "--cores", "2", "reports/gta_cityscapes.csv"], project, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: GTA5 data not usable"), proc.stderr[-2000:]
    assert "images/*.png" in errors[0] and "data.roots.gta5" in errors[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (project / "logs").exists() and not (project / "data/domains").exists()
    assert not (project / "models").exists()
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["dvc_experiments"] = ["gta_cityscapes"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run([sys.executable, "-m", "pipeline_lib.dag"], project)
    dry = run(["dvc", "repro", "--dry"], project, check=False)
    assert dry.returncode != 0 and str(tmp_path / "data") in dry.stderr and "Traceback" not in dry.stderr
