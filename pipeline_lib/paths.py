"""Where every artifact lives. The DAG and the stage CLIs both derive paths from here."""

from __future__ import annotations

from pathlib import Path

from pipeline_lib.config import Params


def domain_npz(domain: str) -> Path:
    return Path("data/domains") / f"{domain}.npz"


def domain_samples_png(domain: str) -> Path:
    return Path("data/domains") / f"{domain}.png"


def supervised_model(domain: str, backbone: str, seed: int) -> Path:
    return Path("models/supervised") / f"{domain}-{backbone}" / f"seed{seed}.pt"


def supervised_history(domain: str, backbone: str, seed: int) -> Path:
    return Path("models/supervised") / f"{domain}-{backbone}" / f"seed{seed}.history.csv"


def method_model(params: Params, experiment: str, method: str, seed: int) -> Path:
    """The checkpoint a report row evaluates."""
    exp = params.experiments[experiment]
    if method == "source_only":
        return supervised_model(exp.source, exp.backbone, seed)
    if method == "oracle":
        return supervised_model(exp.target, exp.backbone, seed)
    raise KeyError(method)


def metrics_json(experiment: str, method: str, seed: int) -> Path:
    return Path("metrics") / experiment / method / f"seed{seed}.json"


def report_csv(experiment: str) -> Path:
    return Path("reports") / f"{experiment}.csv"


def confusion_png(experiment: str, method: str) -> Path:
    return Path("reports") / experiment / f"confusion_{method}.png"
