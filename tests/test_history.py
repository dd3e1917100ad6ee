"""Training histories on disk: long form for DVC's losses plot, the wide table back for the report."""

import pandas as pd
import pytest

from pipeline_lib.history import read_history, write_history

ROWS = [{"epoch": 1, "loss_d": 0.7, "acc_d": 0.5, "loss_e": 0.9, "seconds": 1.5},
        {"epoch": 2, "loss_d": 0.6, "acc_d": 0.6, "loss_e": 0.8, "seconds": 3.0, "target_metric": 0.4}]


def test_history_is_long_epoch_by_epoch_and_reads_back_wide(tmp_path):
    path = tmp_path / "h.history.csv"
    write_history(path, ROWS)
    long = pd.read_csv(path)
    assert list(long.columns) == ["epoch", "series", "value"]
    assert list(long["series"][:4]) == ["loss_d", "acc_d", "loss_e", "seconds"]  # logged order, epoch 1 first
    assert len(long) == 4 + 5  # a series missing in an epoch has no row there
    wide = read_history(path)
    assert list(wide.columns) == ["epoch", "loss_d", "acc_d", "loss_e", "seconds", "target_metric"]
    assert wide["loss_e"].tolist() == [0.9, 0.8] and pd.isna(wide["target_metric"][0])


def test_an_empty_history_and_a_foreign_csv(tmp_path):
    write_history(tmp_path / "empty.csv", [])
    assert read_history(tmp_path / "empty.csv").empty
    pd.DataFrame(ROWS).to_csv(tmp_path / "wide.csv", index=False)
    with pytest.raises(ValueError, match="not a training history.*rerun its stage"):
        read_history(tmp_path / "wide.csv")
