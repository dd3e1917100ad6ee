"""Assemble ``reports/<experiment>.csv``: one line per row (its ``method`` column: the row's label), mean +- std over
seeds.

Each row states what produced it (seeds, profile, whether target labels were used) and,
where a paper reports the same setting, the paper's value and table beside ours. The rows,
their labels, model-selection notes, paper numbers and training curves come from the methods'
declarations (:mod:`pipeline_lib.registry`); class names and colours from the source domain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_lib import paths, registry
from pipeline_lib.artifacts import atomic_dir, atomic_path, read_json, write_json
from pipeline_lib.config import Params
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.errors import PipelineError
from pipeline_lib.history import read_history
from pipeline_lib.metrics import mean_std
from pipeline_lib.plots import (classification_grid, colorize, confusion_plot, segmentation_grid, tradeoff_plot,
                                 training_curves)
from pipeline_lib.registry import Experiment
from pipeline_lib.selection import LAST, ORACLE, validator_table


def _pm(mean: float, std: float, n: int) -> str:
    """'mean ± std' over seeds; a single seed has no spread to report."""
    return f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"


def _classification_columns(results: list[dict]) -> dict[str, object]:
    tgt = [100 * r["target"]["accuracy"] for r in results]
    src = [100 * r["source"]["accuracy"] for r in results]
    (t_mean, t_std), (s_mean, s_std), n = mean_std(tgt), mean_std(src), len(results)
    return {"metric": "accuracy %", "target_acc": _pm(t_mean, t_std, n), "target_mean": round(t_mean, 2),
            "target_std": round(t_std, 2) if n > 1 else None, "source_acc": _pm(s_mean, s_std, n),
            "source_mean": round(s_mean, 2), "source_std": round(s_std, 2) if n > 1 else None}


def _segmentation_columns(results: list[dict]) -> dict[str, object]:
    """mIoU / fwIoU / pixel accuracy (mean ± std over seeds) on both domains, and the target's
    per-class IoUs (mean over seeds; empty where a class is absent), like CyCADA Table 4."""
    n = len(results)
    out: dict[str, object] = {"metric": "mIoU %"}
    for role in ("target", "source"):
        for key in ("miou", "fwiou", "pixel_acc", "class_acc"):
            if not all(key in r[role] for r in results):
                continue
            mean, std = mean_std([100 * r[role][key] for r in results])
            out[f"{role}_{key}"] = _pm(mean, std, n)
            if key == "miou":
                out[f"{role}_mean"], out[f"{role}_std"] = round(mean, 2), round(std, 2) if n > 1 else None
    first = results[0]["target"]
    for pos, cls in enumerate(first["eval_classes"]):
        vals = [r["target"]["iou"][pos] for r in results if r["target"]["iou"][pos] is not None]
        out[f"iou_{first['classes'][cls]}"] = round(100 * float(np.mean(vals)), 1) if vals else None
    return out


def _selection_columns(selection: dict, validator: str, n: int) -> dict[str, object]:
    """A selected row's columns: which validator chose its checkpoints (the main columns are theirs), the epochs
    chosen, and the target metric of the last checkpoint, the oracle's and each validator's choice (mean ± std
    over seeds)."""
    runs = selection["runs"]

    def chosen(name: str) -> str:
        mean, std = mean_std([100 * r["checkpoints"][r["picks"][name]]["target_metric"] for r in runs])
        return _pm(mean, std, n)

    def mean(values: list[float]) -> float:
        return round(float(np.mean(values)), 4)

    names = [k for k in runs[0]["picks"] if k not in (LAST, ORACLE)]
    picked = [r["checkpoints"][r["picks"][validator]] for r in runs]
    return {"selected_by": validator,
            "selected_score": mean([c["scores"][validator] for c in picked]) if validator != LAST else None,
            "last_mean": mean([100 * r["checkpoints"][-1]["target_metric"] for r in runs]),
            "oracle_mean": mean([100 * max(c["target_metric"] for c in r["checkpoints"]) for r in runs]),
            "selected_epochs": " ".join(str(r["checkpoints"][r["picks"][validator]]["epoch"]) for r in runs),
            "epochs_kept": " ".join(str(c["epoch"]) for c in runs[0]["checkpoints"]),
            "target_last": chosen(LAST), "target_oracle": chosen(ORACLE),
            **{f"target_by_{name}": chosen(name) for name in names}}


def build_report(params: Params, experiment: str) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Rows of the report (indexed by the rows' method names) and the seed-summed target confusion matrix per
    method."""
    exp = Experiment(params, experiment)
    rows, confusions = [], {}
    selected = registry.selected_rows(exp)
    for method in exp.rows:
        row = registry.row(method)
        papers = registry.paper_values(method, exp.source, exp.target, exp.arch)
        common = {"experiment": experiment, "method": row.label, "source": exp.source, "target": exp.target,
                  "backbone": exp.backbone}
        stated = {"paper": "; ".join(p.value for p in papers), "paper_table": "; ".join(p.table for p in papers)}
        if row.extras.summary is not None:  # a row without a model (GAM 5.3's bound)
            rows.append({**common, **row.extras.summary(exp), **stated, "n_seeds": 0, "seeds": "",
                         "profile": params.profile, "uses_target_labels": row.uses_target_labels,
                         "model_selection": row.selection})
            continue
        seeds = exp.row_seeds(method)
        results = [read_json(paths.metrics_json(experiment, method, s)) for s in seeds]
        for r, s in zip(results, seeds):
            if r.get("seed") != s or r.get("method") != method:
                raise PipelineError(f"{paths.metrics_json(experiment, method, s)}: holds another run's "
                                    "metrics; delete it and rerun its evaluate stage")
        metrics = _segmentation_columns(results) if exp.task == "segmentation" else _classification_columns(results)
        chosen, selection = {}, row.selection
        if method in selected:
            validator = params.selection.validator
            chosen = _selection_columns(read_json(paths.selection_json(experiment, method)), validator, len(seeds))
            selection = (f"the checkpoint {validator} picks of each seed's kept epochs (docs/selection.md); "
                         "no target labels" if validator != LAST else row.selection)
        rows.append({
            **common, **metrics, **stated,
            "n_seeds": len(results), "seeds": " ".join(str(s) for s in seeds), "profile": params.profile,
            "uses_target_labels": row.uses_target_labels, "model_selection": selection, **chosen,
            "train_seconds_per_seed": round(float(np.mean([r["train_seconds"] for r in results])), 1),
            **({"settings": results[0]["settings"]} if "settings" in results[0] else {}),
            **row.extras.columns(exp),
        })
        confusions[method] = np.sum([np.asarray(r["target"]["confusion"]) for r in results], axis=0)
    return pd.DataFrame(rows, index=pd.Index(exp.rows, name="row")), confusions  # indexed by the rows' names


