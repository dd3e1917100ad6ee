"""Report rows from hand-made metrics files: mean ± std over seeds, paper values, honesty columns."""

import json

import numpy as np
import pandas as pd
import pytest

from pipeline_lib import paths, registry, selection
from pipeline_lib.config import parse_params
from pipeline_lib.methods.calibrator_spec import deployment_json
from pipeline_lib.methods.gam_spec import label_bound_json
from pipeline_lib.errors import PipelineError
from pipeline_lib.report import build_report, write_validator_table


def _write_metrics(experiment, method, seed, target_acc, source_acc):
    path = paths.metrics_json(experiment, method, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    conf = [[1, 0], [0, 1]]
    path.write_text(json.dumps({
        "experiment": experiment, "method": method, "seed": seed, "train_seconds": 10.0 * (seed + 1),
        "target": {"domain": "usps", "accuracy": target_acc, "confusion": conf},
        "source": {"domain": "mnist", "accuracy": source_acc, "confusion": conf}}))
    _add_selection_run(experiment, method, seed, [target_acc - 0.1, target_acc], [0.2, 0.1])


def _add_selection_run(experiment, method, seed, target_metrics, bnm):
    """What ``select`` writes for a seed: here two kept epochs, BNM preferring the first."""
    path = paths.selection_json(experiment, method)
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    cks = [{"file": f"epoch{e}.pt", "epoch": e + 1, "scores": {"bnm": b}, "target_metric": t}
           for e, (t, b) in enumerate(zip(target_metrics, bnm))]
    runs = [r for r in runs if r["seed"] != seed] + [{"seed": seed, "checkpoints": cks,
                                                       "picks": selection.picks(cks, ["bnm"])}]
    path.write_text(json.dumps({"reads_target_labels": {"bnm": False, "last": False, "oracle": True},
                                "runs": runs}))


def test_rows_give_mean_std_seeds_profile_and_the_papers_value(tmp_path, monkeypatch, tiny_raw):
    monkeypatch.chdir(tmp_path)
    tiny_raw["seeds"] = [0, 1]
    tiny_raw["experiments"]["mnist_usps"]["methods"] = ["source_only", "oracle"]
    params = parse_params(tiny_raw)
    for seed, (t, s) in enumerate([(0.80, 0.99), (0.82, 0.97)]):
        _write_metrics("mnist_usps", "source_only", seed, t, s)
        _write_metrics("mnist_usps", "oracle", seed, 0.96, 0.5)
    table, confusions = build_report(params, "mnist_usps")
    row = table.iloc[0]
    assert row["method"] == "source only" and row["target_acc"] == "81.0 ± 1.4"
    assert row["target_mean"] == pytest.approx(81.0) and row["source_mean"] == pytest.approx(98.0)
    assert row["paper"].startswith("82.2 ± 0.8") and "CyCADA Table 2" in row["paper_table"]
    assert row["n_seeds"] == 2 and row["seeds"] == "0 1" and row["profile"] == "tiny"
    assert not row["uses_target_labels"] and table.iloc[1]["uses_target_labels"]
    assert row["train_seconds_per_seed"] == pytest.approx(15.0)
    assert confusions["oracle"].tolist() == [[2, 0], [0, 2]]  # summed over seeds


def test_single_seed_shows_no_spread(tmp_path, monkeypatch, tiny_raw):
    monkeypatch.chdir(tmp_path)
    tiny_raw["experiments"]["mnist_usps"].update(methods=["source_only"], backbone="lenet_rgb")
    params = parse_params(tiny_raw)
    _write_metrics("mnist_usps", "source_only", 0, 0.8044, 0.99)
    row = build_report(params, "mnist_usps")[0].iloc[0]
    assert row["target_acc"] == "80.4"
    assert row["paper"] == "82.2 ± 0.8; 77.8"  # lenet_rgb is still the paper's LeNet architecture


def test_metrics_of_another_run_are_refused(tmp_path, monkeypatch, tiny_raw):
    monkeypatch.chdir(tmp_path)
    tiny_raw["experiments"]["mnist_usps"]["methods"] = ["source_only"]
    params = parse_params(tiny_raw)
    _write_metrics("mnist_usps", "source_only", 7, 0.8, 0.9)
    paths.metrics_json("mnist_usps", "source_only", 7).rename(paths.metrics_json("mnist_usps", "source_only", 0))
    with pytest.raises(PipelineError, match="another run's metrics"):
        build_report(params, "mnist_usps")


def _write_seg_metrics(experiment, method, seed, conf_target, conf_source):
    from pipeline_lib.domains.segmentation import CITYSCAPES_CLASSES
    from pipeline_lib.metrics import segmentation_scores
    path = paths.metrics_json(experiment, method, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {"experiment": experiment, "method": method, "seed": seed, "train_seconds": 5.0}
    for role, conf in (("target", conf_target), ("source", conf_source)):
        result[role] = {"domain": role, "classes": list(CITYSCAPES_CLASSES), "eval_classes": list(range(19)),
                        **segmentation_scores(conf), "confusion": conf.tolist()}
    path.write_text(json.dumps(result))


def test_segmentation_rows_carry_per_class_iou_and_table4(tmp_path, monkeypatch, tiny_raw):
    import numpy as np
    monkeypatch.chdir(tmp_path)
    tiny_raw["experiments"]["gta_cityscapes"]["methods"] = ["source_only"]
    tiny_raw["backbones"]["street"]["arch"] = "drn26"  # the paper's backbone (B) -> Table 4 values
    params = parse_params(tiny_raw)
    conf = np.zeros((19, 19), int)
    conf[0, 0], conf[0, 1], conf[1, 1] = 6, 2, 2  # road IoU 6/8, sidewalk 2/4; other classes absent
    _write_seg_metrics("gta_cityscapes", "source_only", 0, conf, np.eye(19, dtype=int))
    table, _ = build_report(params, "gta_cityscapes")
    row = table.iloc[0]
    assert row["metric"] == "mIoU %" and row["target_miou"] == "62.5"  # (75 + 50) / 2, absent classes skipped
    assert row["target_pixel_acc"] == "80.0" and row["source_miou"] == "100.0"
    assert row["iou_road"] == 75.0 and row["iou_sidewalk"] == 50.0 and row["iou_bicycle"] is None
    assert row["paper"] == "21.7 / 47.4 / 62.5" and "CyCADA Table 4" in row["paper_table"]
    tiny_raw["backbones"]["street"]["arch"] = "lraspp_mobilenet_v3"  # another backbone: no paper value
    assert build_report(parse_params(tiny_raw), "gta_cityscapes")[0].iloc[0]["paper"] == ""


def test_gam_rows_carry_gam_table1(tmp_path, monkeypatch, tiny_raw):
    monkeypatch.chdir(tmp_path)
    tiny_raw["experiments"]["mnist_usps"]["methods"] = ["gam_gaussian", "adda_reg", "gam_noreg", "gam", "oracle"]
    params = parse_params(tiny_raw)
    for method in ("gam_gaussian", "adda_reg", "gam_noreg", "gam", "oracle"):
        _write_metrics("mnist_usps", method, 0, 0.9, 0.95)
    table, _ = build_report(params, "mnist_usps")
    rows = dict(zip(table["method"], zip(table["paper"], table["paper_table"])))
    assert rows["GAM full"] == ("95.7 ± 0.5", "GAM Table 1")
    assert rows["GAM, no regulariser"][0] == "95.6 ± 0.6" and rows["ADDA + weight regulariser"][0] == "90.5 ± 0.5"
    assert rows["GAM i.i.d. Gaussian matching"] == ("", "")  # GAM Table 1 has no such digits row
    assert "96.4" in rows["target oracle"][0] and "GAM Table 1 (supervised)" in rows["target oracle"][1]


def test_label_bound_row_is_marked_as_using_target_labels(tmp_path, monkeypatch, tiny_raw):
    from pipeline_lib.metrics import label_distribution_bound
    monkeypatch.chdir(tmp_path)
    tiny_raw["experiments"]["gta_cityscapes"]["methods"] = ["label_bound"]
    params = parse_params(tiny_raw)
    counts_s, counts_t = [60, 40] + [0] * 17, [30, 50] + [20] + [0] * 16
    path = label_bound_json("gta_cityscapes")
    path.parent.mkdir(parents=True, exist_ok=True)
    from pipeline_lib.domains.segmentation import CITYSCAPES_CLASSES
    path.write_text(json.dumps({"classes": list(CITYSCAPES_CLASSES), "eval_classes": list(range(19)),
                                **label_distribution_bound(counts_s, counts_t)}))
    row = build_report(params, "gta_cityscapes")[0].iloc[0]
    assert row["method"] == "label-distribution oracle bound" and row["uses_target_labels"]
    assert row["target_pixel_acc"] == "70.0" and row["iou_road"] == 50.0 and row["n_seeds"] == 0
    assert row["paper"].startswith("55") and "GAM Table 3" in row["paper_table"]


def test_calibrator_rows_carry_calibrator_table1_and_the_deployment_share(tmp_path, monkeypatch, tiny_raw):
    monkeypatch.chdir(tmp_path)
    methods = ["source_only", "calibrator", "cycada_calibrator"]
    tiny_raw["experiments"]["usps_mnist"]["methods"] = methods
    params = parse_params(tiny_raw)
    for method in methods:
        _write_metrics("usps_mnist", method, 0, 0.9, 0.95)
    for variant, n in (("raw", 1000), ("cycada", 2000)):
        path = deployment_json("usps_mnist", variant, 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"calibrator_parameters": n, "model_parameters": 40_000, "ratio": n / 40_000}))
    table, _ = build_report(params, "usps_mnist")
    rows = {r["method"]: r for r in table.to_dict("records")}
    alone, cyc = (rows["light-weight calibrator (frozen source model)"],
                  rows["CycleGAN + calibrator (frozen pixel-only model)"])
    assert (alone["paper"], alone["paper_table"]) == ("97.1", "Calibrator Table 1")
    assert cyc["paper"] == "98.3" and "CycleGAN" in cyc["paper_table"]
    assert alone["calibrator_share_pct"] == 2.5 and cyc["calibrator_params"] == 2000
    # NaN: no calibrator
    assert rows["source only"]["calibrator_share_pct"] != rows["source only"]["calibrator_share_pct"]


