"""28x28 pictures: MNIST's own form passes untouched, a drawing its owner shrank to 28x28 is fitted.

MNIST digits fit a 20x20 box and are centred by mass; a person who shrinks a drawing to 28x28
lets it fill the frame. Taken as it is, such a picture is not what the models learned: it is
fitted and centred like any other picture, while every MNIST image still passes untouched (so
``eval`` reads exactly the test set).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MNIST

from mnist_edge_runtime.idx import read_images_and_labels
from mnist_edge_runtime.reading import BOX, SIDE, in_mnist_form, read_digit


@pytest.fixture(scope="module")
def mnist_images():
    train, _ = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    test, _ = read_images_and_labels(MNIST / "t10k-images-idx3-ubyte.gz", MNIST / "t10k-labels-idx1-ubyte.gz")
    return np.concatenate([train, test])


def test_every_mnist_image_is_in_mnist_form_and_read_untouched(mnist_images):
    assert all(in_mnist_form(image) for image in mnist_images)
    for image in mnist_images[::97]:  # the whole reading path, on a spread of them
        np.testing.assert_array_equal(read_digit(image), image)


def _shrunk_by_its_owner(digit: np.ndarray) -> np.ndarray:
    """The digit's ink stretched to fill the 28x28 frame (no margin), as a drawing app shrinks it."""
    from PIL import Image

    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    crop = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return np.asarray(Image.fromarray(crop).resize((SIDE, SIDE), Image.BICUBIC))


def _extent(image: np.ndarray) -> int:
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)


@pytest.mark.parametrize("dark_on_white", [False, True])
def test_a_drawing_that_fills_the_frame_is_fitted(mnist_images, dark_on_white):
    for digit in mnist_images[:50]:
        shrunk = _shrunk_by_its_owner(digit)
        assert not in_mnist_form(shrunk)
        read = read_digit(255 - shrunk if dark_on_white else shrunk)
        assert in_mnist_form(read) and _extent(read) <= BOX


def test_an_off_centre_digit_is_centred(mnist_images):
    digit = mnist_images[0]
    shifted = np.zeros_like(digit)
    shifted[:, 4:] = digit[:, :-4]  # four pixels to the right: still inside the frame
    assert not in_mnist_form(shifted)
    read = read_digit(shifted)
    assert in_mnist_form(read)
    np.testing.assert_array_equal(read, read_digit(read))  # fitted once, then taken as it is


@pytest.mark.parametrize("polarity", ["MNIST form", "dark on white"])
def test_a_28x28_jpeg_of_an_mnist_digit_is_not_refitted(mnist_images, polarity, monkeypatch):
    """JPEG's ringing widens the faint edge of the ink, not the digit: no re-fit, same pixels as
    reading the picture with the fit switched off."""
    import io

    from PIL import Image

    from mnist_edge_runtime import reading

    for digit in mnist_images[-300:]:
        buffer = io.BytesIO()
        Image.fromarray(digit if polarity == "MNIST form" else 255 - digit).save(buffer, "JPEG", quality=75)
        gray = np.asarray(Image.open(buffer).convert("L"))
        read = read_digit(gray)
        assert in_mnist_form(read)
        with monkeypatch.context() as patched:
            patched.setattr(reading, "in_mnist_form", lambda image: True)
            np.testing.assert_array_equal(read, read_digit(gray))
