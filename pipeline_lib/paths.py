"""Where every artifact lives. The DAG and the stage CLIs both derive paths from here."""

from __future__ import annotations

from pathlib import Path

from pipeline_lib.config import EMBEDDED_SCENE_DOMAINS, Params

CYCADA_VARIANTS = {"cycada_feat": "feat", "cycada_pixel_feat": "pixel_feat"}
#: GAM's rows: method -> (stage, variant) of the artifact that the row evaluates
GAM_VARIANTS = {"gam_gaussian": "gaussian", "adda_reg": "adda_reg", "gam_noreg": "noreg", "gam": "full"}
#: the calibrator's rows: method -> variant (raw: F_s trained on source; cycada: CyCADA's pixel-only model)
CALIBRATOR_VARIANTS = {"calibrator": "raw", "cycada_calibrator": "cycada"}


def domain_npz(domain: str) -> Path:
    return Path("data/domains") / f"{domain}.npz"


def domain_artifact(params: Params, domain: str) -> Path:
    """What ``prepare`` writes: an ``.npz`` of images (digits, embedded scenes) or, for a real
    segmentation dataset that is streamed from its own folder, a ``.json`` index of its frames."""
    if params.domain_task(domain) == "classification" or domain in EMBEDDED_SCENE_DOMAINS:
        return domain_npz(domain)
    return Path("data/domains") / f"{domain}.json"


def domain_samples_png(domain: str) -> Path:
    return Path("data/domains") / f"{domain}.png"


def supervised_model(domain: str, backbone: str, seed: int) -> Path:
    return Path("models/supervised") / f"{domain}-{backbone}" / f"seed{seed}.pt"


def history(model: Path) -> Path:
    """The per-epoch training log next to a checkpoint."""
    return model.with_suffix(".history.csv")


def cycada_dir(experiment: str, seed: int) -> Path:
    return Path("models/cycada") / experiment / f"seed{seed}"


def cyclegan_model(experiment: str, seed: int) -> Path:
    return cycada_dir(experiment, seed) / "cyclegan.pt"


def translated_dataset(experiment: str, seed: int) -> Path:
    """Directory: shard-NNNNN.npz files + manifest.json."""
    return Path("data/translated") / experiment / f"seed{seed}"


def translation_grid(experiment: str, seed: int) -> Path:
    return Path("reports") / experiment / f"translation_seed{seed}.png"


def pixel_model(experiment: str, seed: int) -> Path:
    return cycada_dir(experiment, seed) / "pixel.pt"


def adapted_model(experiment: str, variant: str, seed: int) -> Path:
    return cycada_dir(experiment, seed) / f"{variant}.pt"


def gam_model(experiment: str, variant: str, seed: int) -> Path:
    """GAM's checkpoints: gaussian (4.1), full / noreg (4.2), adda_reg (ADDA + the regulariser)."""
    return Path("models/gam") / experiment / f"seed{seed}" / f"{variant}.pt"


def calibrator_model(experiment: str, variant: str, seed: int) -> Path:
    """The calibrator's checkpoint (its frozen model is the source or pixel-only checkpoint)."""
    return Path("models/calibrator") / experiment / f"seed{seed}" / f"{variant}.pt"


def calibrator_frozen_model(params: Params, experiment: str, variant: str, seed: int) -> Path:
    exp = params.experiments[experiment]
    return supervised_model(exp.source, exp.backbone, seed) if variant == "raw" else pixel_model(experiment, seed)


def deployed_model(experiment: str, variant: str, seed: int) -> Path:
    """``export``'s one TorchScript file: calibrator then frozen model."""
    return calibrator_model(experiment, variant, seed).with_suffix(".torchscript.pt")


def deployment_json(experiment: str, variant: str, seed: int) -> Path:
    """Parameter counts, file size and the export check, read by the report."""
    return calibrator_model(experiment, variant, seed).with_suffix(".deploy.json")


def fourier_png(experiment: str, variant: str, seed: int) -> Path:
    return Path("reports") / experiment / f"fourier_{variant}_seed{seed}.png"


def source_or_not_png(experiment: str, seed: int) -> Path:
    return Path("reports") / experiment / f"source_or_not_seed{seed}.png"


def method_model(params: Params, experiment: str, method: str, seed: int) -> Path:
    """The checkpoint a report row evaluates."""
    exp = params.experiments[experiment]
    if method == "source_only":
        return supervised_model(exp.source, exp.backbone, seed)
    if method == "oracle":
        return supervised_model(exp.target, exp.backbone, seed)
    if method == "cycada_pixel":
        return pixel_model(experiment, seed)
    if method in CYCADA_VARIANTS:
        return adapted_model(experiment, CYCADA_VARIANTS[method], seed)
    if method in GAM_VARIANTS:
        return gam_model(experiment, GAM_VARIANTS[method], seed)
    if method in CALIBRATOR_VARIANTS:
        return calibrator_model(experiment, CALIBRATOR_VARIANTS[method], seed)
    raise KeyError(method)


def curve_histories(params: Params, experiment: str) -> list[tuple[str, int, Path]]:
    """(stage, seed, history CSV) behind the report's training curves; stage is "cyclegan" or a
    feature-adaptation method. The report stage lists these CSVs as its inputs."""
    methods = set(params.experiments[experiment].methods)
    out: list[tuple[str, int, Path]] = []
    for seed in params.experiment_seeds(experiment):
        if {"cycada_pixel", "cycada_pixel_feat"} & methods:
            out.append(("cyclegan", seed, history(cyclegan_model(experiment, seed))))
        out += [(method, seed, history(adapted_model(experiment, variant, seed)))
                for method, variant in CYCADA_VARIANTS.items() if method in methods]
        out += [(method, seed, history(gam_model(experiment, variant, seed)))
                for method, variant in GAM_VARIANTS.items() if method in methods and method != "gam_gaussian"]
        out += [(method, seed, history(calibrator_model(experiment, variant, seed)))
                for method, variant in CALIBRATOR_VARIANTS.items() if method in methods]
    return out


def metrics_json(experiment: str, method: str, seed: int) -> Path:
    return Path("metrics") / experiment / method / f"seed{seed}.json"


def predictions_preview(experiment: str, method: str, seed: int) -> Path:
    """A few target frames with their predictions (segmentation), for the report's picture grid."""
    return Path("metrics") / experiment / method / f"seed{seed}.preview.npz"


def predictions_png(experiment: str) -> Path:
    return Path("reports") / experiment / "predictions.png"


def label_bound_json(experiment: str) -> Path:
    """GAM 5.3's label-distribution bound (no model, no seed)."""
    return Path("metrics") / experiment / "label_bound.json"


def report_csv(experiment: str) -> Path:
    return Path("reports") / f"{experiment}.csv"


def confusion_png(experiment: str, method: str) -> Path:
    return Path("reports") / experiment / f"confusion_{method}.png"


def curves_png(experiment: str) -> Path:
    return Path("reports") / experiment / "training_curves.png"


def tradeoff_png(experiment: str) -> Path:
    """Source vs target metric per method (the calibrator paper's Fig. 2)."""
    return Path("reports") / experiment / "tradeoff.png"
