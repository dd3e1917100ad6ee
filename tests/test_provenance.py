"""A resumable partial checkpoint is used only when it was made from the same inputs and params (SPEC section 4).

The training stages key ``<out>.partial`` by a fingerprint (``pipeline_lib.provenance``) of their input files'
contents, their params sections and the backbone settings; a partial made otherwise is discarded with one line
and the run starts fresh (to the same weights as a run that never had a partial). These tests run the real
``train_supervised`` stage on a tiny prepared domain in a temporary workspace.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from pipeline_lib import paths, provenance, training
from pipeline_lib.artifacts import MANIFEST, load_checkpoint
from pipeline_lib.config import TrainSupervisedParams, parse_params
from pipeline_lib.domains.base import DomainData, Split
from pipeline_lib.domains.store import save_domain
from stages import train_supervised as stage

MODEL = paths.supervised_model("mnist5k", "lenet", 0)
PARTIAL = training.partial_path(MODEL)


def _prepare(seed: int = 0) -> None:
    """A tiny prepared ``mnist5k``: 64 training digits; ``seed`` changes pixels and labels, not the file's size."""
    rng = np.random.default_rng(seed)

    def split(n):
        return Split(rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, n))

    save_domain(Path("data/domains/mnist5k.npz"), DomainData("mnist5k", split(64), split(16)))


def _train(raw: dict[str, Any], die_in_epoch_2: bool = False) -> dict[str, Any]:
    """Run the stage in the current directory; ``die_in_epoch_2`` kills it there (the epoch-1 partial stays)."""
    real = training.check_finite

    def dying(loss: torch.Tensor, where: str, hint: str) -> None:
        if where.startswith("epoch 2"):
            raise KeyboardInterrupt
        real(loss, where, hint)

    training.check_finite = dying if die_in_epoch_2 else real  # type: ignore[assignment]
    try:
        stage.main(argparse.Namespace(domain="mnist5k", backbone="lenet", seed=0), parse_params(copy.deepcopy(raw)))
    finally:
        training.check_finite = real  # type: ignore[assignment]
    return load_checkpoint(MODEL)["state"]


@pytest.fixture
def raw(tiny_raw: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)
    tiny_raw["device"] = "cpu"
    tiny_raw["train_supervised"].update(epochs=2, batch_size=16, lr=1e-3)
    return tiny_raw


def _other_data(raw: dict[str, Any]) -> None:
    _prepare(seed=1)  # prepared again: other images, the same file size


def _other_params(raw: dict[str, Any]) -> None:
    raw["train_supervised"]["lr"] = 2e-3


def _other_backbone(raw: dict[str, Any]) -> None:
    raw["backbones"]["lenet"]["size"] = 32  # the old partial's fc1 would not even fit


def _nothing(raw: dict[str, Any]) -> None:
    pass


@pytest.mark.parametrize("change", [_other_data, _other_params, _other_backbone, _nothing],
                         ids=["input data", "params", "backbone settings", "nothing"])
def test_a_partial_is_resumed_only_when_made_from_the_same_inputs_and_params(
        raw: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        change: Callable[[dict[str, Any]], None]) -> None:
    _prepare()
    with pytest.raises(KeyboardInterrupt):
        _train(raw, die_in_epoch_2=True)
    assert PARTIAL.is_file() and not MODEL.exists()
    change(raw)
    capsys.readouterr()
    resumed = _train(raw)
    out = capsys.readouterr().out
    if change is _nothing:
        assert f"resuming mnist5k/lenet/seed0 from epoch 1 ({PARTIAL})" in out and "discarding" not in out
    else:
        lines = [line for line in out.splitlines() if "discarding" in line]
        assert lines == [f"discarding {PARTIAL}: made from other inputs or params; starting fresh"]
        assert "resuming" not in out
    # either way: the weights of a run that never had a partial, with the changed inputs or params
    (tmp_path / "fresh").mkdir()
    monkeypatch.chdir(tmp_path / "fresh")
    _prepare(seed=1 if change is _other_data else 0)
    fresh = _train(raw)
    for name, value in fresh.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=0, msg=name)


def test_fingerprint_follows_file_contents_values_and_a_sharded_sets_manifest(tmp_path: Path) -> None:
    data = tmp_path / "d.npz"
    data.write_bytes(b"a" * 100)
    key = provenance.fingerprint([data], section=TrainSupervisedParams(lr=1e-3, batch_size=8, epochs=1), seed=0)
    assert key == provenance.fingerprint([data], seed=0, section=TrainSupervisedParams(lr=1e-3, batch_size=8,
                                                                                      epochs=1))
    assert key != provenance.fingerprint([data], section=TrainSupervisedParams(lr=2e-3, batch_size=8, epochs=1),
                                         seed=0)
    data.write_bytes(b"b" * 100)  # same size, other content
    assert key != provenance.fingerprint([data], section=TrainSupervisedParams(lr=1e-3, batch_size=8, epochs=1),
                                         seed=0)
    shards = tmp_path / "translated"
    shards.mkdir()
    (shards / MANIFEST).write_text(json.dumps({"count": 1, "shards": [{"sha256": "0" * 64}]}))
    (shards / "shard-00000.images.npy").write_bytes(b"x" * 10)
    before = provenance.input_digest(shards)
    (shards / "shard-00000.images.npy").write_bytes(b"y" * 10)  # the manifest's checksums speak for the shards
    assert provenance.input_digest(shards) == before
    (shards / MANIFEST).write_text(json.dumps({"count": 1, "shards": [{"sha256": "1" * 64}]}))
    assert provenance.input_digest(shards) != before
    assert provenance.input_digest(tmp_path / "nope") == "missing"


def test_a_big_file_is_hashed_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "big.npz"
    data.write_bytes(bytes(range(256)) * 4096)
    reads = []
    real_hash = provenance.file_sha256
    monkeypatch.setattr(provenance, "file_sha256", lambda path: reads.append(path) or real_hash(path))
    first = provenance.file_digest(data)
    assert provenance.file_digest(data) == first and reads == [data]
