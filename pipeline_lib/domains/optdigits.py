"""Optdigits: scikit-learn's bundled 8x8 handwritten digits, upsampled (no download).

``sklearn.datasets.load_digits`` holds the 1,797 test-set images of the UCI "Optical
Recognition of Handwritten Digits" data (Alpaydin & Kaynak, 1998): 8x8 blocks of counts
0..16. We upsample them bilinearly (half-pixel centres, edges clamped: the convention of
PIL and ``torch.nn.functional.interpolate(align_corners=False)``), map 0..16 to 0..255 and
split stratified with the seed.
"""

from __future__ import annotations

import numpy as np

from pipeline_lib.domains.base import DomainData, Split, bilinear_matrix, stratified_split
from pipeline_lib.errors import PipelineError

OPTDIGITS_MAX = 16.0


def build_optdigits(seed: int, test_fraction: float = 0.2, size: int = 28) -> DomainData:
    """Optdigits domain: (N, size, size, 1) uint8 in 0..255, stratified shuffled split."""
    from sklearn.datasets import load_digits

    if size < 8:
        raise PipelineError(f"optdigits size must be at least 8 (the native 8x8), got {size}; set size to e.g. 28")
    bunch = load_digits()
    small = np.asarray(bunch.images, dtype=np.float64)  # (N, 8, 8), 0..16
    mat = bilinear_matrix(small.shape[1], size)
    big = np.einsum("ij,njk,lk->nil", mat, small, mat)
    images = np.clip(np.rint(big * (255.0 / OPTDIGITS_MAX)), 0, 255).astype(np.uint8)[..., None]
    labels = np.asarray(bunch.target, dtype=np.int64)
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    return DomainData(
        name="optdigits",
        train=Split(images[train_idx], labels[train_idx]),
        test=Split(images[test_idx], labels[test_idx]),
    )
