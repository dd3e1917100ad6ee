"""A training stage's per-epoch history on disk: ``<checkpoint>.history.csv`` in long form.

One row per epoch and series (``epoch,series,value``): a loss term, an accuracy, the weight drift, the target
monitor, the seconds so far. Long form lets one DVC plot declaration draw every stage's losses, whatever terms
its method and params switch on (dvc.yaml ``plots``, template ``.dvc/plots/losses.json``: a line per series
whose name starts with ``loss``); :func:`read_history` gives the wide table back (one column per series).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

COLUMNS = ("epoch", "series", "value")


def write_history(path: str | Path, rows: Sequence[dict[str, float]]) -> None:
    """Write the rows (one dict per epoch, with its ``epoch``) in long form, epoch by epoch."""
    wide = pd.DataFrame(list(rows))
    if wide.empty:
        pd.DataFrame(columns=list(COLUMNS)).to_csv(path, index=False)
        return
    long = wide.melt(id_vars="epoch", var_name="series", value_name="value").dropna()  # series by series
    long.sort_values("epoch", kind="stable").to_csv(path, index=False)  # stable: the logged order within an epoch


def read_history(path: str | Path) -> pd.DataFrame:
    """The history as a wide table: ``epoch`` and one column per series, in the order they were logged."""
    long = pd.read_csv(path)
    if list(long.columns) != list(COLUMNS):
        raise ValueError(f"{path}: not a training history (columns {', '.join(COLUMNS)}); rerun its stage")
    order = list(dict.fromkeys(long["series"]))
    wide = long.pivot(index="epoch", columns="series", values="value")
    return wide.reindex(columns=order).reset_index().rename_axis(columns=None)
