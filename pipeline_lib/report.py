"""Assemble ``reports/<experiment>.csv``: one row per method, mean +- std over seeds.

Each row states what produced it (seeds, profile, whether target labels were used) and,
where a paper reports the same setting, the paper's value and table beside ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_lib import paths
from pipeline_lib.artifacts import atomic_path, read_json
from pipeline_lib.config import Params
from pipeline_lib.domains.segmentation import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE
from pipeline_lib.errors import PipelineError
from pipeline_lib.metrics import mean_std
from pipeline_lib.paper_numbers import paper_values
from pipeline_lib.plots import colorize, confusion_plot, segmentation_grid, tradeoff_plot, training_curves


@dataclass(frozen=True)
class MethodInfo:
    label: str
    uses_target_labels: bool
    selection: str


LAST = "last epoch; no target labels"
# said on every calibrator row: the shared digits settings were tuned once by looking at target labels
CALIBRATOR_SELECTION = ("last epoch; the digits calibrator's L-inf bound and demo lr were picked on mnist5k->mnistm "
                        "target test accuracy (README)")
METHOD_INFO = {
    "source_only": MethodInfo("source only", False, LAST),
    "cycada_pixel": MethodInfo("CyCADA pixel only", False, LAST),
    "cycada_feat": MethodInfo("CyCADA feat only (ADDA)", False, "last ADDA epoch; no target labels"),
    "cycada_pixel_feat": MethodInfo("CyCADA pixel+feat", False, "last ADDA epoch; no target labels"),
    "gam_gaussian": MethodInfo("GAM i.i.d. Gaussian matching", False, "closed form; no target labels"),
    "adda_reg": MethodInfo("ADDA + weight regulariser", False, "last ADDA epoch; no target labels"),
    "gam_noreg": MethodInfo("GAM, no regulariser", False, LAST),
    "gam": MethodInfo("GAM full", False, LAST),
    "calibrator": MethodInfo("light-weight calibrator (frozen source model)", False, CALIBRATOR_SELECTION),
    "cycada_calibrator": MethodInfo("CycleGAN + calibrator (frozen pixel-only model)", False, CALIBRATOR_SELECTION),
    "oracle": MethodInfo("target oracle", True, "trained on target labels (upper bound)"),
    "label_bound": MethodInfo("label-distribution oracle bound", True,
                              "no model: best scores of any model that follows the source label distribution "
                              "(GAM 5.3), from source-train and target-test pixel counts"),
}


CYCLEGAN_CURVES = (("loss_gan", "GAN loss (G)"), ("loss_cyc", "cycle loss"), ("loss_sem", "semantic loss"),
                   ("loss_d", "discriminator loss"))


CALIBRATOR_CURVES = (("acc_d_feat", "feature discriminator, 4-way accuracy"),
                     ("acc_d_pixel", "pixel discriminator, 4-way accuracy"),
                     ("fooled", "calibrated images classified as source (G1)"))


def curve_panels(params: Params, experiment: str) -> list[tuple[str, str, str, Path]]:
    """(panel, series label, history column, history CSV) for the training-curve figure."""
    out: list[tuple[str, str, str, Path]] = []
    for stage, seed, csv in paths.curve_histories(params, experiment):
        if stage == "cyclegan":
            out += [(f"CycleGAN {name}", f"seed {seed}", col, csv) for col, name in CYCLEGAN_CURVES]
        else:
            if stage in paths.CALIBRATOR_VARIANTS:
                out += [(f"{METHOD_INFO[stage].label}: {name}", f"seed {seed}", col, csv) for col, name in CALIBRATOR_CURVES]
            else:
                out.append((f"{METHOD_INFO[stage].label}: discriminator accuracy", f"seed {seed}", "acc_d", csv))
            metric = "accuracy" if params.backbones[params.experiments[experiment].backbone].task == "classification" \
                else "mIoU"
            out.append((f"target test {metric} per epoch (GAM Fig. 5; monitoring only, never used to select)",
                        f"{METHOD_INFO[stage].label}, seed {seed}", "target_metric", csv))
            if stage in ("gam", "adda_reg"):
                out.append((f"{METHOD_INFO[stage].label}: weight drift ||theta_s - theta_t||^2", f"seed {seed}",
                            "drift", csv))
    return out


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
        for key in ("miou", "fwiou", "pixel_acc"):
            mean, std = mean_std([100 * r[role][key] for r in results])
            out[f"{role}_{key}"] = _pm(mean, std, n)
            if key == "miou":
                out[f"{role}_mean"], out[f"{role}_std"] = round(mean, 2), round(std, 2) if n > 1 else None
    first = results[0]["target"]
    for pos, cls in enumerate(first["eval_classes"]):
        vals = [r["target"]["iou"][pos] for r in results if r["target"]["iou"][pos] is not None]
        out[f"iou_{first['classes'][cls]}"] = round(100 * float(np.mean(vals)), 1) if vals else None
    return out


def build_report(params: Params, experiment: str) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Rows of the report and the seed-summed target confusion matrix per method."""
    exp, seeds = params.experiments[experiment], params.experiment_seeds(experiment)
    arch = params.backbones[exp.backbone].arch
    segmentation = params.backbones[exp.backbone].task == "segmentation"
    rows, confusions = [], {}
    for method in exp.methods:
        if method == "label_bound":
            rows.append(_label_bound_row(params, experiment, arch))
            continue
        results = [read_json(paths.metrics_json(experiment, method, s)) for s in seeds]
        for r, s in zip(results, seeds):
            if r.get("seed") != s or r.get("method") != method:
                raise PipelineError(f"{paths.metrics_json(experiment, method, s)}: holds another run's "
                                    "metrics; delete it and rerun its evaluate stage")
        papers = paper_values(exp.source, exp.target, method, arch)
        info = METHOD_INFO[method]
        metrics = _segmentation_columns(results) if segmentation else _classification_columns(results)
        rows.append({
            "experiment": experiment, "method": info.label, "source": exp.source, "target": exp.target,
            "backbone": exp.backbone, **metrics,
            "paper": "; ".join(p.value for p in papers), "paper_table": "; ".join(p.table for p in papers),
            "n_seeds": len(results), "seeds": " ".join(str(s) for s in seeds), "profile": params.profile,
            "uses_target_labels": info.uses_target_labels, "model_selection": info.selection,
            "train_seconds_per_seed": round(float(np.mean([r["train_seconds"] for r in results])), 1),
            **_deployment_columns(experiment, method, seeds),
        })
        confusions[method] = np.sum([np.asarray(r["target"]["confusion"]) for r in results], axis=0)
    return pd.DataFrame(rows), confusions


