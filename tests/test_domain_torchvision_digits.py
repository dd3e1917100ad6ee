"""Real digit sets through torchvision, on tiny files in the exact on-disk formats."""

from __future__ import annotations

import bz2
import gzip
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import scipy.io
import torchvision.datasets

from pipeline_lib.domains.torchvision_digits import load_mnist, load_svhn, load_usps
from pipeline_lib.errors import PipelineError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ----------------------------------------------------------------------------- writers


def _idx_images(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes()


def _idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()


def _mnist_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(12) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([3, 1, 4, 1, 5]),
    }


def _write_mnist(folder: Path, arrays: dict[str, np.ndarray], gz: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        data = _idx_images(arr) if "images" in name else _idx_labels(arr)
        if gz:
            with gzip.open(folder / f"{name}.gz", "wb") as fh:
                fh.write(data)
        else:
            (folder / name).write_bytes(data)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _usps_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 16, 16)), np.arange(n) % 10


def _write_usps(path: Path, pixels: np.ndarray, labels: np.ndarray) -> None:
    # the LIBSVM file: "label 1:v1 2:v2 ... 256:v256", label 1..10 (10 is digit 9: torchvision subtracts 1)
    lines = []
    for img, label in zip(pixels, labels):
        values = " ".join(f"{i + 1}:{v:.6f}" for i, v in enumerate(img.reshape(-1)))
        lines.append(f"{label + 1} {values}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    with bz2.open(path, "wt") as fh:
        fh.writelines(lines)


def _write_svhn(path: Path, images: np.ndarray, digits: np.ndarray) -> None:
    # the cropped-digits .mat: X (32, 32, 3, N) uint8, y (N, 1) with 10 for the digit 0
    y = np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"X": np.ascontiguousarray(images.transpose(1, 2, 3, 0)), "y": y})


@pytest.fixture
def no_download(monkeypatch):
    """Fail the test if any torchvision download is attempted."""

    def refuse(*args, **kwargs):
        raise AssertionError("torchvision tried to download")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", refuse)
    monkeypatch.setattr(torchvision.datasets.usps, "download_url", refuse)
    monkeypatch.setattr(torchvision.datasets.SVHN, "download", refuse)


# ----------------------------------------------------------------------------- MNIST


