"""Turn a picture of a digit into an MNIST image: 28x28 uint8, bright ink on black.

The picture may be an image file, its bytes, a Pillow image or a numpy array. Two modules do the
work, and this one joins them:

* ``decoding``: a file, bytes or a Pillow image -> a 2-D gray array (formats read, the memory a
  picture may take to decode, EXIF orientation, transparency, 16-bit gray);
* ``reading``: a gray array -> the digit in MNIST form (polarity, background, the digit's
  pieces, size and centre).

``decoding`` imports ``reading``, never the reverse. The names other modules have always imported
from here are kept here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mnist_edge_runtime.decoding import (  # noqa: F401 (re-exported)
    DECODE_OVERHEAD,
    FORMATS,
    MAX_DECODE_BYTES,
    MAX_EXIF_BYTES,
    MAX_FILE_BYTES,
    decode_cost,
    image_suffixes,
    load_image_bytes,
    load_image_file,
    pil_to_gray,
)
from mnist_edge_runtime.errors import NoDigitError, RuntimeInputError
from mnist_edge_runtime.reading import (  # noqa: F401 (re-exported)
    BOX,
    MIN_CONTRAST,
    MIN_INK_CONTRAST,
    SIDE,
    STROKE_WIDTH,
    WORKING_SIDE,
    _cell_percentiles,
    _connected_components,
    _grey_morphology,
    _ink_runs,
    _otsu,
    _percentile_rows,
    _Runs,
    array_to_gray,
    check_array,
    piece_boxes,
    read_digit,
)


def _is_pil_image(value: object) -> bool:
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(value, module.Image)


def as_gray(image: object, what: str = "image") -> np.ndarray:
    """One picture as a 2-D array: a Pillow image, or a (H, W), (H, W, 1), (H, W, 3) RGB or
    (H, W, 4) RGBA array (transparent pixels count as white paper)."""
    if _is_pil_image(image):
        return pil_to_gray(image)
    if isinstance(image, np.ndarray):
        return array_to_gray(image, what)
    return check_array(image, what)


def to_mnist(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Any picture of one digit (see ``as_gray``) -> 28x28 uint8 in MNIST form.

    A 28x28 picture is taken as sized and centred: bright ink on black (MNIST's form, any
    numeric dtype, floats in [0, 1] or [0, 255]) is only rounded to uint8; dark ink on a light
    background, grayscale or colour, is inverted. Anything larger or smaller is treated as a
    photo. Raises ``NoDigitError`` when there is no ink to read.
    """
    return read_digit(as_gray(image, what), what)


def mnist_or_blank(picture: object, what: str = "image") -> np.ndarray:
    """``to_mnist``, with a picture that holds no digit as an all-black 28x28 image (no ink).

    A file path is read first (``load_image_file``). Unreadable input still raises.
    """
    try:
        if isinstance(picture, (str, Path)):
            picture = load_image_file(Path(picture))
        return to_mnist(picture, what)
    except NoDigitError:
        return np.zeros((SIDE, SIDE), np.uint8)


def as_mnist_batch(inputs: object) -> tuple[np.ndarray, list[str]]:
    """Pictures -> (N, 28, 28) uint8 and a name for each; a blank picture becomes all black.

    ``inputs`` is one picture or a sequence of them: an image file path, a Pillow image, or a
    numpy array of one picture (``as_gray``); an (N, 28, 28) uint8 array is a batch of MNIST
    images, passed on untouched; an (N, H, W) or (N, H, W, C) array a batch of pictures.
    """
    if isinstance(inputs, np.ndarray):
        if inputs.ndim == 3 and inputs.shape[1:] == (SIDE, SIDE) and inputs.dtype == np.uint8:
            return inputs, [f"array[{i}]" for i in range(len(inputs))]
        if inputs.ndim == 4 or (inputs.ndim == 3 and inputs.shape[-1] not in (1, 3, 4)):
            names = [f"array[{i}]" for i in range(len(inputs))]
            return _stack([mnist_or_blank(a, n) for a, n in zip(inputs, names)]), names
        return mnist_or_blank(inputs, "array")[None], ["array"]
    if isinstance(inputs, (str, Path)) or _is_pil_image(inputs):
        inputs = [inputs]
    names = [str(item) if isinstance(item, (str, Path)) else f"input[{i}]" for i, item in enumerate(inputs)]
    return _stack([mnist_or_blank(item, name) for item, name in zip(inputs, names)]), names


def _stack(images: list[np.ndarray]) -> np.ndarray:
    if not images:
        raise RuntimeInputError("no images given")
    return np.stack(images)
