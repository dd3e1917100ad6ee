"""``prepare`` decodes every frame of a real or folder domain: a bad file stops it, naming the file; a flag skips it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline_lib.config import parse_params
from pipeline_lib.domains.frames import build_index, prepare_index
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.domains.validation import MAX_BAD, check_frames
from pipeline_lib.errors import PipelineError
from stages.prepare import main as prepare_main

H, W = 8, 12
STEMS = [f"f{i}" for i in range(5)]  # test_fraction 0.4: f3, f4 are the test split


def _write_folder(root: Path) -> None:
    """Five good frames: RGB images and grey label PNGs holding ids 10 (a), 20 (b) and 0 (ignored)."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for stem in STEMS:
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(root / "images" / f"{stem}.png")
        labels = np.zeros((H, W), np.uint8)
        labels[:, 4:8], labels[:, 8:] = 10, 20
        Image.fromarray(labels).save(root / "labels" / f"{stem}.png")


@pytest.fixture
def mine(tiny_raw, tmp_path, monkeypatch):
    """A tiny folder domain ``mine`` (and the raw params naming it); the working folder is ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    _write_folder(tmp_path / "mine")
    tiny_raw["data"]["folders"].update({"mine": {"root": str(tmp_path / "mine"), "classes": ["a", "b"], "ids": [10, 20],
                                            "ignore_id": 0, "test_fraction": 0.4}})
    return tmp_path / "mine", tiny_raw


def _prepare(raw: dict) -> dict:
    """Run the prepare stage on ``mine`` and return the index it wrote."""
    params = parse_params(raw)
    prepare_main(argparse.Namespace(domain="mine"), params)
    return json.loads(resolve_domain(params, "mine").artifact.read_text())


# each damages a test-split frame by default: prepare's sample grid decodes the first train frames, never these

def _truncate(root: Path, stem: str = "f3") -> tuple[Path, str]:
    path = root / "images" / f"{stem}.png"
    path.write_bytes(path.read_bytes()[:60])
    return path, "is not a readable image"


def _rgb_label(root: Path, stem: str = "f4") -> tuple[Path, str]:
    path = root / "labels" / f"{stem}.png"
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(path)
    return path, "is a RGB colour image, not label ids; use the single-channel (grey) or palette PNGs"


def _unknown_id(root: Path, stem: str = "f4") -> tuple[Path, str]:
    path = root / "labels" / f"{stem}.png"
    labels = np.full((H, W), 10, np.uint8)
    labels[3, 5] = 7
    Image.fromarray(labels).save(path)
    return path, "holds ids [7] that are neither in the label mapping (data.folders.mine.ids) nor the ignore id 0"


def _size_mismatch(root: Path, stem: str = "f3") -> tuple[Path, str]:
    path = root / "images" / f"{stem}.png"
    Image.fromarray(np.zeros((H + 2, W, 3), np.uint8)).save(path)
    return path, f"is {W}x{H + 2} but its label"


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("damage", [_truncate, _rgb_label, _unknown_id, _size_mismatch])
def test_a_bad_file_stops_prepare_naming_it_and_writes_no_index(mine, damage, workers):
    root, raw = mine
    raw["prepare"]["validate_workers"] = workers  # the message crosses from a worker process intact
    path, problem = damage(root)
    params = parse_params(raw)
    build_index(params, "mine")  # the layout alone is fine: only decoding finds these
    with pytest.raises(PipelineError) as excinfo:
        prepare_main(argparse.Namespace(domain="mine"), params)
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.startswith("mine: ") and str(path) in msg and problem in msg, msg
    assert "more bad frame" not in msg
    assert not Path("data/domains/mine.json").exists() and not Path("data/domains/mine.png").exists()


def test_a_good_folder_domain_is_validated_and_the_index_records_it(mine, capsys):
    _, raw = mine
    index = _prepare(raw)  # params.yaml's validate_workers: 2 worker processes
    assert index["counts"] == {"train": 3, "test": 2}
    assert index["validated"] == {"frames": 5, "splits": {"train": {"frames": 3, "sizes": {f"{W}x{H}": 3}},
                                                          "test": {"frames": 2, "sizes": {f"{W}x{H}": 2}}}}
    assert "mine: validated 5 frames in" in capsys.readouterr().out
    again = _prepare(raw)
    assert again == index  # no timing in the index: rerunning prepare changes no byte a DVC stage depends on


def test_the_skip_flag_lets_a_broken_file_through_and_narrows_the_dependencies(mine):
    root, raw = mine
    _truncate(root)
    raw["prepare"]["validate_frames"] = {"mine": False}
    index = _prepare(raw)
    assert index["validated"] is False and index["counts"] == {"train": 3, "test": 2}
    trusted = resolve_domain(parse_params(raw), "mine")  # the check's code and worker count no longer matter
    assert trusted.prepare_keys == ("data.folders.mine", "prepare.validate_frames.mine")
    assert trusted.modules == ("pipeline_lib.domains.segmentation", "pipeline_lib.domains.manifest")
    raw["prepare"]["validate_frames"] = {"mine": True}
    with pytest.raises(PipelineError, match="f3.png is not a readable image"):
        prepare_index(parse_params(raw), "mine")


def test_several_bad_frames_are_counted_in_the_one_line(mine):
    root, raw = mine
    first, _ = _truncate(root, "f1")
    _rgb_label(root, "f2")
    _unknown_id(root, "f4")
    with pytest.raises(PipelineError) as excinfo:
        prepare_index(parse_params(raw), "mine")
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.startswith(f"mine: {first} is not a readable image")
    assert msg.endswith("[2 more bad frame(s): images/f2.png, images/f4.png]"), msg


def test_a_systematic_problem_stops_the_scan_early(tiny_raw, tmp_path):
    root = tmp_path / "colour"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    for i in range(MAX_BAD + 10):  # every label is a colour rendering
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "images" / f"{i:03d}.png")
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "labels" / f"{i:03d}.png")
    tiny_raw["data"]["folders"].update({"colour": {"root": str(root), "classes": ["a"]}})
    params = parse_params(tiny_raw)
    with pytest.raises(PipelineError, match=rf"\[{MAX_BAD - 1} more bad frame\(s\), stopped after {MAX_BAD} of "
                                            rf"{MAX_BAD + 10} frames: images/001.png, images/002.png, images/003.png, "
                                            r"\.\.\.\]$"):
        check_frames(resolve_domain(params, "colour"), build_index(params, "colour"), progress=False)


def test_gta5_frames_whose_image_size_differs_from_the_label_are_resized_not_rejected(tiny_raw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # prepare keeps its hash cache under .pipeline/ of the working folder
    root = tmp_path / "gta"
    for i in range(4):
        for sub in ("images", "labels"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        size = (H + 4, W + 6) if i == 1 else (H, W)  # one frame as in the real GTA5: a larger image
        Image.fromarray(np.zeros((*size, 3), np.uint8)).save(root / "images" / f"{i:05d}.png")
        Image.fromarray(np.full((H, W), 7, np.uint8), mode="L").convert("P").save(root / "labels" / f"{i:05d}.png")
    tiny_raw["data"]["roots"]["gta5"] = str(root)
    tiny_raw["prepare"]["gta5"] = {"test_frames": 1}
    index, check = prepare_index(parse_params(tiny_raw), "gta5")
    assert check is not None and index["validated"] == check.record
    assert check.record["splits"]["train"] == {"frames": 3, "sizes": {f"{W}x{H}": 3}, "resized_to_label": 1}
    assert check.record["splits"]["test"] == {"frames": 1, "sizes": {f"{W}x{H}": 1}, "resized_to_label": 0}


def test_cityscapes_colour_labels_stop_prepare(tiny_raw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # a real dataset gets the same check: here its colour-rendered labels were unzipped in place of the label ids
    for split in ("train", "val"):
        for top, suffix in (("leftImg8bit", "leftImg8bit"), ("gtFine", "gtFine_labelIds")):
            folder = tmp_path / "cs" / top / split / "aachen"
            folder.mkdir(parents=True)
            Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / f"aachen_000000_000019_{suffix}.png")
    tiny_raw["data"]["roots"]["cityscapes"] = str(tmp_path / "cs")
    with pytest.raises(PipelineError, match=r"^cityscapes: label file .*/gtFine/train/aachen/aachen_000000_000019_"
                                            r"gtFine_labelIds\.png is a RGB colour image, not label ids"):
        prepare_index(parse_params(tiny_raw), "cityscapes")


def test_flags_must_name_a_streamed_domain(mine):
    _, raw = mine
    raw["prepare"]["validate_frames"] = {"mnist5k": False}
    with pytest.raises(PipelineError, match=r"prepare\.validate_frames.*'mnist5k' has no dataset folder.*remove it"):
        parse_params(raw)
    raw["prepare"]["validate_frames"] = {"mien": False}  # a typo would leave the trusted dataset checked
    with pytest.raises(PipelineError) as excinfo:
        prepare_index(parse_params(raw), "mine")
    assert str(excinfo.value).startswith("prepare.validate_frames.mien: no real street dataset or segmentation "
                                         "data.folders domain is called 'mien' (these are: gta5, cityscapes, synthia, "
                                         "mine)")


def test_frames_of_mixed_sizes_prepare_with_a_sample_grid(mine):
    """A train frame larger than the others (and one of 1x1) once crashed the sample grid's stack, leaving the index
    without its picture; the grid now shows the frames' common corner."""
    root, raw = mine
    rng = np.random.default_rng(1)
    for stem, (h, w) in (("f0", (2 * H, 2 * W)), ("f1", (1, 1))):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / "images" / f"{stem}.png")
        Image.fromarray(np.full((h, w), 10, np.uint8)).save(root / "labels" / f"{stem}.png")
    index = _prepare(raw)
    assert index["validated"]["splits"]["train"]["sizes"] == {f"{W}x{H}": 1, f"{2 * W}x{2 * H}": 1, "1x1": 1}
    assert Path("data/domains/mine.png").read_bytes()[:4] == b"\x89PNG"


