"""The IDX/npz loader: genuine data loads, every kind of damage is a clear UserError."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from conftest import idx_bytes, write_idx_dir

from mnist_edge.data import BUNDLED_DIR, IMAGES_MAGIC, LABELS_MAGIC, load_mnist, parse_idx, sha256_hex
from mnist_edge.errors import UserError


def test_bundled_data_is_the_genuine_mnist(mnist):
    assert (len(mnist.train), len(mnist.validation), len(mnist.test)) == (55000, 5000, 10000)
    assert mnist.train.images.shape[1:] == (28, 28) and mnist.train.images.dtype == np.uint8
    # The identifying figures from the data set's README.
    all_train = np.concatenate([mnist.train.labels, mnist.validation.labels])
    assert np.bincount(all_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert len(mnist.checksums) == 4


def read_idx_file(name: str) -> np.ndarray:
    """An IDX file of the bundled copy, read here without the loader under test: gzip, a big-endian
    header, then the bytes in file order."""
    raw = gzip.decompress((BUNDLED_DIR / name).read_bytes())
    magic, count = struct.unpack(">II", raw[:8])
    if magic == IMAGES_MAGIC:
        rows, columns = struct.unpack(">II", raw[8:16])
        return np.frombuffer(raw, np.uint8, offset=16).reshape(count, rows, columns)
    return np.frombuffer(raw, np.uint8, offset=8).reshape(count)


def test_validation_split_is_the_end_of_the_training_set(mnist):
    images = read_idx_file("train-images-idx3-ubyte.gz")
    labels = read_idx_file("train-labels-idx1-ubyte.gz")
    assert len(images) == len(labels) == 60000
    # Training is the first 55,000 images in file order, validation the last 5,000, nothing else.
    np.testing.assert_array_equal(mnist.train.images, images[:55000])
    np.testing.assert_array_equal(mnist.train.labels, labels[:55000])
    np.testing.assert_array_equal(mnist.validation.images, images[55000:])
    np.testing.assert_array_equal(mnist.validation.labels, labels[55000:])
    np.testing.assert_array_equal(mnist.test.images, read_idx_file("t10k-images-idx3-ubyte.gz"))
    np.testing.assert_array_equal(mnist.test.labels, read_idx_file("t10k-labels-idx1-ubyte.gz"))


def test_no_test_image_is_in_training_or_validation(mnist):
    # Nothing of the test set leaks into training or validation: no test image is byte for byte
    # one of theirs (MNIST has no such duplicate, so any would be a leak), nor shares their memory.
    test = {image.tobytes() for image in mnist.test.images}
    assert len(test) == 10000
    for split in (mnist.train, mnist.validation):
        assert not any(image.tobytes() in test for image in split.images)
        assert not np.shares_memory(split.images, mnist.test.images)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("dotted", [True, False])
def test_data_dir_accepts_gzip_raw_and_both_namings(tmp_path, tiny_arrays, compress, dotted):
    train, test = tiny_arrays
    data = load_mnist(write_idx_dir(tmp_path, train, test, compress, dotted), validation_size=5)
    assert (len(data.train), len(data.validation), len(data.test)) == (35, 5, 10)
    np.testing.assert_array_equal(data.test.images, test[0])


def test_keras_npz_is_accepted(tmp_path, tiny_arrays):
    (xt, yt), (xs, ys) = tiny_arrays
    np.savez(tmp_path / "mnist.npz", x_train=xt, y_train=yt, x_test=xs, y_test=ys)
    assert len(load_mnist(tmp_path / "mnist.npz", validation_size=5).test) == 10
    assert len(load_mnist(tmp_path, validation_size=5).train) == 35


def test_parse_idx_roundtrip():
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    np.testing.assert_array_equal(parse_idx(idx_bytes(images, IMAGES_MAGIC), IMAGES_MAGIC, "x"), images)
    np.testing.assert_array_equal(
        parse_idx(gzip.compress(idx_bytes(images, IMAGES_MAGIC)), IMAGES_MAGIC, "x"), images
    )


IMAGES = np.zeros((3, 28, 28), np.uint8)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty or truncated"),
        (idx_bytes(IMAGES, IMAGES_MAGIC)[:-1], "truncated"),
        (idx_bytes(IMAGES, IMAGES_MAGIC) + b"\0", "longer than its header"),
        (idx_bytes(IMAGES, LABELS_MAGIC)[:8], "wrong IDX magic"),
        (idx_bytes(np.zeros((3, 27, 28), np.uint8), IMAGES_MAGIC), "27x28"),
        (idx_bytes(IMAGES, IMAGES_MAGIC)[:10], "truncated IDX header"),
        (gzip.compress(idx_bytes(IMAGES, IMAGES_MAGIC))[:-12], "gzip"),
        (b"\x1f\x8bnot really gzip", "gzip"),
    ],
)
def test_parse_idx_rejects_damage(raw, message):
    with pytest.raises(UserError, match=message):
        parse_idx(raw, IMAGES_MAGIC, "file")


def test_missing_file(tmp_path, tiny_arrays):
    write_idx_dir(tmp_path, *tiny_arrays)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match="missing t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path, validation_size=5)


def test_missing_dir(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_mnist(tmp_path / "nowhere")


def test_count_mismatch(tmp_path, tiny_arrays):
    (xt, yt), test = tiny_arrays
    write_idx_dir(tmp_path, (xt, yt[:-1]), test)
    with pytest.raises(UserError, match="40 images but 39 labels"):
        load_mnist(tmp_path, validation_size=5)


def test_label_out_of_range(tmp_path, tiny_arrays):
    (xt, yt), test = tiny_arrays
    bad = yt.copy()
    bad[3] = 12
    write_idx_dir(tmp_path, (xt, bad), test)
    with pytest.raises(UserError, match="label 12"):
        load_mnist(tmp_path, validation_size=5)


def test_checksum_mismatch(tmp_path, tiny_arrays):
    write_idx_dir(tmp_path, *tiny_arrays)
    name = "train-images-idx3-ubyte.gz"
    sums = {p.name: sha256_hex(p.read_bytes()) for p in tmp_path.glob("*.gz")}
    sums[name] = "0" * 64
    (tmp_path / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in sums.items()))
    with pytest.raises(UserError, match=f"{name}: SHA-256 mismatch"):
        load_mnist(tmp_path, validation_size=5)


def test_bad_npz(tmp_path, tiny_arrays):
    (tmp_path / "mnist.npz").write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="cannot read as .npz"):
        load_mnist(tmp_path / "mnist.npz")
    (xt, yt), (xs, ys) = tiny_arrays
    np.savez(tmp_path / "mnist.npz", x_train=xt, y_train=yt, x_test=xs)
    with pytest.raises(UserError, match="no array 'y_test'"):
        load_mnist(tmp_path / "mnist.npz")
    np.savez(tmp_path / "mnist.npz", x_train=xt.astype(np.float32), y_train=yt, x_test=xs, y_test=ys)
    with pytest.raises(UserError, match="dtype float32"):
        load_mnist(tmp_path / "mnist.npz")
