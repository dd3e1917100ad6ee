"""Report rows from hand-made metrics files: mean ± std over seeds, paper values, honesty columns."""

import json

import pytest

from pipeline_lib import paths
from pipeline_lib.config import parse_params
from pipeline_lib.errors import PipelineError
from pipeline_lib.report import build_report


def _write_metrics(experiment, method, seed, target_acc, source_acc):
    path = paths.metrics_json(experiment, method, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    conf = [[1, 0], [0, 1]]
    path.write_text(json.dumps({
        "experiment": experiment, "method": method, "seed": seed, "train_seconds": 10.0 * (seed + 1),
        "target": {"domain": "usps", "accuracy": target_acc, "confusion": conf},
        "source": {"domain": "mnist", "accuracy": source_acc, "confusion": conf}}))


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