def _deployment_columns(experiment: str, method: str, seeds: tuple[int, ...]) -> dict[str, object]:
    """The calibrator's size beside the frozen model's (Ye et al. 5.3), from ``export``'s record."""
    if method not in paths.CALIBRATOR_VARIANTS:
        return {}
    deployed = read_json(paths.deployment_json(experiment, paths.CALIBRATOR_VARIANTS[method], seeds[0]))
    return {"calibrator_params": deployed["calibrator_parameters"], "model_params": deployed["model_parameters"],
            "calibrator_share_pct": round(100 * deployed["ratio"], 2)}


def _label_bound_row(params: Params, experiment: str, arch: str) -> dict[str, object]:
    exp, info = params.experiments[experiment], METHOD_INFO["label_bound"]
    bound = read_json(paths.label_bound_json(experiment))
    papers = paper_values(exp.source, exp.target, "label_bound", arch)
    row: dict[str, object] = {
        "experiment": experiment, "method": info.label, "source": exp.source, "target": exp.target,
        "backbone": exp.backbone, "metric": "mIoU %", "target_miou": f"{100 * bound['miou']:.1f}",
        "target_pixel_acc": f"{100 * bound['pixel_acc']:.1f}", "target_class_acc": f"{100 * bound['class_acc']:.1f}",
        "target_mean": round(100 * bound["miou"], 2)}
    for pos, cls in enumerate(bound["eval_classes"]):
        iou = bound["iou"][pos]
        row[f"iou_{bound['classes'][cls]}"] = None if iou is None else round(100 * iou, 1)
    row.update({"paper": "; ".join(p.value for p in papers), "paper_table": "; ".join(p.table for p in papers),
                "n_seeds": 0, "seeds": "", "profile": params.profile, "uses_target_labels": info.uses_target_labels,
                "model_selection": info.selection})
    return row


def prediction_grid(params: Params, experiment: str) -> None:
    """Target frames | source-only prediction | adapted predictions | ground truth (first seed)."""
    exp, seed = params.experiments[experiment], params.experiment_seeds(experiment)[0]
    previews = {m: np.load(paths.predictions_preview(experiment, m, seed)) for m in exp.methods if m != "label_bound"}
    first = next(iter(previews.values()))
    columns = [(f"{exp.target} image", first["images"])]
    columns += [(METHOD_INFO[m].label, colorize(p["predictions"], CITYSCAPES_PALETTE)) for m, p in previews.items()]
    columns.append(("ground truth", colorize(first["labels"], CITYSCAPES_PALETTE)))
    segmentation_grid(columns, paths.predictions_png(experiment),
                      f"{experiment}: {exp.target} test frames, seed {seed} (Cityscapes palette; black = ignored)",
                      legend=list(zip(CITYSCAPES_CLASSES, CITYSCAPES_PALETTE)))


def write_report(params: Params, experiment: str) -> pd.DataFrame:
    table, confusions = build_report(params, experiment)
    exp = params.experiments[experiment]
    curves = []
    for panel, label, col, csv in curve_panels(params, experiment):
        hist = pd.read_csv(csv)
        if col in hist:
            curves.append((panel, label, hist["epoch"], hist[col]))
    training_curves(curves, paths.curves_png(experiment), f"{experiment}: training curves per seed")
    segmentation = params.backbones[exp.backbone].task == "segmentation"
    for method, conf in confusions.items():
        label = METHOD_INFO[method].label
        names = CITYSCAPES_CLASSES if segmentation else [str(i) for i in range(conf.shape[0])]
        confusion_plot(conf, names, paths.confusion_png(experiment, method),
                       f"{experiment}: {label} on {exp.target} test (seeds summed)")
    if segmentation:
        prediction_grid(params, experiment)
    rows = table[table["n_seeds"] > 0]
    seeds = " ".join(map(str, params.experiment_seeds(experiment)))
    tradeoff_plot([(r.method, r.source_mean, r.source_std, r.target_mean, r.target_std) for r in rows.itertuples()],
                  paths.tradeoff_png(experiment), f"{experiment}: source vs target test {rows['metric'].iloc[0]} per "
                  f"method (Calibrator Fig. 2; mean ± std over seeds {seeds})")
    out = Path(paths.report_csv(experiment))
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    return table
