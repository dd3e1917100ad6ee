"""Report figures render for any class count (a user's folder domain can have any classes)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline_lib.domains.classes import default_palette
from pipeline_lib.plots import colorize, confusion_plot, segmentation_grid


def _names(k: int) -> list[str]:
    return [f"class number {i}" if i % 3 else f"c{i}" for i in range(k)]


@pytest.mark.parametrize("k", [2, 11, 40])
def test_confusion_plot_renders_for_any_class_count(tmp_path, k):
    rng = np.random.default_rng(k)
    conf = rng.integers(0, 5_000_000, (k, k))
    out = tmp_path / f"confusion_{k}.png"
    confusion_plot(conf, _names(k), out, f"experiment: a {k}-class confusion matrix with a rather long title " * 2)
    with Image.open(out) as im:
        assert im.format == "PNG" and min(im.size) > 100
    if k == 40:  # grows with the classes, up to a cap
        with Image.open(tmp_path / "confusion_40.png") as big:
            assert max(big.size) < 18 * 110 * 1.5


def test_confusion_plot_rejects_a_mismatched_class_list(tmp_path):
    with pytest.raises(ValueError, match="shape .* for 3 class names"):
        confusion_plot(np.zeros((4, 4)), ["a", "b", "c"], tmp_path / "c.png", "t")


@pytest.mark.parametrize("k", [2, 11, 40])
def test_prediction_grid_with_a_legend_for_any_class_count(tmp_path, k):
    rng = np.random.default_rng(0)
    masks = rng.integers(0, k, (3, 16, 24)).astype(np.uint8)
    masks[:, 0] = 255  # ignored pixels are black
    palette = default_palette(k)
    images = rng.integers(0, 256, (3, 16, 24, 3), dtype=np.uint8)
    coloured = colorize(masks, palette)
    assert (coloured[:, 0] == 0).all() and tuple(coloured[0, 1, 0]) == palette[masks[0, 1, 0]]
    out = tmp_path / f"grid_{k}.png"
    segmentation_grid([("image", images), ("prediction", coloured), ("ground truth", coloured)], out,
                      f"{k} classes", legend=list(zip(_names(k), palette)))
    with Image.open(out) as im:
        assert im.format == "PNG"
        width, height = im.size
    assert width < 1200  # the legend wraps into rows instead of widening the figure


def test_classification_grid_draws_one_row_per_model_under_the_true_classes(tmp_path):
    from pipeline_lib.plots import classification_grid

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (6, 28, 28, 1), np.uint8), np.arange(6) % 3
    rows = [(f"model {i}", rng.integers(0, 3, 6)) for i in range(3)]
    classification_grid(images, labels, rows, ["zero", "one", "two"], tmp_path / "p.png", "title")
    with Image.open(tmp_path / "p.png") as few:
        classification_grid(images, labels, rows * 3, ["zero", "one", "two"], tmp_path / "q.png", "title")
        with Image.open(tmp_path / "q.png") as many:
            assert many.height > few.height > 0 and many.width == few.width


def _many_methods_curves():
    methods = [f"method number {i} with a long descriptive name" for i in range(9)]
    epochs = np.arange(1, 16)
    curves = [("target test accuracy per epoch (GAM Fig. 5; monitoring only, never used to select)",
               f"{m}, seed {s}", epochs, np.linspace(0.4, 0.6, 15) + 0.01 * i) for i, m in enumerate(methods)
              for s in range(3)]
    for panel in ("a first panel with a long title that would run into its neighbour's title on one line",
                  "a second panel with a long title that would run into its neighbour's title on one line"):
        curves += [(panel, f"seed {s}", epochs[:2], np.array([1.0, 0.5]) + s) for s in range(3)]
    return curves, methods


def test_training_curves_list_each_method_once_below_the_axes_with_whole_epochs_and_no_overlap():
    from pipeline_lib.plots import curves_figure
    curves, methods = _many_methods_curves()
    fig = curves_figure(curves, "exp: training curves per seed")
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    monitor = fig.axes[0]
    legend = monitor.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == methods + ["seed 0", "seed 1", "seed 2"]  # 12, not 27
    assert legend.get_window_extent(renderer).y1 <= monitor.get_window_extent(renderer).y0  # below, not over lines
    for ax in fig.axes[:3]:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes[:3]] + [fig._suptitle.get_window_extent(renderer)]
    for i, a in enumerate(titles):
        for b in titles[i + 1:]:
            assert not a.overlaps(b)


def test_classification_grid_puts_its_title_on_the_first_row_with_no_empty_band_between(tmp_path):
    """Square images leave a tall grid's rows shorter than the figure; the title must not float above a blank
    band (the demo's 14-row grid had one of about 100 pixels)."""
    from pipeline_lib.plots import classification_grid

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (10, 28, 28, 3), np.uint8), np.arange(10)
    rows = [(f"a row with a long label {i}", rng.integers(0, 10, 10)) for i in range(14)]
    classification_grid(images, labels, rows, [str(i) for i in range(10)], tmp_path / "p.png", "title")
    with Image.open(tmp_path / "p.png") as png:
        blank = (np.asarray(png.convert("L")) > 250).all(axis=1)
    runs, run = [], 0
    for row_is_blank in blank:
        run = run + 1 if row_is_blank else 0
        runs.append(run)
    assert max(runs) < 40
