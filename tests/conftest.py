"""Shared helpers: tiny MNIST-shaped data sets written in the real file formats."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

import mnist_edge  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything imports TensorFlow)
from mnist_edge.data import IMAGES_MAGIC, LABELS_MAGIC, load_mnist


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_dir(
    directory: Path,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    compress: bool = True,
    dotted: bool = False,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "train-images-idx3-ubyte": idx_bytes(train[0], IMAGES_MAGIC),
        "train-labels-idx1-ubyte": idx_bytes(train[1], LABELS_MAGIC),
        "t10k-images-idx3-ubyte": idx_bytes(test[0], IMAGES_MAGIC),
        "t10k-labels-idx1-ubyte": idx_bytes(test[1], LABELS_MAGIC),
    }
    for stem, payload in files.items():
        name = stem[::-1].replace("-", ".", 1)[::-1] if dotted else stem
        if compress:
            (directory / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (directory / name).write_bytes(payload)
    return directory


@pytest.fixture(scope="session")
def mnist():
    """The bundled MNIST, loaded once for the whole session."""
    return load_mnist()


@pytest.fixture()
def tiny_arrays(mnist):
    """40 real training images and 10 real test images."""
    return (mnist.train.images[:40], mnist.train.labels[:40]), (
        mnist.test.images[:10],
        mnist.test.labels[:10],
    )
