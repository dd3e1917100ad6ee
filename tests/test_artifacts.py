import pytest
import torch

from pipeline_lib.artifacts import atomic_path, load_checkpoint, read_json, save_checkpoint, write_json
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


def test_artifacts_know_nothing_of_domains():
    """Generic artifact I/O: prepared domain files are read and written by pipeline_lib.domains.store."""
    import subprocess
    import sys

    code = "import sys, pipeline_lib.artifacts; print(any(m.startswith('pipeline_lib.domains') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
