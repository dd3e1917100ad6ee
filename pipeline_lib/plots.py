"""Figures for the report: sample grids and confusion matrices (matplotlib, Agg)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
import numpy as np  # noqa: E402

from pipeline_lib.artifacts import atomic_path  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def sample_grid(images: np.ndarray, labels: np.ndarray, path: str | Path, title: str, n: int = 40) -> None:
    """Grid of the first ``n`` images (uint8 NHWC) with their labels."""
    n = min(n, len(images))
    cols = 10
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 1.0))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < n:
            _show(ax, images[i])
            ax.set_title(str(labels[i]), fontsize=7)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def _compact(n: float) -> str:
    """A count in at most 4 characters: 987, 12k, 3.4M."""
    n = int(n)
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            v = n / div
            return f"{v:.1f}{unit}" if v < 10 else f"{v:.0f}{unit}"
    return str(n)


def confusion_plot(conf: np.ndarray, classes: Sequence[str], path: str | Path, title: str) -> None:
    """Row-normalised confusion matrix (true class per row) with counts in the cells.

    Readable for any class count: the figure grows with the classes (up to a cap), fonts shrink
    with the cells, long names are rotated, and counts are drawn only where a cell can hold them.
    """
    conf = np.asarray(conf, dtype=np.float64)
    k = len(classes)
    if conf.shape != (k, k):
        raise ValueError(f"confusion matrix of shape {conf.shape} for {k} class names")
    norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    side = min(max(0.45 * k + 2, 4.0), 18.0)
    cell = (side - 2) * 72 / k  # points per cell, roughly
    tick_size = float(np.clip(cell * 0.55, 3, 8))
    longest = max((len(str(c)) for c in classes), default=1)
    fig, ax = plt.subplots(figsize=(side, side - 0.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if longest <= 3:
        ax.set_xticks(range(k), classes, fontsize=tick_size)
    elif k <= 12:
        ax.set_xticks(range(k), classes, fontsize=tick_size, rotation=45, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(range(k), classes, fontsize=tick_size, rotation=90)
    ax.set_yticks(range(k), classes, fontsize=tick_size)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    text_size = min(7.0, cell * 0.28)
    if text_size >= 3.5:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, _compact(conf[i, j]), ha="center", va="center", fontsize=text_size,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(textwrap.fill(title, width=max(40, int(side * 11))), fontsize=9)
    _save(fig, path)


def _show(ax: plt.Axes, img: np.ndarray) -> None:
    """One uint8 HWC image (grey when it has one channel)."""
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None, vmin=0, vmax=255)


def image_rows(rows: Sequence[tuple[str, np.ndarray]], path: str | Path, title: str) -> None:
    """One row per (name, uint8 NHWC images), e.g. source | translated | reconstructed."""
    n = max(len(images) for _, images in rows)
    first = rows[0][1]
    aspect = min(first.shape[2] / first.shape[1], 3.0) if len(first) else 1.0  # street frames are wide
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9 * aspect, len(rows) * 1.0), squeeze=False)
    for r, (name, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(images):
                _show(ax, images[c])
        axes[r][0].set_title(name, fontsize=7, loc="left")
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def classification_grid(images: np.ndarray, labels: np.ndarray, rows: Sequence[tuple[str, np.ndarray]],
                        classes: Sequence[str], path: str | Path, title: str) -> None:
    """The same test images once per model (row), each titled with the model's predicted class: green where
    it is right, red where it is wrong; the first row gives the true classes.

    Drawn as one mosaic in one axes (a grid of one axes per image took seconds to draw for a report's dozen rows):
    each tile has a band above it for its class name, the row's name sits to its left, the title right above the
    first row."""
    n, h, w = len(images), images.shape[1], images.shape[2]
    tiles = np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images
    named = [("true class", labels), *rows]
    gap, band = max(2, w // 8), max(6, int(0.35 * h))  # between tiles; above each tile, for its class name
    pitch_x, pitch_y = w + gap, h + band
    mosaic = np.full((len(named) * pitch_y, n * pitch_x - gap, 3), 255, np.uint8)
    for r in range(len(named)):
        for c in range(n):
            mosaic[r * pitch_y + band:(r + 1) * pitch_y, c * pitch_x:c * pitch_x + w] = tiles[c]
    width = n * 0.75  # inches of the mosaic, as one axes per image gave
    fig = plt.figure(figsize=(width + 1.4, width * mosaic.shape[0] / mosaic.shape[1] + 0.4))
    ax = fig.add_axes((1.2 / (width + 1.4), 0.0, width / (width + 1.4), 1.0))
    ax.imshow(mosaic, interpolation="nearest")
    ax.axis("off")
    for r, (name, predictions) in enumerate(named):
        for c in range(n):
            right = predictions[c] == labels[c]
            ax.text(c * pitch_x + w / 2, r * pitch_y + band - 1, str(classes[int(predictions[c])]), fontsize=6,
                    ha="center", va="bottom", color="black" if r == 0 else "tab:green" if right else "tab:red")
        ax.text(-gap, r * pitch_y + band + h / 2, textwrap.fill(name, 16), fontsize=6, ha="right", va="center")
    ax.set_title(title, fontsize=8, pad=2)
    _save(fig, path)


#: a panel with more legend entries than this puts its legend below the axes, never over the lines
LEGEND_INSIDE_MAX = 4
_SEED_STYLES = ("-", "--", ":", "-.")


def _series_parts(label: str) -> tuple[str, str]:
    """``"CyCADA feat only, seed 1"`` -> (``"CyCADA feat only"``, ``"seed 1"``);
    ``"seed 0"`` -> (``""``, ``"seed 0"``)."""
    name, sep, seed = label.rpartition(", ")
    if sep and seed.startswith("seed "):
        return name, seed
    return ("", label) if label.startswith("seed ") else (label, "")


def training_curves(curves: Sequence[tuple[str, str, Sequence[float], Sequence[float]]], path: str | Path,
                    title: str) -> None:
    """:func:`curves_figure`, saved to ``path``."""
    _save(curves_figure(curves, title), path)


def curves_figure(curves: Sequence[tuple[str, str, Sequence[float], Sequence[float]]], title: str) -> Figure:
    """Panels of (panel title, series label, x, y) lines; series sharing a panel title share axes.

    A panel whose series are several methods' (labels ``"<method>, seed <k>"``) draws one colour per method and one
    line style per seed, and lists each once; a legend of more than ``LEGEND_INSIDE_MAX`` entries goes below the
    axes. Titles wrap to the panel's width and epochs are whole numbers."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    panels: dict[str, list[tuple[str, Sequence[float], Sequence[float]]]] = {}
    for panel, label, x, y in curves:
        panels.setdefault(panel, []).append((label, x, y))
    cols = min(max(len(panels), 1), 3)
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.6 * rows), squeeze=False, layout="constrained")
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (panel, series) in zip(axes.ravel(), panels.items()):
        parts = [_series_parts(label) for label, _, _ in series]
        names = list(dict.fromkeys(name for name, _ in parts))
        seeds = list(dict.fromkeys(seed for _, seed in parts))
        by_method = len(names) > 1
        for (label, x, y), (name, seed) in zip(series, parts):
            if by_method:
                ax.plot(x, y, color=colors[names.index(name) % len(colors)],
                        linestyle=_SEED_STYLES[seeds.index(seed) % len(_SEED_STYLES)], linewidth=1)
            else:
                ax.plot(x, y, label=label if not name else seed or label, linewidth=1)
        if by_method:
            handles = [Line2D([], [], color=colors[i % len(colors)], label=n) for i, n in enumerate(names)]
            if len(seeds) > 1:
                handles += [Line2D([], [], color="grey", linestyle=_SEED_STYLES[i % len(_SEED_STYLES)], label=s)
                            for i, s in enumerate(seeds)]
        else:
            handles = ax.get_legend_handles_labels()[0]
        if len(handles) > LEGEND_INSIDE_MAX:
            ax.legend(handles=handles, fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1,
                      frameon=False)
        elif handles:
            ax.legend(handles=handles, fontsize=6)
        ax.set_title(textwrap.fill(panel, 48), fontsize=8)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title, fontsize=10)
    return fig