def test_a_failure_while_drawing_the_grid_leaves_no_index_behind(mine, monkeypatch):
    """The grid is written before the index: the stage's two outputs appear together or the index not at all."""
    import stages.prepare

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(stages.prepare, "image_rows", broken)
    _, raw = mine
    with pytest.raises(OSError):
        prepare_main(argparse.Namespace(domain="mine"), parse_params(raw))
    assert not Path("data/domains/mine.json").exists()


def test_frames_of_every_mode_and_an_exif_rotation_prepare_and_decode_as_shown(mine):
    """Grey, grey + alpha, palette, RGBA, 16-bit grey and a JPEG stored sideways with an EXIF rotate tag: prepare
    validates them all, and the reader returns each upright as 8-bit RGB (16-bit grey scaled, not clipped white)."""
    from pipeline_lib.domains.segmentation import _read_rgb

    root, raw = mine
    shown = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    for stem, mode in zip(STEMS, ("L", "LA", "P", "RGBA")):
        Image.fromarray(shown).convert(mode).save(root / "images" / f"{stem}.png")
    Image.fromarray(shown[..., 0].astype(np.uint16) * 257).save(root / "images/f4.png")  # 16-bit: v * 257
    labels = np.asarray(Image.open(root / "labels/f0.png"))
    sideways = Image.fromarray(np.rot90(shown))  # stored rotated a quarter turn counter-clockwise...
    tag = sideways.getexif()
    tag[0x0112] = 6  # ...with "rotate 90 clockwise to show" (a phone's portrait photo)
    sideways.save(root / "images/f5.jpg", quality=100, subsampling=0, exif=tag)
    Image.fromarray(labels).save(root / "labels/f5.png")
    assert Image.open(root / "images/f4.png").mode == "I;16" and Image.open(root / "images/f5.jpg").size == (H, W)

    index = _prepare(raw)
    sizes = index["validated"]["splits"]
    assert sum(s["sizes"].get(f"{W}x{H}", 0) for s in sizes.values()) == 6  # every frame, upright
    wide = np.asarray(_read_rgb(root / "images/f4.png"))
    assert wide.shape == (H, W, 3) and np.array_equal(wide[..., 1], shown[..., 0])
    upright = np.asarray(_read_rgb(root / "images/f5.jpg")).astype(int)
    assert upright.shape == (H, W, 3) and np.abs(upright - shown).mean() < 3  # JPEG's loss only
    rgba = np.asarray(_read_rgb(root / "images/f3.png"))
    assert np.array_equal(rgba, shown)  # the alpha channel dropped, the colours kept
