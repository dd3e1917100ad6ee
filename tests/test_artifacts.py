import numpy as np
import pytest
import torch

from pipeline_lib.artifacts import (atomic_path, load_checkpoint, load_domain, read_json, save_checkpoint,
                                    save_domain, write_json)
from pipeline_lib.domains.base import DomainData, Split
from pipeline_lib.errors import PipelineError


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2')  # half written, then killed
            raise RuntimeError("killed")
    assert read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    save_checkpoint(tmp_path / "m.pt", state, {"seed": 3, "history": [{"loss": 0.5}]})
    payload = load_checkpoint(tmp_path / "m.pt")
    torch.testing.assert_close(payload["state"]["w"], state["w"])
    assert payload["meta"]["seed"] == 3 and len(payload["meta"]["code_version"]) == 12


def test_corrupt_or_missing_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(PipelineError, match="unreadable checkpoint.*rerun"):
        load_checkpoint(bad)
    with pytest.raises(PipelineError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def _domain() -> DomainData:
    rng = np.random.default_rng(0)
    split = lambda n: Split(rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8), rng.integers(0, 10, n))
    return DomainData("toy", split(5), split(3))


def test_domain_round_trip_and_corruption(tmp_path):
    dom = _domain()
    save_domain(tmp_path / "toy.npz", dom)
    back = load_domain(tmp_path / "toy.npz")
    assert back.name == "toy" and back.classes == dom.classes
    np.testing.assert_array_equal(back.train.images, dom.train.images)
    np.testing.assert_array_equal(back.test.labels, dom.test.labels)
    data = (tmp_path / "toy.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(PipelineError, match="corrupt prepared domain.*prepare"):
        load_domain(tmp_path / "cut.npz")


def test_split_validates_its_arrays():
    with pytest.raises(PipelineError, match="uint8"):
        Split(np.zeros((2, 8, 8, 1), np.float32), np.zeros(2, np.int64))
    with pytest.raises(PipelineError, match="labels of shape"):
        Split(np.zeros((2, 8, 8, 1), np.uint8), np.zeros(3, np.int64))