def _check_mnist(data, arrays):
    assert data.name == "mnist"
    assert data.train.images.shape == (12, 28, 28, 1) and data.test.images.shape == (5, 28, 28, 1)
    assert data.train.images.dtype == np.uint8 and data.train.labels.dtype == np.int64
    np.testing.assert_array_equal(data.train.images[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.train.labels, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(data.test.images[..., 0], arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.test.labels, arrays["t10k-labels-idx1-ubyte"])


@pytest.mark.parametrize("where", [".", "MNIST/raw"])
def test_mnist_gz_only_decompresses_into_cache(tmp_path, no_download, where):
    root, cache = tmp_path / "root", tmp_path / "cache"
    arrays = _mnist_arrays()
    _write_mnist(root / where, arrays, gz=True)
    before = _tree(root)
    _check_mnist(load_mnist(root, download=False, cache_dir=cache), arrays)
    assert _tree(root) == before  # nothing written into the user's root
    for name in MNIST_NAMES:
        assert (cache / "MNIST" / "raw" / name).read_bytes()[:4] in (b"\x00\x00\x08\x03", b"\x00\x00\x08\x01")


def test_mnist_decompressed_in_torchvision_layout_is_read_in_place(tmp_path, no_download):
    root, cache = tmp_path / "root", tmp_path / "cache"
    arrays = _mnist_arrays()
    _write_mnist(root / "MNIST" / "raw", arrays, gz=False)
    _check_mnist(load_mnist(root, download=False, cache_dir=cache), arrays)
    assert not cache.exists()


def test_mnist_decompressed_flat_folder_is_copied_to_cache(tmp_path, no_download):
    root, cache = tmp_path / "root", tmp_path / "cache"
    arrays = _mnist_arrays()
    _write_mnist(root, arrays, gz=False)
    _check_mnist(load_mnist(root, download=False, cache_dir=cache), arrays)
    assert sorted(p.name for p in root.iterdir()) == sorted(MNIST_NAMES)
    assert (cache / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_mnist_cache_follows_changed_source(tmp_path, no_download):
    root, cache = tmp_path / "root", tmp_path / "cache"
    _write_mnist(root, _mnist_arrays(0), gz=True)
    load_mnist(root, download=False, cache_dir=cache)
    changed = _mnist_arrays(1)
    changed["train-labels-idx1-ubyte"] = (np.arange(12) + 3) % 10
    _write_mnist(root, changed, gz=True)
    _check_mnist(load_mnist(root, download=False, cache_dir=cache), changed)


def test_mnist_missing_root_names_the_key(tmp_path, no_download):
    with pytest.raises(PipelineError) as info:
        load_mnist(tmp_path / "nope", download=False, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "data.roots.mnist" in message and "data.download: true" in message
    assert "train-images-idx3-ubyte" in message and "\n" not in message


def test_mnist_missing_file_is_named(tmp_path, no_download):
    root = tmp_path / "root"
    _write_mnist(root, _mnist_arrays(), gz=True)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(PipelineError, match=r"t10k-labels-idx1-ubyte.*data\.roots\.mnist"):
        load_mnist(root, download=False, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    "damage",
    ["truncated_gzip", "not_gzip", "bad_magic", "short_idx", "count_mismatch"],
)
def test_mnist_corrupt_files_name_the_file(tmp_path, no_download, damage):
    root, cache = tmp_path / "root", tmp_path / "cache"
    arrays = _mnist_arrays()
    _write_mnist(root, arrays, gz=True)
    bad = root / "train-images-idx3-ubyte.gz"
    raw = _idx_images(arrays["train-images-idx3-ubyte"])
    if damage == "truncated_gzip":
        bad.write_bytes(bad.read_bytes()[:200])
    elif damage == "not_gzip":
        bad.write_bytes(b"<html>404 not found</html>")
    elif damage == "bad_magic":
        bad.write_bytes(gzip.compress(struct.pack(">I", 0x00000801) + raw[4:]))
    elif damage == "short_idx":
        bad.write_bytes(gzip.compress(raw[:-100]))
    else:
        bad = root / "train-labels-idx1-ubyte.gz"
        bad.write_bytes(gzip.compress(_idx_labels(np.arange(11) % 10)))
    with pytest.raises(PipelineError) as info:
        load_mnist(root, download=False, cache_dir=cache)
    message = str(info.value)
    assert str(bad) in message and "re-download" in message and "\n" not in message
    if damage != "count_mismatch":  # a malformed file is never copied into the cache
        assert not (cache / "MNIST" / "raw" / bad.name.removesuffix(".gz")).exists()


def test_mnist_download_goes_to_cache_only(tmp_path, monkeypatch):
    roots = []

    def offline(self):
        roots.append(Path(self.root))
        raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(PipelineError, match="could not download MNIST") as info:
        load_mnist(tmp_path / "nope", download=True, cache_dir=tmp_path / "cache")
    assert roots == [tmp_path / "cache"]
    assert "data.roots.mnist" in str(info.value)


def test_mnist_download_flag_with_local_files_does_not_download(tmp_path, no_download):
    arrays = _mnist_arrays()
    _write_mnist(tmp_path / "root", arrays, gz=True)
    _check_mnist(load_mnist(tmp_path / "root", download=True, cache_dir=tmp_path / "cache"), arrays)


# ----------------------------------------------------------------------------- USPS


@pytest.mark.parametrize("sub", [".", "USPS"])
def test_usps_reads_libsvm_bz2(tmp_path, no_download, sub):
    root, cache = tmp_path / "root", tmp_path / "cache"
    train_px, train_y = _usps_arrays(13, 0)
    test_px, test_y = _usps_arrays(4, 1)
    train_px[0] = -1.0
    train_px[1] = 1.0
    _write_usps(root / sub / "usps.bz2", train_px, train_y)
    _write_usps(root / sub / "usps.t.bz2", test_px, test_y)
    before = _tree(root)
    data = load_usps(root, download=False, cache_dir=cache)
    assert data.name == "usps"
    assert data.train.images.shape == (13, 16, 16, 1) and data.test.images.shape == (4, 16, 16, 1)
    assert data.train.images.dtype == np.uint8 and data.train.labels.dtype == np.int64
    np.testing.assert_array_equal(data.train.labels, train_y)  # file labels 1..10 -> 0..9
    np.testing.assert_array_equal(data.test.labels, test_y)
    assert (data.train.images[0] == 0).all() and (data.train.images[1] == 255).all()
    expected = ((test_px + 1) / 2 * 255).astype(np.float32)
    assert np.abs(data.test.images[..., 0] - expected).max() <= 1.0
    assert _tree(root) == before and not cache.exists()


def test_usps_missing_root_and_file(tmp_path, no_download):
    with pytest.raises(PipelineError, match=r"data\.roots\.usps.*data\.download: true"):
        load_usps(tmp_path / "nope", download=False, cache_dir=tmp_path / "cache")
    px, y = _usps_arrays(3, 0)
    _write_usps(tmp_path / "root" / "usps.bz2", px, y)
    with pytest.raises(PipelineError, match=r"usps\.t\.bz2.*data\.roots\.usps"):
        load_usps(tmp_path / "root", download=False, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("damage", ["truncated", "not_bz2", "bad_lines"])
def test_usps_corrupt_file_names_the_file(tmp_path, no_download, damage):
    root = tmp_path / "root"
    px, y = _usps_arrays(20, 0)
    _write_usps(root / "usps.bz2", px, y)
    _write_usps(root / "usps.t.bz2", px[:3], y[:3])
    bad = root / "usps.t.bz2"
    if damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:100])
    elif damage == "not_bz2":
        bad.write_bytes(b"plain text, not bzip2")
    else:
        bad.write_bytes(bz2.compress(b"3 1:0.5 2:0.5\n4 1:0.1\n"))
    with pytest.raises(PipelineError) as info:
        load_usps(root, download=False, cache_dir=tmp_path / "cache")
    assert str(bad) in str(info.value) and "re-download" in str(info.value)


# ----------------------------------------------------------------------------- SVHN


def test_svhn_reads_resaved_mat_without_md5(tmp_path, no_download):
    root = tmp_path / "root"
    rng = np.random.default_rng(0)
    train_img = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    train_img[0, 0, 1] = [10, 20, 30]  # pins the orientation: row 0, column 1
    train_digits = np.array([0, 1, 2, 3, 9, 0, 5])
    test_img = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    _write_svhn(root / "train_32x32.mat", train_img, train_digits)
    _write_svhn(root / "test_32x32.mat", test_img, np.array([0, 7, 8]))
    data = load_svhn(root, download=False, cache_dir=tmp_path / "cache")
    assert data.name == "svhn"
    assert data.train.images.shape == (7, 32, 32, 3) and data.train.images.dtype == np.uint8
    assert data.train.labels.dtype == np.int64
    np.testing.assert_array_equal(data.train.images, train_img)
    assert data.train.images[0, 0, 1].tolist() == [10, 20, 30]
    np.testing.assert_array_equal(data.train.labels, train_digits)  # 10 -> 0
    np.testing.assert_array_equal(data.test.labels, [0, 7, 8])
    np.testing.assert_array_equal(data.test.images, test_img)


def test_svhn_missing_root_names_the_key(tmp_path, no_download):
    with pytest.raises(PipelineError) as info:
        load_svhn(tmp_path / "nope", download=False, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "data.roots.svhn" in message and "train_32x32.mat" in message and "data.download: true" in message


@pytest.mark.parametrize("damage", ["truncated", "garbage", "no_X"])
def test_svhn_corrupt_mat_names_the_file(tmp_path, no_download, damage):
    root = tmp_path / "root"
    img = np.zeros((4, 32, 32, 3), np.uint8)
    _write_svhn(root / "train_32x32.mat", img, np.array([1, 2, 3, 0]))
    _write_svhn(root / "test_32x32.mat", img, np.array([1, 2, 3, 0]))
    bad = root / "test_32x32.mat"
    if damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:300])
    elif damage == "garbage":
        bad.write_bytes(b"\x00" * 50)
    else:
        scipy.io.savemat(bad, {"images": img})
    with pytest.raises(PipelineError) as info:
        load_svhn(root, download=False, cache_dir=tmp_path / "cache")
    assert str(bad) in str(info.value) and "re-download" in str(info.value)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- real data


@pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="real MNIST not available")
def test_real_mnist(tmp_path):
    data = load_mnist(SHARED_DATA / "mnist", download=False, cache_dir=tmp_path / "cache")
    assert len(data.train) == 60000 and len(data.test) == 10000
    assert data.train.images.shape[1:] == (28, 28, 1)
    counts = np.bincount(data.train.labels, minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert data.test.images.max() == 255


@pytest.mark.skipif(not (SHARED_DATA / "usps").is_dir(), reason="real USPS not available")
def test_real_usps(tmp_path):
    data = load_usps(SHARED_DATA / "usps", download=False, cache_dir=tmp_path / "cache")
    assert len(data.train) == 7291 and len(data.test) == 2007
    assert data.train.images.shape[1:] == (16, 16, 1)
    assert set(np.unique(data.train.labels).tolist()) == set(range(10))


def test_mnist_corrupt_file_in_torchvision_layout(tmp_path, no_download):
    root = tmp_path / "root"
    _write_mnist(root / "MNIST" / "raw", _mnist_arrays(), gz=False)
    bad = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-28])
    with pytest.raises(PipelineError, match="re-download") as info:
        load_mnist(root, download=False, cache_dir=tmp_path / "cache")
    assert str(bad) in str(info.value)