def test_calibrator_table2_sits_beside_the_drn26_cycleGAN_calibrator_row():
    (row,) = registry.paper_values("cycada_calibrator", "gta5", "cityscapes", "drn26")
    assert (row.miou, row.fwiou, row.pixel_acc) == (40.5, 75.1, 84.0)
    assert row.per_class[13] == 81.8 and "Calibrator Table 2" in row.table  # car
    assert registry.paper_values("calibrator", "gta5", "cityscapes", "drn26") == ()  # the paper has no such row


def test_own_classes_drive_the_confusion_plots_and_the_prediction_grid(tmp_path, monkeypatch, tiny_raw):
    """An 11-class folder experiment: per-class IoU columns, plots and the grid use the folder's classes."""
    import numpy as np
    from PIL import Image

    from pipeline_lib.metrics import segmentation_scores
    from pipeline_lib.report import write_report
    monkeypatch.chdir(tmp_path)
    classes = ["road", "lane", "curb", "grass", "tree", "house", "sky", "car", "bike", "person", "traffic sign"]
    folder = {"classes": classes, "test_glob": "seq07_*"}
    tiny_raw["data"]["folders"].update({"own_a": {"root": "a", **folder}, "own_b": {"root": "b", **folder}})
    tiny_raw["experiments"] = {"own": {"source": "own_a", "target": "own_b", "backbone": "street",
                                       "methods": ["source_only", "oracle"]}}
    tiny_raw["dvc_experiments"] = ["own"]
    params = parse_params(tiny_raw)
    rng = np.random.default_rng(0)
    for method in ("source_only", "oracle"):
        conf = rng.integers(0, 50, (11, 11)) + 200 * np.eye(11, dtype=int)
        result = {"experiment": "own", "method": method, "seed": 0, "train_seconds": 1.0}
        for role in ("target", "source"):
            result[role] = {"domain": role, "classes": classes, "eval_classes": list(range(11)),
                            **segmentation_scores(conf), "confusion": conf.tolist()}
        paths.metrics_json("own", method, 0).parent.mkdir(parents=True, exist_ok=True)
        paths.metrics_json("own", method, 0).write_text(json.dumps(result))
        labels = rng.integers(0, 11, (2, 16, 24)).astype(np.uint8)
        np.savez(paths.predictions_preview("own", method, 0), images=rng.integers(0, 256, (2, 16, 24, 3), np.uint8),
                 predictions=labels, labels=labels)
    table = write_report(params, "own")
    assert [c for c in table if c.startswith("iou_")] == [f"iou_{c}" for c in classes]
    for png in (paths.predictions_png("own"), paths.confusion_png("own", "oracle")):
        with Image.open(png) as im:
            assert im.format == "PNG"


