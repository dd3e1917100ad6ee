import subprocess
import sys

import pytest
import torch

from pipeline_lib.errors import PipelineError
from pipeline_lib.runtime import resolve_device, seed_everything


def test_seeding_turns_deterministic_algorithms_on_in_warn_only_mode():
    torch.use_deterministic_algorithms(False)
    seed_everything(0)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()


def test_seeding_does_not_load_the_compiler():
    # torch.use_deterministic_algorithms imports torch._inductor (~1.7 s per stage process) only to configure
    # torch.compile, which no stage uses
    code = ("import sys; from pipeline_lib.runtime import seed_everything; seed_everything(3); "
            "import torch; assert torch.are_deterministic_algorithms_enabled(); "
            "print(sorted(m for m in sys.modules if m.startswith(('torch._inductor', 'torch._dynamo'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cuda_without_a_gpu_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(PipelineError, match="set device: auto or cpu"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"