def prediction_grid(params: Params, experiment: str) -> None:
    """Target frames | source-only prediction | adapted predictions | ground truth (first seed), coloured
    with the source domain's palette (its classes are the model's train ids); for classification, the same
    test images under each row's predicted class."""
    exp = Experiment(params, experiment)
    seed, src = exp.seeds[0], resolve_domain(params, exp.source)
    previews = {m: np.load(paths.predictions_preview(experiment, m, exp.row_seeds(m)[0])) for m in exp.rows
                if registry.row(m).model is not None}
    first = next(iter(previews.values()))
    if exp.task == "classification":
        classification_grid(first["images"], first["labels"],
                            [(registry.row(m).label, p["predictions"]) for m, p in previews.items()], src.classes,
                            paths.predictions_png(experiment),
                            f"{experiment}: {exp.target} test images, seed {seed} (green = right, red = wrong)")
        return
    columns = [(f"{exp.target} image", first["images"])]
    columns += [(registry.row(m).label, colorize(p["predictions"], src.palette)) for m, p in previews.items()]
    columns.append(("ground truth", colorize(first["labels"], src.palette)))
    segmentation_grid(columns, paths.predictions_png(experiment),
                      f"{experiment}: {exp.target} test frames, seed {seed} (black = ignored)",
                      legend=list(zip(src.classes, src.palette)))


