"""Street-scene segmentation adapters, on tiny files written in each data set's exact layout."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import tv_tensors
from torchvision.transforms import v2

from pipeline_lib.domains.segmentation import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_LABEL_TO_TRAIN_ID,
    CITYSCAPES_PALETTE,
    SYNTHIA_EVAL_CLASSES,
    SYNTHIA_TO_TRAIN_ID,
    CityscapesDataset,
    FolderSegmentationDataset,
    GTA5Dataset,
    SynthiaDataset,
)
from pipeline_lib.errors import PipelineError

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cityscapes_sample"
H, W = 16, 32


def _rgb(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _write_png16(path: Path, array: np.ndarray) -> Path:
    """A 16-bit grey/RGB/RGBA PNG (Pillow and imageio's Pillow plugin cannot write 16-bit RGB)."""
    a = np.asarray(array, dtype=">u2")
    h, w = a.shape[:2]
    color_type = {2: 0, 3: {3: 2, 4: 6}[a.shape[-1]] if a.ndim == 3 else 0}[a.ndim]
    raw = b"".join(b"\x00" + a[r].tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def _one_line_error(excinfo: pytest.ExceptionInfo, *needles: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


# ------------------------------------------------------------------ label tables


def test_cityscapes_table_comes_from_cityscapesscripts():
    from cityscapesscripts.helpers.labels import labels

    lut = CITYSCAPES_LABEL_TO_TRAIN_ID
    assert lut.dtype == np.uint8 and lut.shape == (256,)
    assert (lut[7], lut[8], lut[11], lut[26], lut[33]) == (0, 1, 2, 13, 18)
    assert lut[0] == lut[1] == lut[9] == lut[29] == lut[255] == 255
    assert (lut[34:] == 255).all()
    assert sorted(set(lut.tolist()) - {255}) == list(range(19))
    for label in labels:  # every listed id maps as the package says (-1/255 train ids -> ignore)
        if 0 <= label.id <= 255:
            assert lut[label.id] == (label.trainId if 0 <= label.trainId < 255 else 255)
    assert len(CITYSCAPES_CLASSES) == 19 and CITYSCAPES_CLASSES[0] == "road" and CITYSCAPES_CLASSES[-1] == "bicycle"
    assert CITYSCAPES_CLASSES[13] == "car" and CITYSCAPES_PALETTE[13] == (0, 0, 142)
    assert CITYSCAPES_PALETTE[0] == (128, 64, 128) and len(CITYSCAPES_PALETTE) == 19


def test_synthia_mapping_and_eval_classes():
    assert len(SYNTHIA_TO_TRAIN_ID) == 16
    assert SYNTHIA_EVAL_CLASSES == (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18)
    assert {9, 14, 16}.isdisjoint(SYNTHIA_EVAL_CLASSES)


# ------------------------------------------------------------------ Cityscapes


def _cityscapes(root: Path, split: str = "train") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    frames = {}
    for i, (city, frame) in enumerate([("aachen", "aachen_000000_000019"), ("bremen", "bremen_000001_000019")]):
        ids = np.zeros((H, W), np.uint8)  # 0 unlabeled
        ids[:4] = 7  # road
        ids[4:8, :10] = 26  # car
        ids[4:8, 10:20] = 255
        ids[8:12] = 24 + i  # person / rider
        ids[12:, :5] = 3  # out of roi
        ids[12:, 5:] = 33  # bicycle
        image = _rgb(i)
        _save(root / "leftImg8bit" / split / city / f"{frame}_leftImg8bit.png", image)
        _save(root / "gtFine" / split / city / f"{frame}_gtFine_labelIds.png", ids)
        frames[frame] = (image, ids)
    return frames


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path):
    frames = _cityscapes(tmp_path)
    ds = CityscapesDataset(tmp_path, split="train")
    assert len(ds) == 2 and ds.num_classes == 19 and ds.ignore_index == 255
    assert ds.classes == CITYSCAPES_CLASSES and ds.palette == CITYSCAPES_PALETTE
    image, mask = ds[0]
    expected_image, ids = frames["aachen_000000_000019"]
    assert isinstance(image, tv_tensors.Image) and isinstance(mask, tv_tensors.Mask)
    assert image.dtype == torch.uint8 and image.shape == (3, H, W)
    assert mask.dtype == torch.int64 and mask.shape == (H, W)
    assert torch.equal(image.permute(1, 2, 0), torch.from_numpy(expected_image))
    assert torch.equal(mask, torch.from_numpy(CITYSCAPES_LABEL_TO_TRAIN_ID[ids].astype(np.int64)))
    assert (mask[:4] == 0).all() and (mask[4:8, :10] == 13).all() and (mask[4:8, 10:20] == 255).all()
    assert (mask[4:8, 20:] == 255).all()  # 0 unlabeled
    assert (mask[8:12] == 11).all() and (ds[1][1][8:12] == 12).all()  # person, rider
    assert (mask[12:, :5] == 255).all() and (mask[12:, 5:] == 18).all()
    batch_images, batch_masks = next(iter(DataLoader(ds, batch_size=2)))
    assert batch_images.shape == (2, 3, H, W) and batch_masks.shape == (2, H, W)


def test_cityscapes_layout_errors(tmp_path):
    with pytest.raises(PipelineError) as excinfo:
        CityscapesDataset(tmp_path / "nowhere", split="val")
    _one_line_error(excinfo, "data.roots.cityscapes", "https://www.cityscapes-dataset.com",
                    "leftImg8bit_trainvaltest.zip", "gtFine_trainvaltest.zip", "leftImg8bit/val/<city>")
    _cityscapes(tmp_path, split="train")
    with pytest.raises(PipelineError) as excinfo:
        CityscapesDataset(tmp_path, split="val")
    _one_line_error(excinfo, "data.roots.cityscapes", "val", "splits there: train")
    (tmp_path / "leftImg8bit" / "test").mkdir()
    (tmp_path / "gtFine" / "test").mkdir()
    with pytest.raises(PipelineError) as excinfo:
        CityscapesDataset(tmp_path, split="test")
    _one_line_error(excinfo, "data.roots.cityscapes", "no image/label pairs")
    label = tmp_path / "gtFine" / "train" / "bremen" / "bremen_000001_000019_gtFine_labelIds.png"
    label.unlink()
    with pytest.raises(PipelineError) as excinfo:
        CityscapesDataset(tmp_path, split="train")
    _one_line_error(excinfo, "bremen_000001_000019_leftImg8bit.png", str(label))


def test_cityscapes_rejects_colour_labels(tmp_path):
    _cityscapes(tmp_path)
    label = tmp_path / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png"
    _save(label, _rgb(5))
    with pytest.raises(PipelineError) as excinfo:
        CityscapesDataset(tmp_path)[0]
    _one_line_error(excinfo, str(label), "not label ids")


# ------------------------------------------------------------------ GTA5


def _gta5_label(path: Path, ids: np.ndarray) -> None:
    label = Image.frombytes("P", (ids.shape[1], ids.shape[0]), ids.tobytes())
    # colours deliberately unrelated to the indices, so reading RGB instead of indices fails
    label.putpalette([(7 * i + 40) % 256 for i in range(256 * 3)])
    path.parent.mkdir(parents=True, exist_ok=True)
    label.save(path)


def test_gta5_reads_palette_indices_and_resizes_image_not_label(tmp_path):
    ids = np.full((H, W), 7, np.uint8)
    ids[:, :8] = 26
    ids[:2] = 1  # ego vehicle -> ignore
    ids[-2:] = 34  # beyond the table -> ignore
    _gta5_label(tmp_path / "labels" / "00001.png", ids)
    image = _rgb(1, H + 4, W + 8)  # the image's size differs from the label's
    _save(tmp_path / "images" / "00001.png", image)
    _gta5_label(tmp_path / "labels" / "00002.png", ids)
    _save(tmp_path / "images" / "00002.png", _rgb(2))
    assert Image.open(tmp_path / "labels" / "00001.png").mode == "P"

    ds = GTA5Dataset(tmp_path)
    assert len(ds) == 2 and ds.num_classes == 19 and ds.classes == CITYSCAPES_CLASSES
    img, mask = ds[0]
    assert img.shape == (3, H, W) and img.dtype == torch.uint8 and mask.shape == (H, W)
    expected = np.array(Image.fromarray(image).resize((W, H), Image.Resampling.BILINEAR))
    assert torch.equal(img.permute(1, 2, 0), torch.from_numpy(expected))
    assert (mask[:2] == 255).all() and (mask[-2:] == 255).all()
    assert (mask[2:-2, :8] == 13).all() and (mask[2:-2, 8:] == 0).all()
    assert set(torch.unique(mask).tolist()) == {0, 13, 255}


def test_gta5_layout_errors(tmp_path):
    with pytest.raises(PipelineError) as excinfo:
        GTA5Dataset(tmp_path)
    _one_line_error(excinfo, "data.roots.gta5", "https://download.visinf.tu-darmstadt.de/data/from_games/",
                    "images")
    _save(tmp_path / "images" / "00007.png", _rgb(0))
    (tmp_path / "labels").mkdir()
    with pytest.raises(PipelineError) as excinfo:
        GTA5Dataset(tmp_path)
    _one_line_error(excinfo, "00007.png", str(tmp_path / "labels" / "00007.png"))


# ------------------------------------------------------------------ SYNTHIA


def test_synthia_reads_channel0_of_16bit_labels(tmp_path):
    synthia_ids = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22])
    expected = np.array([255, 10, 2, 0, 1, 4, 8, 5, 13, 7, 11, 18, 17, 255, 255, 6, 255, 12, 255, 15, 255, 3, 255])
    ids = np.resize(synthia_ids, (H, W))
    label = np.zeros((H, W, 3), np.uint16)
    label[..., 0] = ids
    label[..., 1] = np.random.default_rng(0).integers(0, 65536, (H, W))  # instance ids: junk for us
    label[..., 2] = 60000 + np.arange(W)[None, :]
    path = _write_png16(tmp_path / "GT" / "LABELS" / "0000000.png", label)
    assert path.read_bytes()[24:26] == bytes([16, 2])  # IHDR: 16-bit, colour type RGB
    _save(tmp_path / "RGB" / "0000000.png", _rgb(3))

    ds = SynthiaDataset(tmp_path)
    assert ds.num_classes == 19 and ds.eval_classes == SYNTHIA_EVAL_CLASSES and ds.ignore_index == 255
    image, mask = ds[0]
    assert image.shape == (3, H, W) and mask.dtype == torch.int64
    assert torch.equal(mask, torch.from_numpy(np.resize(expected, (H, W))))


