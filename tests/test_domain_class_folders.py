"""Class-per-folder domains (``data.folders.<name>`` with ``layout: classes``): listing, decoding, splits, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline_lib.config import FolderDomainParams, load_params
from pipeline_lib.domains import build_domain
from pipeline_lib.domains.class_folders import read_image
from pipeline_lib.domains.resolve import check_compatible, resolve_domain
from pipeline_lib.errors import PipelineError

ROOT = Path(__file__).resolve().parents[1]


def _write(root: Path, classes: dict[str, int], size: tuple[int, int] = (40, 30)) -> None:
    for k, (cls, n) in enumerate(classes.items()):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", size, (40 * k, 10 * i, 200)).save(root / cls / f"img{i:02d}.png")


def _params(tmp_path: Path, **folders):
    params = load_params(ROOT / "params.yaml")
    data = params.data.model_copy(update={"folders": {k: FolderDomainParams(**v) for k, v in folders.items()}})
    return params.model_copy(update={"data": data})


def test_classes_come_from_the_sorted_folders_and_each_class_is_split_by_its_last_files(tmp_path):
    _write(tmp_path / "a", {"mug": 5, "bike": 5, "pen": 10})
    params = _params(tmp_path, a={"root": tmp_path / "a", "layout": "classes", "size": 16})
    domain = resolve_domain(params, "a")
    assert (domain.kind, domain.task, domain.classes) == ("class_folder", "classification", ("bike", "mug", "pen"))
    data = build_domain("a", params, {})
    assert data.train.images.shape == (16, 16, 16, 3) and data.test.images.shape == (4, 16, 16, 3)
    assert np.bincount(data.test.labels).tolist() == [1, 1, 2]  # 20% of each class
    # the held-out images are each class's last by name: green channel 10 * i, bike (k=1) and mug (k=0)
    assert sorted(int(g) for g in data.test.images[:, 8, 8, 1]) == [40, 40, 80, 90]
    assert len(set(data.train.labels[:6].tolist())) > 1  # stored shuffled, as the digit sets are


def test_explicit_classes_set_the_train_ids_and_a_glob_holds_out_class_and_stem(tmp_path):
    _write(tmp_path / "a", {"mug": 4, "bike": 4})
    spec = {"root": tmp_path / "a", "layout": "classes", "classes": ["mug", "bike"], "size": 8,
            "test_glob": "bike/img0[23]"}
    data = build_domain("a", _params(tmp_path, a=spec), {})
    assert data.classes == ("mug", "bike") and data.test.labels.tolist() == [1, 1]
    assert sorted(int(g) for g in data.test.images[:, 4, 4, 1]) == [20, 30]  # bike's img02 and img03
    assert len(data.train) == 6


@pytest.mark.parametrize(("spec", "message"), [
    ({"classes": ["mug", "cup"]}, r"class\(es\) have no folder"),
    ({"test_stems": ["nope"]}, r"test_stems names 1 stem\(s\) with no image"),
    ({"test_glob": "*"}, "holds out all 4 images"),
])
def test_bad_class_lists_and_split_rules_stop_with_one_line(tmp_path, spec, message):
    _write(tmp_path / "a", {"mug": 2, "bike": 2})
    params = _params(tmp_path, a={"root": tmp_path / "a", "layout": "classes", "size": 8, **spec})
    with pytest.raises(PipelineError, match=message):
        build_domain("a", params, {})


def test_a_broken_file_is_named(tmp_path):
    _write(tmp_path / "a", {"mug": 5, "bike": 5})
    (tmp_path / "a/mug/img01.png").write_text("not an image")
    params = _params(tmp_path, a={"root": tmp_path / "a", "layout": "classes", "size": 8})
    with pytest.raises(PipelineError, match=r"img01\.png is not a readable image") as err:
        build_domain("a", params, {})
    assert "\n" not in str(err.value)


def test_any_mode_orientation_and_size_becomes_a_centred_rgb_square(tmp_path):
    wide = np.zeros((20, 60), np.uint16)
    wide[:, 20:40] = 128 * 257  # a 16-bit grey image: mid-grey centre band (PIL's own convert would clip to 255)
    Image.fromarray(wide).save(tmp_path / "grey16.png")
    assert read_image(tmp_path / "grey16.png", 10)[5, 5].tolist() == [128, 128, 128]  # centre crop, scaled
    rgba = Image.new("RGBA", (8, 8), (10, 20, 30, 0))
    rgba.save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "rgba.png", 4)[0, 0].tolist() == [10, 20, 30]
    image = Image.new("RGB", (30, 10), (0, 0, 0))
    image.paste((255, 0, 0), (0, 0, 15, 10))  # red left half; EXIF "rotate 90 CW" puts it on top
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "rot.jpg", exif=exif, quality=100)
    out = read_image(tmp_path / "rot.jpg", 10)
    assert out.shape == (10, 10, 3) and out[:3, :, 0].mean() > 200 and out[7:, :, 0].mean() < 50


def test_source_and_target_class_lists_are_checked(tmp_path):
    _write(tmp_path / "a", {"mug": 2, "bike": 2})
    _write(tmp_path / "b", {"mug": 2, "pen": 2})
    params = _params(tmp_path, a={"root": tmp_path / "a", "layout": "classes"},
                     b={"root": tmp_path / "b", "layout": "classes"})
    with pytest.raises(PipelineError, match=r"data\.folders\.a\.classes or data\.folders\.b\.classes"):
        check_compatible(resolve_domain(params, "a"), resolve_domain(params, "b"), "experiments.x")


def test_layout_keys_are_validated():
    with pytest.raises(ValueError, match="lists its classes"):
        FolderDomainParams(root="x")
    with pytest.raises(ValueError, match="ids and ignore_id describe label PNGs"):
        FolderDomainParams(root="x", layout="classes", ids=[1])