def test_report_metrics_give_each_rows_numbers_for_dvc(tiny_raw):
    import pandas as pd

    from pipeline_lib.report import confusion_rows, report_metrics

    table = pd.DataFrame({"metric": ["accuracy %"] * 3, "profile": ["tiny"] * 3, "target_mean": [40.0, 55.5, None],
                          "source_mean": [98.0, 97.0, None], "target_std": [1.5, 2.0, None],
                          "source_std": [0.5, 0.25, None], "n_seeds": [3, 3, 0]},
                         index=pd.Index(["source_only", "cycada_feat", "label_bound"], name="row"))
    metrics = report_metrics(table)
    json.dumps(metrics)  # native numbers: write_json can store it
    assert metrics["target"] == {"source_only": 40.0, "cycada_feat": 55.5} and metrics["n_seeds"]["cycada_feat"] == 3
    assert metrics["source_std"] == {"source_only": 0.5, "cycada_feat": 0.25} and metrics["metric"] == "accuracy %"
    one_seed = report_metrics(table.assign(target_std=None, source_std=None))
    assert "target_std" not in one_seed and "source_std" not in one_seed
    rows = confusion_rows(np.array([[3, 1], [0, 2]]), ["cat", "dog"])
    assert rows == [{"actual": "cat", "predicted": "cat", "count": 3},
                    {"actual": "cat", "predicted": "dog", "count": 1},
                    {"actual": "dog", "predicted": "cat", "count": 0},
                    {"actual": "dog", "predicted": "dog", "count": 2}]


