"""``translate`` checks the free disk before it writes: too little stops it with one line and nothing written."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline_lib import diskspace
from pipeline_lib.config import parse_params
from pipeline_lib.errors import PipelineError
from stages.prepare import main as prepare_main
from stages.translate import main as translate_main

H, W, FRAMES = 16, 24, 5


def _folder(root: Path) -> None:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(FRAMES):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(root / "images" / f"f{i}.png")
        Image.fromarray(np.tile(np.arange(W, dtype=np.uint8) % 2, (H, 1))).save(root / "labels" / f"f{i}.png")


@pytest.fixture
def pair(tiny_raw, tmp_path, monkeypatch):
    """Two prepared folder domains and an experiment between them; the working folder is ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    for name in ("mine_a", "mine_b"):
        _folder(tmp_path / name)
        tiny_raw["data"]["folders"][name] = {"root": str(tmp_path / name), "classes": ["x", "y"], "test_fraction": 0.4}
    tiny_raw["experiments"]["mine"] = {"source": "mine_a", "target": "mine_b", "backbone": "street"}
    params = parse_params(tiny_raw)
    for name in ("mine_a", "mine_b"):
        prepare_main(argparse.Namespace(domain=name), params)
    return params


def test_translate_stops_before_writing_when_the_disk_is_too_small(pair, monkeypatch):
    monkeypatch.setattr(diskspace, "free_bytes", lambda path: 1000)
    with pytest.raises(PipelineError) as err:
        translate_main(argparse.Namespace(experiment="mine", seed=0), pair)
    line = str(err.value)
    assert "\n" not in line
    needed = diskspace.translated_set_bytes(3, H, W)  # the 3 training frames, 3 channels + a mask byte per pixel
    assert f"needs {needed / 1e9:.1f} GB" in line and "has 0.0 GB free" in line
    assert "segmentation.cycada.translate.max_width" in line and "point data/translated at a larger disk" in line
    assert not Path("data/translated").exists()


def test_translate_goes_on_when_the_disk_suffices(pair, monkeypatch):
    asked = []
    monkeypatch.setattr(diskspace, "free_bytes", lambda path: asked.append(path) or 10**12)
    with pytest.raises(PipelineError, match="cyclegan.pt: checkpoint not found"):  # the check passed: next, its input
        translate_main(argparse.Namespace(experiment="mine", seed=0), pair)
    assert asked == [Path("data/translated/mine/seed0")]


def test_margin_is_kept_free():
    assert diskspace.with_margin(10**12) == 10**12 + 5 * 10**10
    assert diskspace.with_margin(10) == 10 + diskspace.MARGIN_BYTES