def test_synthia_layout_error(tmp_path):
    (tmp_path / "RGB").mkdir()
    with pytest.raises(PipelineError) as excinfo:
        SynthiaDataset(tmp_path)
    _one_line_error(excinfo, "data.roots.synthia", str(tmp_path / "GT" / "LABELS"))


# ------------------------------------------------------------------ user folder


def _folder(root: Path) -> None:
    ids = np.zeros((H, W), np.uint8)
    ids[:, 8:] = 1
    ids[:, 16:] = 5
    ids[:, 24:] = 99
    _save(root / "images" / "a.png", _rgb(0))
    _save(root / "labels" / "a.png", ids)
    Image.fromarray(_rgb(1)).save(root / "images" / "b.jpg", quality=95)
    _save(root / "labels" / "b.png", ids[::-1].copy())


def test_folder_dataset_maps_ids_and_ignore(tmp_path):
    _folder(tmp_path)
    ds = FolderSegmentationDataset(tmp_path, classes=["bg", "lane", "car"], mapping={0: 0, 1: 1, 5: 2}, ignore_id=99)
    assert len(ds) == 2 and ds.num_classes == 3 and ds.classes == ("bg", "lane", "car") and len(ds.palette) == 3
    assert [s[0].name for s in ds.samples] == ["a.png", "b.jpg"]
    _, mask = ds[0]
    assert (mask[:, :8] == 0).all() and (mask[:, 8:16] == 1).all() and (mask[:, 16:24] == 2).all()
    assert (mask[:, 24:] == 255).all()
    image, _ = ds[1]
    assert image.shape == (3, H, W) and image.dtype == torch.uint8