def test_a_selected_row_states_its_choice_beside_the_last_epoch_and_the_oracle(tmp_path, monkeypatch, tiny_raw):
    monkeypatch.chdir(tmp_path)
    tiny_raw["seeds"] = [0, 1]
    tiny_raw["experiments"]["mnist_usps"]["methods"] = ["source_only", "cycada_feat"]
    params = parse_params(tiny_raw)
    for seed in (0, 1):
        _write_metrics("mnist_usps", "source_only", seed, 0.8, 0.9)
        _write_metrics("mnist_usps", "cycada_feat", seed, 0.7, 0.9)
    # seed 0: BNM picks epoch 1 (60%), the oracle epoch 2 (80%); seed 1: both pick epoch 2 (90%)
    _add_selection_run("mnist_usps", "cycada_feat", 0, [0.6, 0.8], [0.3, 0.1])
    _add_selection_run("mnist_usps", "cycada_feat", 1, [0.5, 0.9], [0.1, 0.3])
    table, _ = build_report(params, "mnist_usps")
    source, adapted = table.loc["source_only"], table.loc["cycada_feat"]
    assert pd.isna(source.get("selected_by")) and source["model_selection"] == "last epoch; no target labels"
    assert adapted["selected_by"] == "bnm" and adapted["selected_epochs"] == "1 2" and adapted["epochs_kept"] == "1 2"
    assert adapted["target_by_bnm"] == "75.0 ± 21.2" and adapted["target_oracle"] == "85.0 ± 7.1"
    assert adapted["target_last"] == "85.0 ± 7.1" and "bnm picks" in adapted["model_selection"]
    validators = {r["validator"]: r for r in write_validator_table(params, "mnist_usps").to_dict("records")}
    assert validators["bnm"]["regret_points"] == pytest.approx(10.0)  # (20 + 0) / 2
    assert validators["bnm"]["picks_report_checkpoints"] and validators["oracle"]["reads_target_labels"]
    assert validators["last"]["regret_points"] == 0
    assert pd.read_csv(paths.validators_csv("mnist_usps"))["validator"].tolist()[-2:] == ["last", "oracle"]
