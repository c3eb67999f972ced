"""Runtime tests run without TensorFlow: on the committed bundle and the bundled MNIST test files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mnist_edge_runtime.idx import read_images_and_labels

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "export"
MNIST = REPO / "mnist_edge" / "datasets" / "mnist"
TEST_IMAGES = MNIST / "t10k-images-idx3-ubyte.gz"
TEST_LABELS = MNIST / "t10k-labels-idx1-ubyte.gz"


@pytest.fixture(scope="session")
def test_set():
    return read_images_and_labels(TEST_IMAGES, TEST_LABELS)


@pytest.fixture()
def bundle_copy(tmp_path):
    """A private copy of the committed bundle, safe to damage."""
    copy = tmp_path / "export"
    shutil.copytree(BUNDLE, copy)
    return copy
