"""The checks the Snakefile runs when the DAG first needs a job (pipeline_lib.preflight)."""

from __future__ import annotations

import pytest

from pipeline_lib.config import parse_params
from pipeline_lib.preflight import missing_weights


@pytest.fixture
def raw(tiny_raw, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache
    tiny_raw["backbones"]["office"] = {"arch": "resnet18", "size": 32, "pretrained": True}
    return tiny_raw


def test_a_resnet_without_its_imagenet_file_is_one_line_naming_the_key_and_the_download(raw, tmp_path):
    problem = missing_weights(parse_params(raw), "office")
    assert problem.startswith("backbones.office: resnet18 ImageNet weights are not in torch's hub cache")
    assert str(tmp_path / "torch") in problem and "https://download.pytorch.org/models/resnet18" in problem
    raw["backbones"]["office"]["weights"] = str(tmp_path / "mine.pth")
    assert f"weights file {tmp_path / 'mine.pth'} not found" in missing_weights(parse_params(raw), "office")


def test_a_weights_file_that_is_there_or_none_read_is_no_problem(raw, tmp_path):
    (tmp_path / "mine.pth").write_bytes(b"read by the stage, not here")
    raw["backbones"]["office"]["weights"] = str(tmp_path / "mine.pth")
    assert missing_weights(parse_params(raw), "office") is None
    raw["backbones"]["office"] = {"arch": "resnet18", "size": 32, "pretrained": False}  # random weights
    assert missing_weights(parse_params(raw), "office") is None
    raw["backbones"]["street"] = {"arch": "drn26", "pretrained": True}  # downloaded where online: not checked
    assert missing_weights(parse_params(raw), "street") is None