def write_report(params: Params, experiment: str) -> pd.DataFrame:
    table, confusions = build_report(params, experiment)
    exp = Experiment(params, experiment)
    curves, histories = [], {}
    for curve in registry.curves(exp):  # the training curves the experiment's stages declare
        if curve.csv not in histories:  # several curves per file: read each once
            histories[curve.csv] = read_history(curve.csv)
        hist = histories[curve.csv]
        if curve.column in hist:
            curves.append((curve.panel, curve.series, hist["epoch"], hist[curve.column]))
    training_curves(curves, paths.curves_png(experiment), f"{experiment}: training curves per seed")
    names = resolve_domain(params, exp.source).classes  # the model's train ids, in order
    with atomic_dir(paths.confusion_dir(experiment)) as folder:
        for method, conf in confusions.items():
            png = folder / paths.confusion_png(experiment, method).name
            confusion_plot(conf, names, png, exp.confusion_title(method))
            write_json(folder / paths.confusion_json(experiment, method).name, confusion_rows(conf, names))
    prediction_grid(params, experiment)
    rows = table[table["n_seeds"] > 0]
    seeds = "seeds " + " ".join(map(str, exp.seeds)) if rows["seeds"].nunique() == 1 else "each row's seeds"
    tradeoff_plot([(r.method, r.source_mean, r.source_std, r.target_mean, r.target_std) for r in rows.itertuples()],
                  paths.tradeoff_png(experiment), f"{experiment}: source vs target test {rows['metric'].iloc[0]} per "
                  f"row (Calibrator Fig. 2; mean ± std over {seeds})")
    write_validator_table(params, experiment)
    out = Path(paths.report_csv(experiment))
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    write_json(paths.report_metrics(experiment), report_metrics(table))
    return table


def write_validator_table(params: Params, experiment: str) -> pd.DataFrame:
    """``reports/<experiment>/validators.csv``: each validator's regret and weighted Spearman correlation over the
    experiment's selected rows and seeds (:func:`pipeline_lib.selection.validator_table`), the one that picks the
    report's checkpoints marked."""
    exp = Experiment(params, experiment)
    selections = [read_json(paths.selection_json(experiment, m)) for m in registry.selected_rows(exp)]
    reads = selections[0]["reads_target_labels"] if selections else {}
    lines = validator_table(selections, [k for k in reads if k not in (LAST, ORACLE)],
                            lambda name: bool(reads.get(name, name == ORACLE)))
    table = pd.DataFrame(lines, columns=["validator", "reads_target_labels", "regret_points", "runs", "checkpoints",
                                         "weighted_spearman"])
    table["picks_report_checkpoints"] = table["validator"] == params.selection.validator
    table.insert(0, "experiment", experiment)
    with atomic_path(paths.validators_csv(experiment)) as tmp:
        table.to_csv(tmp, index=False)
    return table


def confusion_rows(conf: np.ndarray, names: list[str]) -> list[dict[str, object]]:
    """A confusion matrix as DVC plot data: one record per (true, predicted) class pair with its count, true
    classes in order (template ``.dvc/plots/confusion_counts.json``; a segmentation's pixels are too many to list
    one by one, as DVC's own ``confusion`` template would want)."""
    return [{"actual": names[i], "predicted": names[j], "count": int(conf[i, j])}
            for i in range(len(names)) for j in range(len(names))]


def report_metrics(table: pd.DataFrame) -> dict[str, object]:
    """The report's numbers as DVC metrics (``dvc metrics show``, ``dvc exp show``): the target and source metric
    of each row with a model (%, mean over seeds), their std over seeds (rows with several seeds) and the number of
    seeds, each keyed by the row's method name, so that ``target.<row>`` is one column of ``dvc exp show``."""
    rows = table[table["n_seeds"] > 0]
    out: dict[str, object] = {"metric": rows["metric"].iloc[0] if len(rows) else "",
                              "profile": table["profile"].iloc[0]}
    pairs = [("target", "target_mean"), ("source", "source_mean"), ("target_std", "target_std"),
             ("source_std", "source_std"), ("n_seeds", "n_seeds")]
    # checkpoint selection (rows that kept a series): the validator's score of the checkpoint it picked, the last
    # checkpoint's and the oracle-best target metric (what `python -m pipeline_lib.rank` sets beside each other)
    pairs += [(key, column) for key, column in (("selected_score", "selected_score"), ("target_last", "last_mean"),
                                                ("target_oracle", "oracle_mean")) if column in rows]
    if "selected_by" in rows and rows["selected_by"].notna().any():
        out["selected_by"] = rows["selected_by"].dropna().iloc[0]
    for key, column in pairs:
        values = rows[column].dropna().to_dict()  # Python numbers, keyed by the rows' method names
        if values:  # no std with one seed
            out[key] = values
    return out
