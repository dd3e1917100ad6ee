"""Rank the runs of a ``dvc exp`` sweep by a validator, with the target-label oracle beside them (docs/selection.md).

Each run's report metrics (``reports/<experiment>/metrics.json``) hold, for every row whose checkpoint was chosen
by ``selection.validator``, that validator's score of the chosen checkpoint (``selected_score.<row>``), the
chosen checkpoint's target metric (``target.<row>``) and the best target metric of any kept checkpoint
(``target_oracle.<row>``). Settings are ranked by the first, which reads no target label; the other two are
printed beside it to show what the choice cost, and are never used to rank::

    python -m pipeline_lib.rank --experiment mnist5k_mnistm --row cycada_feat --param cycada.adapt_features.lr.demo
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Iterable

import pandas as pd

from pipeline_lib import paths
from pipeline_lib.errors import PipelineError


def _value(record: dict[str, Any], file: str, key: str) -> Any:
    """A metric or param of one ``dvc.api.exp_show`` record: DVC prefixes a key with its file (``file:key``) when
    several files hold the same key."""
    return record.get(f"{file}:{key}", record.get(key))


def rank(records: Iterable[dict[str, Any]], experiment: str, row: str, params: Iterable[str] = ()) -> pd.DataFrame:
    """One line per finished run that has a score for ``row``, best score first: its name, the ``params`` values, the
    validator and its score, and beside them the chosen checkpoint's target metric and the oracle-best (both
    read target labels), with the rank each would give."""
    metrics, lines = str(paths.report_metrics(experiment)), []
    for rec in records:
        if rec.get("State") in ("Failed", "Queued", "Running"):  # its metrics would be its baseline's
            continue
        score = _value(rec, metrics, f"selected_score.{row}")
        if score is None or (isinstance(score, float) and pd.isna(score)):
            continue
        lines.append({"run": rec.get("Experiment") or rec.get("rev"),
                      **{p: _value(rec, "params.yaml", p) for p in params},
                      "validator": _value(rec, metrics, "selected_by"), "score": score,
                      "target (reads labels)": _value(rec, metrics, f"target.{row}"),
                      "oracle-best (reads labels)": _value(rec, metrics, f"target_oracle.{row}")})
    if not lines:
        raise PipelineError(f"no run has a validator score for {row} in {metrics}: run the sweep with checkpoint "
                            "selection on (selection.validator other than last), then rank")
    table = pd.DataFrame(lines).sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    table["rank by target"] = table["target (reads labels)"].rank(ascending=False, method="min").astype(int)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", required=True, help="the params.yaml experiment whose report to read")
    parser.add_argument("--row", required=True, help="the report row to rank by (e.g. cycada_feat)")
    parser.add_argument("--param", action="append", default=[], help="a params.yaml key to show (repeatable)")
    args = parser.parse_args(argv)
    try:
        import dvc.api

        table = rank(dvc.api.exp_show(), args.experiment, args.row, args.param)
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
