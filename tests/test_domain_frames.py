"""Segmentation domains as streamed frame datasets: transforms, indexes of real datasets, shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from pipeline_lib.artifacts import ShardReader, ShardWriter
from pipeline_lib.config import FrameParams, parse_params
from pipeline_lib.domains.frames import (
    ArrayFrames,
    ShardFrames,
    build_index,
    frame_transform,
    open_frames,
    write_index,
)
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.errors import PipelineError


def _pair(h: int = 20, w: int = 40, seed: int = 0) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    rng = np.random.default_rng(seed)
    image = tv_tensors.Image(torch.from_numpy(rng.integers(0, 256, (3, h, w), dtype=np.uint8)))
    mask = tv_tensors.Mask(torch.from_numpy(rng.integers(0, 19, (h, w)).astype(np.int64)))
    return image, mask


def test_frame_transform_scales_wide_frames_and_keeps_label_values():
    image, mask = _pair(20, 40)
    x, y = frame_transform(FrameParams(max_width=32), train=False)(image, mask)
    assert x.shape == (3, 16, 32) and y.shape == (16, 32)
    assert x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert y.dtype == torch.int64 and set(y.unique().tolist()) <= set(mask.unique().tolist())  # nearest, no blends
    narrow, narrow_mask = _pair(20, 30)
    x2, _ = frame_transform(FrameParams(max_width=32), train=False)(narrow, narrow_mask)
    assert x2.shape == (3, 20, 30)  # never upscaled


def test_random_crop_pads_with_ignored_pixels_and_moves_mask_with_image():
    image, mask = _pair(10, 12)
    torch.manual_seed(0)
    x, y = frame_transform(FrameParams(crop=(16, 16)), train=True)(image, mask)
    assert x.shape == (3, 16, 16) and y.shape == (16, 16)
    assert (y == 255).sum() == 16 * 16 - 10 * 12  # the padding is not scored
    # a crop inside the frame, with flips: every mask pixel still sits under its image pixel
    rows, cols = torch.meshgrid(torch.arange(40), torch.arange(40), indexing="ij")
    image = tv_tensors.Image(torch.stack([rows, cols, rows * 0]).to(torch.uint8))
    mask = tv_tensors.Mask(rows * 40 + cols)
    for seed in range(4):
        torch.manual_seed(seed)
        x, y = frame_transform(FrameParams(crop=(8, 8)), train=True, flip=True)(image, mask)
        pix = ((x + 1) * 127.5).round().long()
        assert x.shape == (3, 8, 8) and torch.equal(y, pix[0] * 40 + pix[1])


def test_shard_writer_streams_and_reader_maps(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (7, 6, 8, 3), dtype=np.uint8)
    masks = np.random.default_rng(1).integers(0, 19, (7, 6, 8)).astype(np.uint8)
    with ShardWriter(tmp_path / "t", shard_size=3, meta={"k": 1}) as writer:
        for start in range(0, 7, 2):  # batches that straddle shard borders
            writer.add(frames[start:start + 2], masks[start:start + 2])
        manifest = writer.close()
    assert [s["count"] for s in manifest["shards"]] == [3, 3, 1] and manifest["k"] == 1
    reader = ShardReader(tmp_path / "t")
    assert len(reader) == 7
    for i in range(7):
        assert (reader[i][0] == frames[i]).all() and (reader[i][1] == masks[i]).all()
    data = ShardFrames(tmp_path / "t", frame_transform(None, train=False))
    x, y = data[5]
    assert x.shape == (3, 6, 8) and torch.equal(y, torch.from_numpy(masks[5].astype(np.int64)))


def test_failed_shard_writer_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path / "t", shard_size=2, meta={}) as writer:
            writer.add(np.zeros((3, 4, 4, 3), np.uint8), np.zeros((3, 4, 4), np.uint8))
            raise RuntimeError("killed")
    assert not (tmp_path / "t").exists() and not list(tmp_path.iterdir())


def test_array_frames_yield_model_ready_pairs():
    images = np.full((2, 8, 16, 3), 255, np.uint8)
    masks = np.full((2, 8, 16), 7, np.uint8)
    x, y = ArrayFrames(images, masks, frame_transform(None, train=False))[1]
    assert torch.allclose(x, torch.ones(3, 8, 16)) and y.dtype == torch.int64 and (y == 7).all()


def _gta(root: Path, n: int) -> None:
    for i in range(n):
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "labels").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((6, 10, 3), i, np.uint8)).save(root / "images" / f"{i:05d}.png")
        Image.fromarray(np.full((6, 10), 7, np.uint8)).save(root / "labels" / f"{i:05d}.png")  # 7 = road


def _params(tiny_raw: dict, tmp_path: Path, **roots: Path):
    tiny_raw["data"]["roots"].update({k: str(v) for k, v in roots.items()})
    tiny_raw["prepare"]["gta5"] = {"test_frames": 2}
    return parse_params(tiny_raw)


def test_real_dataset_index_holds_out_the_last_frames_relative_to_its_root(tiny_raw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _gta(tmp_path / "gta", 5)
    params = _params(tiny_raw, tmp_path, gta5=tmp_path / "gta")
    index = build_index(params, "gta5")
    assert index["counts"] == {"train": 3, "test": 2}
    assert index["splits"]["test"][0] == ["images/00003.png", "labels/00003.png"]
    gta5 = resolve_domain(params, "gta5")
    write_index(gta5.artifact, index)
    test = open_frames(gta5, "test", frame_transform(None, train=False))
    assert len(test) == 2
    x, y = test[0]
    assert x.shape == (3, 6, 10) and (y == 0).all()  # label id 7 -> train id 0 (road)
    assert gta5.classes[0] == "road" and index["classes"] == list(gta5.classes)
    # the dataset moved: the same index works from the new root in params
    (tmp_path / "gta").rename(tmp_path / "moved")
    moved = _params(tiny_raw, tmp_path, gta5=tmp_path / "moved")
    assert len(open_frames(resolve_domain(moved, "gta5"), "train", None)) == 3
    # a frame deleted after indexing: one line naming the fix
    (tmp_path / "moved" / "images" / "00001.png").unlink()
    (tmp_path / "moved" / "labels" / "00001.png").unlink()
    with pytest.raises(PipelineError, match="indexed frame.*gone.*rerun its prepare stage"):
        open_frames(resolve_domain(moved, "gta5"), "train", None)


def test_missing_dataset_names_layout_and_params_key(tiny_raw, tmp_path):
    params = _params(tiny_raw, tmp_path, cityscapes=tmp_path / "nowhere")
    with pytest.raises(PipelineError) as excinfo:
        build_index(params, "cityscapes")
    msg = str(excinfo.value)
    assert "\n" not in msg and "leftImg8bit" in msg and "data.roots.cityscapes" in msg


def test_folder_domain_from_params(tiny_raw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "mine"
    for i in range(5):
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "labels").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "images" / f"f{i}.jpg")
        Image.fromarray(np.array([[10, 20, 0, 0]] * 4, np.uint8)).save(root / "labels" / f"f{i}.png")
    tiny_raw["data"]["folders"].update({"mine": {"root": str(root), "classes": ["a", "b"], "ids": [10, 20],
                                            "ignore_id": 0, "test_fraction": 0.4}})
    params = parse_params(tiny_raw)
    index = build_index(params, "mine")
    assert index["counts"] == {"train": 3, "test": 2} and index["classes"] == ["a", "b"]
    write_index(resolve_domain(params, "mine").artifact, index)
    _, y = open_frames(resolve_domain(params, "mine"), "train", None)[0]
    assert y[0].tolist() == [0, 1, 255, 255]
    # the class list changed in params.yaml after indexing: one line asking to re-prepare
    tiny_raw["data"]["folders"]["mine"]["classes"] = ["b", "a"]
    with pytest.raises(PipelineError, match="indexed with 2 classes.*rerun its prepare stage"):
        open_frames(resolve_domain(parse_params(tiny_raw), "mine"), "train", None)


def test_frames_for_translation_share_one_size_and_odd_batches_name_the_fix(tiny_raw, tmp_path, monkeypatch):
    from pipeline_lib.domains.loading import frames_for_translation
    from pipeline_lib.batches import shuffled_loader
    monkeypatch.chdir(tmp_path)
    _gta(tmp_path / "gta", 4)
    Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(tmp_path / "gta/images/00001.png")  # an odd-sized frame
    Image.fromarray(np.full((8, 12), 7, np.uint8)).save(tmp_path / "gta/labels/00001.png")
    params = _params(tiny_raw, tmp_path, gta5=tmp_path / "gta")
    gta5 = resolve_domain(params, "gta5")
    write_index(gta5.artifact, build_index(params, "gta5"))
    data = frames_for_translation(gta5, params.backbones["street"], max_width=None)
    assert {tuple(data[i][0].shape) for i in range(len(data))} == {(3, 6, 10)}
    assert {tuple(data[i][1].shape) for i in range(len(data))} == {(6, 10)}
    raw = open_frames(gta5, "train", frame_transform(None, train=True))
    with pytest.raises(PipelineError, match="different sizes.*crop"):
        list(shuffled_loader(raw, 2, torch.Generator().manual_seed(0)))
    with ShardWriter(tmp_path / "s", 4, {}) as writer:
        writer.add(np.zeros((1, 6, 10, 3), np.uint8), np.zeros((1, 6, 10), np.uint8))
        with pytest.raises(ValueError, match="one size"):
            writer.add(np.zeros((1, 8, 12, 3), np.uint8), np.zeros((1, 8, 12), np.uint8))


def _folder(root: Path, stems: list[str]) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for stem in stems:
        Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(root / "images" / f"{stem}.png")
        Image.fromarray(np.zeros((4, 6), np.uint8)).save(root / "labels" / f"{stem}.png")


SEQUENCES = [f"seq{s:02d}_{i:03d}" for s in (1, 7, 3) for i in range(3)]  # 9 frames, 3 sequences


def _folder_params(tiny_raw: dict, root: Path, **split: object):
    _folder(root, SEQUENCES)
    tiny_raw["data"]["folders"].update({"mine": {"root": str(root), "classes": ["a", "b"], **split}})
    return parse_params(tiny_raw)


def _test_stems(index: dict) -> list[str]:
    return [Path(image).stem for image, _ in index["splits"]["test"]]


def test_folder_split_by_fraction_holds_out_the_last_frames_by_name(tiny_raw, tmp_path):
    params = _folder_params(tiny_raw, tmp_path / "mine", test_fraction=0.34)
    index = build_index(params, "mine")
    assert index["counts"] == {"train": 6, "test": 3}
    assert _test_stems(index) == ["seq07_000", "seq07_001", "seq07_002"]  # sorted by name: seq01, seq03, seq07


def test_folder_split_by_stems_holds_out_exactly_those_frames(tiny_raw, tmp_path):
    params = _folder_params(tiny_raw, tmp_path / "mine", test_stems=["seq03_001", "seq01_000"])
    index = build_index(params, "mine")
    assert _test_stems(index) == ["seq01_000", "seq03_001"] and index["counts"] == {"train": 7, "test": 2}
    assert not {"seq01_000", "seq03_001"} & {Path(i).stem for i, _ in index["splits"]["train"]}


def test_folder_split_by_glob_holds_out_a_whole_sequence(tiny_raw, tmp_path):
    params = _folder_params(tiny_raw, tmp_path / "mine", test_glob="seq03_*")
    index = build_index(params, "mine")
    assert _test_stems(index) == ["seq03_000", "seq03_001", "seq03_002"] and index["counts"]["train"] == 6


@pytest.mark.parametrize("split, match", [
    ({"test_stems": ["seq01_000", "nope"]}, r"mine: data\.folders\.mine\.test_stems names 1 stem\(s\) with no frame"
                                            r".*'nope'.*without their extension"),
    ({"test_glob": "seq99_*"}, r"mine: data\.folders\.mine\.test_glob 'seq99_\*' matches no frame.*fix the pattern"),
    ({"test_glob": "seq*"}, r"mine: data\.folders\.mine\.test_glob 'seq\*' holds out all 9 frames.*fewer frames"),
    ({"test_stems": SEQUENCES}, r"test_stems holds out all 9 frames, leaving none to train on"),
    ({"test_fraction": 0.01}, r"9 frame\(s\) cannot be split into train and test by .*test_fraction 0\.01"),
])
def test_folder_split_errors_name_the_domain_and_the_fix(tiny_raw, tmp_path, split, match):
    params = _folder_params(tiny_raw, tmp_path / "mine", **split)
    with pytest.raises(PipelineError, match=match) as excinfo:
        build_index(params, "mine")
    assert "\n" not in str(excinfo.value)


@pytest.mark.parametrize("split", [{"test_stems": ["seq01_000"], "test_glob": "seq07_*"},
                                   {"test_fraction": 0.3, "test_glob": "seq07_*"}])
def test_folder_split_takes_one_rule_only(tiny_raw, tmp_path, split):
    tiny_raw["data"]["folders"].update({"mine": {"root": str(tmp_path), "classes": ["a"], **split}})
    with pytest.raises(PipelineError, match=r"data\.folders\.mine: .* are given, but each chooses the test split on "
                                            r"its own; keep only one of them") as excinfo:
        parse_params(tiny_raw)
    assert "\n" not in str(excinfo.value)