def test_folder_dataset_errors(tmp_path):
    _folder(tmp_path)
    with pytest.raises(PipelineError) as excinfo:
        FolderSegmentationDataset(tmp_path, classes=["bg", "lane"], mapping={0: 0, 1: 1}, ignore_id=99)[0]
    _one_line_error(excinfo, str(tmp_path / "labels" / "a.png"), "[5]", "mapping")
    with pytest.raises(PipelineError) as excinfo:
        FolderSegmentationDataset(tmp_path, classes=["bg", "lane"], mapping={0: 0, 1: 2})
    _one_line_error(excinfo, "train id 2")
    (tmp_path / "labels" / "b.png").unlink()
    with pytest.raises(PipelineError) as excinfo:
        FolderSegmentationDataset(tmp_path, classes=["bg"], mapping={0: 0}, name="mine")
    _one_line_error(excinfo, "b.jpg", "b.png")
    with pytest.raises(PipelineError) as excinfo:
        FolderSegmentationDataset(tmp_path / "missing", classes=["bg"], mapping={0: 0}, name="mine")
    _one_line_error(excinfo, "data.folders.mine.root")


# ------------------------------------------------------------------ corrupt files


@pytest.mark.parametrize("content", [b"not a png at all", "truncated"])
def test_corrupt_image_is_a_pipeline_error_from_getitem(tmp_path, content):
    _cityscapes(tmp_path)
    image = tmp_path / "leftImg8bit" / "train" / "aachen" / "aachen_000000_000019_leftImg8bit.png"
    image.write_bytes(image.read_bytes()[:200] if content == "truncated" else content)
    ds = CityscapesDataset(tmp_path)  # the constructor does not decode images
    with pytest.raises(PipelineError) as excinfo:
        ds[0]
    _one_line_error(excinfo, str(image), "is not a readable image", "re-download or delete it")
    assert ds[1][1].shape == (H, W)


