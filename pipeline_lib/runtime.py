"""Device selection, seeding and determinism."""

from __future__ import annotations

import os
import sys
import random

import numpy as np
import torch

from pipeline_lib import gpus
from pipeline_lib.errors import PipelineError


def resolve_device(setting: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error.

    Before its first CUDA call the stage takes a GPU slot (:mod:`pipeline_lib.gpus`): at most one stage per GPU on
    this machine, whichever runner started them; it waits while every GPU is taken. A stage that ends up on the
    CPU gives its slot back."""
    held = gpus.claim() if setting != "cpu" else None
    available = setting != "cpu" and torch.cuda.is_available()
    if not available:
        gpus.release()
    elif held is not None and len(held.names) == 1 and torch.cuda.device_count() > 1:
        torch.cuda.set_device(held.positions[0])  # CUDA had started before the slot narrowed what it sees
    if setting == "auto":
        return torch.device("cuda" if available else "cpu")
    if setting == "cuda" and not available:
        raise PipelineError("device: cuda was requested but no CUDA GPU is visible; set device: auto or cpu")
    return torch.device(setting)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; make CPU kernels deterministic. Returns a seeded generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    _deterministic_algorithms()
    torch.backends.cudnn.benchmark = False
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def _deterministic_algorithms() -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` without its ~1.7 s import of torch._inductor.

    The public call imports the compiler only to set ``inductor_config.deterministic``, which matters to
    ``torch.compile`` alone; no stage compiles. When the compiler is already loaded, the public call is cheap.
    """
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        setter(True, warn_only=True)


MIXED_PRECISION_DEVICES: tuple[str, ...] = ("cuda",)  # tests add "cpu" to run the bf16 paths without a GPU


def autocast(device: torch.device) -> torch.autocast:
    """Mixed precision (bf16) on CUDA; a no-op context on the CPU."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=device.type in MIXED_PRECISION_DEVICES)
