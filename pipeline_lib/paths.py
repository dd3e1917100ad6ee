"""Where the shared artifacts live: prepared domains, supervised models, metrics and reports.

A method's own artifacts (a CycleGAN, a translated set, a calibrator, ...) are placed by its
declaration in ``pipeline_lib/methods/<name>_spec.py``; the DAG and the stage CLIs derive every
path from these functions.
"""

from __future__ import annotations

from pathlib import Path



def domain_npz(domain: str) -> Path:
    return Path("data/domains") / f"{domain}.npz"


def raw_manifest(domain: str) -> Path:
    """The content manifest of a real or folder domain's dataset folder (:mod:`pipeline_lib.domains.manifest`)."""
    return Path("data/manifests") / f"{domain}.json"


def domain_samples_png(domain: str) -> Path:
    return Path("data/domains") / f"{domain}.png"


def supervised_model(domain: str, backbone: str, seed: int) -> Path:
    return Path("models/supervised") / f"{domain}-{backbone}" / f"seed{seed}.pt"


HISTORY_SUFFIX = ".history.csv"


def history(model: Path) -> Path:
    """The per-epoch training log next to a checkpoint (:mod:`pipeline_lib.history`)."""
    return model.with_suffix(HISTORY_SUFFIX)


def is_history(path: str | Path) -> bool:
    return str(path).endswith(HISTORY_SUFFIX)


def series(model: Path) -> Path:
    """The folder of a training run's checkpoint series beside its checkpoint (``<stem>.series/epoch0003.pt``),
    the candidates ``select`` chooses from (:mod:`pipeline_lib.selection`)."""
    return model.with_suffix(".series")


def selection_json(experiment: str, method: str) -> Path:
    """``select``'s scores of every checkpoint of a row (all its seeds) and each validator's choice."""
    return Path("metrics") / experiment / method / "selection.json"


def validators_csv(experiment: str) -> Path:
    """The per-experiment validator table: each validator's regret and weighted Spearman correlation."""
    return Path("reports") / experiment / "validators.csv"


def metrics_json(experiment: str, method: str, seed: int) -> Path:
    return Path("metrics") / experiment / method / f"seed{seed}.json"


def predictions_preview(experiment: str, method: str, seed: int) -> Path:
    """A few target test images with their predictions, for the report's picture grid."""
    return Path("metrics") / experiment / method / f"seed{seed}.preview.npz"


def predictions_png(experiment: str) -> Path:
    return Path("reports") / experiment / "predictions.png"


def report_csv(experiment: str) -> Path:
    return Path("reports") / f"{experiment}.csv"


def report_metrics(experiment: str) -> Path:
    """The report table's numbers as DVC metrics: per row, target and source mean and std over seeds."""
    return Path("reports") / experiment / "metrics.json"


def confusion_dir(experiment: str) -> Path:
    """One confusion matrix per report row: a folder, since the rows differ between experiments and one
    Snakemake rule writes every experiment's report."""
    return Path("reports") / experiment / "confusion"


def confusion_png(experiment: str, method: str) -> Path:
    return confusion_dir(experiment) / f"{method}.png"


def confusion_json(experiment: str, method: str) -> Path:
    """The same matrix as DVC plot data (template .dvc/plots/confusion_counts.json)."""
    return confusion_dir(experiment) / f"{method}.json"


def curves_png(experiment: str) -> Path:
    return Path("reports") / experiment / "training_curves.png"


def tradeoff_png(experiment: str) -> Path:
    """Source vs target metric per row (the calibrator paper's Fig. 2)."""
    return Path("reports") / experiment / "tradeoff.png"