def test_corrupt_synthia_label_is_a_pipeline_error(tmp_path):
    _save(tmp_path / "RGB" / "0.png", _rgb(0))
    label = _write_png16(tmp_path / "GT" / "LABELS" / "0.png", np.zeros((H, W, 3), np.uint16))
    label.write_bytes(label.read_bytes()[:60])
    with pytest.raises(PipelineError) as excinfo:
        SynthiaDataset(tmp_path)[0]
    _one_line_error(excinfo, str(label), "is not a readable image")


# ------------------------------------------------------------------ joint transforms


def test_v2_transforms_apply_to_image_and_mask_jointly(tmp_path):
    _cityscapes(tmp_path)
    plain = CityscapesDataset(tmp_path)
    image, mask = plain[0]
    flipped_image, flipped_mask = CityscapesDataset(tmp_path, transforms=v2.RandomHorizontalFlip(p=1.0))[0]
    assert torch.equal(flipped_image, image.flip(-1)) and torch.equal(flipped_mask, mask.flip(-1))
    assert not torch.equal(flipped_mask, mask)

    big = CityscapesDataset(tmp_path, transforms=v2.Resize((3 * H, 3 * W)))
    big_image, big_mask = big[0]
    assert big_image.shape == (3, 3 * H, 3 * W) and big_mask.shape == (3 * H, 3 * W)
    assert isinstance(big_mask, tv_tensors.Mask) and big_mask.dtype == torch.int64
    assert set(torch.unique(big_mask).tolist()) <= set(torch.unique(mask).tolist())
    assert torch.equal(big_mask[1::3, 1::3], mask)  # nearest neighbour: centre samples keep their label


# ------------------------------------------------------------------ real data


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="shared Cityscapes sample not present")
def test_real_cityscapes_frame():
    ds = CityscapesDataset(SAMPLE, split="val")
    assert len(ds) == 1
    image, mask = ds[0]
    assert image.shape == (3, 128, 256) and image.dtype == torch.uint8 and mask.shape == (128, 256)
    train_ids = np.array(Image.open(
        SAMPLE / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000294_gtFine_labelTrainIds.png"))
    agreement = (mask.numpy() == train_ids).mean()
    assert agreement >= 0.99, agreement
    assert set(torch.unique(mask).tolist()) <= set(range(19)) | {255}