def colorize(masks: np.ndarray, palette: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """Train-id masks (..., H, W) -> uint8 colour images (..., H, W, 3); 255 (ignored) is black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(palette)] = np.asarray(palette, np.uint8)
    return lut[np.asarray(masks, np.uint8)]


def segmentation_grid(columns: Sequence[tuple[str, np.ndarray]], path: str | Path, title: str,
                      legend: Sequence[tuple[str, tuple[int, int, int]]] = ()) -> None:
    """One row per frame, one column per (name, uint8 NHWC images): e.g. target image | source-only
    prediction | adapted prediction | ground truth, with a class legend underneath."""
    n = min(len(images) for _, images in columns)
    h, w = columns[0][1].shape[1:3]
    fig, axes = plt.subplots(n, len(columns), figsize=(len(columns) * 2.2 * min(w / h, 3.0), n * 2.2 + 0.6),
                             squeeze=False)
    for c, (name, images) in enumerate(columns):
        axes[0][c].set_title(name, fontsize=8)
        for r in range(n):
            axes[r][c].imshow(images[r])
            axes[r][c].axis("off")
    if legend:
        fig.subplots_adjust(bottom=0.03)
        _class_legend(fig, legend)
    fig.suptitle(textwrap.fill(title, width=max(40, int(fig.get_figwidth() * 11))), fontsize=9)
    _save(fig, path)


def _class_legend(fig: plt.Figure, legend: Sequence[tuple[str, tuple[int, int, int]]]) -> None:
    """A colour key under the figure, wrapped into as many columns as its width holds (any class count)."""
    from matplotlib.patches import Patch
    handles = [Patch(facecolor=np.asarray(col) / 255, edgecolor="0.5", linewidth=0.5, label=str(name))
               for name, col in legend]
    size = 7.0 if len(handles) <= 20 else 6.0 if len(handles) <= 60 else 5.0
    entry = (max(len(str(name)) for name, _ in legend) + 4) * size * 0.6  # points: patch, gap and name
    ncol = max(1, min(len(handles), int(fig.get_figwidth() * 72 // entry)))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, fontsize=size,
               frameon=False, handlelength=1.2, columnspacing=1.0)


def source_or_not(panels: Sequence[dict], path: str | Path, title: str) -> None:
    """GAM Fig. 3: per layer, histograms of one unit's activations over all locations, for two images
    of the same domain (top) and of different domains (bottom)."""
    fig, axes = plt.subplots(2, max(len(panels), 1), figsize=(3.2 * max(len(panels), 1), 4.6), squeeze=False)
    for c, p in enumerate(panels):
        for r, (other, label) in enumerate((("source_b", "same domain"), ("target", "different domains"))):
            ax = axes[r][c]
            lo = float(min(p["source_a"].min(), p[other].min()))
            hi = float(max(p["source_a"].max(), p[other].max()))
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
            ax.hist(p["source_a"], bins=bins, alpha=0.6, color="tab:orange")
            ax.hist(p[other], bins=bins, alpha=0.6, color="tab:blue")
            ax.set_title(f"{p['layer']} unit {p['unit']}: {label}", fontsize=8)
            ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def fourier_plot(spectra: dict[str, np.ndarray], examples: Sequence[tuple[str, np.ndarray]], path: str | Path,
                 title: str) -> None:
    """Calibrator Fig. 6: a few images before / after calibration (top) and the mean log amplitude
    spectra of target images before and after, their difference and the perturbation's (bottom)."""
    n = max(len(images) for _, images in examples)
    fig, axes = plt.subplots(len(examples) + 1, max(n, 4), figsize=(2.2 * max(n, 4), 2.0 * (len(examples) + 1)),
                             squeeze=False)
    for r, (name, images) in enumerate(examples):
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(images):
                _show(ax, images[c])
        axes[r][0].set_title(name, fontsize=8, loc="left")
    panels = [("target, before", spectra["before"]), ("target, after", spectra["after"]),
              ("after - before", spectra["after"] - spectra["before"]), ("perturbation", spectra["perturbation"])]
    for c, ax in enumerate(axes[-1]):
        ax.axis("off")
        if c < len(panels):
            name, spec = panels[c]
            diff = name.startswith("after -")
            lim = float(np.abs(spec).max()) or 1.0
            im = ax.imshow(spec, cmap="coolwarm" if diff else "viridis", vmin=-lim if diff else None,
                           vmax=lim if diff else None)
            ax.set_title(f"log amplitude: {name}", fontsize=8)
            fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(title + "\n(centre = low frequencies; blue in 'after - before' = less energy after calibration)",
                 fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def tradeoff_plot(points: Sequence[tuple[str, float, float | None, float, float | None]], path: str | Path,
                  title: str) -> None:
    """Calibrator Fig. 2: each method's source test metric (x) against its target test metric (y),
    with the spread over seeds as error bars."""
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    markers = "osD^v<>pP*Xh"
    for i, (label, sx, sx_std, ty, ty_std) in enumerate(points):
        ax.errorbar(sx, ty, xerr=_spread(sx_std), yerr=_spread(ty_std), fmt=markers[i % len(markers)], ms=7,
                    capsize=3, label=label, color=plt.get_cmap("tab20")(i % 20))
    ax.set_xlabel("source test (%)")
    ax.set_ylabel("target test (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _spread(std: float | None) -> float | None:
    """An error bar, or none for a single seed (NaN / None)."""
    return None if std is None or std != std else std


def embedding_plot(panels: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str | Path, title: str) -> None:
    """I2IAdapt Fig. 3: per model, 2-D points of source (red) and target (blue) codes. ``panels`` holds
    (title, points N x 2, is_source N bools)."""
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(3.4 * max(len(panels), 1), 3.4), squeeze=False)
    for ax, (name, points, is_source) in zip(axes[0], panels):
        ax.scatter(*points[~is_source].T, s=3, c="tab:blue", alpha=0.5, label="target")
        ax.scatter(*points[is_source].T, s=3, c="tab:red", alpha=0.5, label="source")
        ax.set_title(textwrap.fill(name, 40), fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    axes[0][0].legend(fontsize=7, markerscale=3, loc="best")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)
