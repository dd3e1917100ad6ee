"""Timing shared by the bench scripts."""

from __future__ import annotations

import time
from typing import Callable

import torch


def timed(fn: Callable[[], None], repeats: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` after one warm-up call (GPU work is synchronised)."""
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats
