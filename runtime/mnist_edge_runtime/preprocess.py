"""Turn a picture of a digit into an MNIST image: 28x28 uint8, bright ink on black.

MNIST digits were size-normalized to fit a 20x20 box (keeping their aspect
ratio) and centred in 28x28 by their centre of mass. A photo of a digit on
paper is dark ink on a light, uneven background at any size and position, so
it goes through the same steps: grayscale, polarity, background removal, crop
to the ink, scale to 20x20, centre by mass.

A 28x28 uint8 array is taken to be MNIST already and passes through untouched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_edge_runtime.errors import RuntimeInputError

SIDE, BOX = 28, 20
MAX_IMAGE_PIXELS = 40_000_000  # a 40-megapixel photo is plenty; more is likely a decompression bomb
MAX_FILE_BYTES = 50 * 1024 * 1024


def load_image_file(path: Path) -> np.ndarray:
    """Read PNG / JPEG / BMP / PGM (anything Pillow reads) as a 2-D float array, 0..255."""
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise RuntimeInputError(
            "reading image files needs Pillow: pip install 'mnist-edge-runtime[images]'"
        ) from None
    path = Path(path)
    if not path.is_file():
        raise RuntimeInputError(f"{path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise RuntimeInputError(
            f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; not a digit picture"
        )
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise RuntimeInputError(f"{path}: {image.width}x{image.height} pixels is too large")
                image = ImageOps.exif_transpose(image)
                if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                    # Transparent pixels become paper-white, not black.
                    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                    image = Image.alpha_composite(background, image.convert("RGBA"))
                gray = np.asarray(image.convert("L"), dtype=np.float32)
    except RuntimeInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RuntimeInputError(f"{path}: image is too large (decompression bomb?)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise RuntimeInputError(f"{path}: not a readable image ({exc})") from None
    return gray


def check_array(array: np.ndarray, what: str = "array") -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise RuntimeInputError(
            f"{what}: expected a numpy array or an image file, got {type(array).__name__}"
        )
    if array.ndim != 2 or min(array.shape) < 1:
        raise RuntimeInputError(f"{what}: expected one 2-D grayscale image, got shape {array.shape}")
    if array.dtype.kind not in "uif" and array.dtype != np.bool_:
        raise RuntimeInputError(f"{what}: unsupported dtype {array.dtype}")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise RuntimeInputError(f"{what}: contains NaN or infinite values")
        if array.max(initial=0) <= 1.0 and array.min(initial=0) >= 0.0:
            array = array * 255.0  # floats in [0, 1]
    if array.min(initial=0) < 0 or array.max(initial=0) > 255:
        raise RuntimeInputError(f"{what}: pixel values outside 0..255")
    return array


def to_mnist(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Any 2-D grayscale picture of one digit -> 28x28 uint8 in MNIST form."""
    image = check_array(image, what)
    if image.shape == (SIDE, SIDE) and image.dtype == np.uint8:
        return image
    gray = image.astype(np.float32)
    gray = _ink_bright(gray)
    ink = _remove_background(gray)
    if ink.max() <= 0:
        raise RuntimeInputError(f"{what}: no digit found (the picture is blank)")
    return _fit_and_centre(ink)


def _ink_bright(gray: np.ndarray) -> np.ndarray:
    """Make ink bright on a dark background, whatever the picture had."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return 255.0 - gray if np.median(border) > 127 else gray


def _remove_background(gray: np.ndarray) -> np.ndarray:
    """Subtract an uneven background and keep only what is clearly ink, scaled to 0..255."""
    from PIL import Image

    # Paper tone and shadows change slowly: the 10th percentile of each cell of a
    # 4x4 grid, smoothly interpolated, is background wherever a cell is not all ink.
    h, w = gray.shape
    grid = 4 if min(h, w) >= 16 else 1
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    cells = np.array(
        [
            [np.percentile(gray[ys[i] : ys[i + 1], xs[j] : xs[j + 1]], 10) for j in range(grid)]
            for i in range(grid)
        ],
        dtype=np.float32,
    )
    background = np.asarray(Image.fromarray(cells, mode="F").resize((w, h), Image.BILINEAR))
    signal = np.clip(gray - background, 0, None)
    if signal.max() <= 0:
        return signal
    threshold = _otsu(signal)
    signal[signal < threshold * 0.5] = 0
    peak = np.percentile(signal[signal > 0], 95) if np.any(signal > 0) else 1.0
    return np.clip(signal / max(peak, 1e-6) * 255.0, 0, 255)


def _otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=64)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist)
    total = weight[-1]
    mean = np.cumsum(hist * centres)
    between = (mean[-1] * weight - mean * total) ** 2 / np.maximum(weight * (total - weight), 1)
    return float(centres[int(np.argmax(between))])


def _fit_and_centre(ink: np.ndarray) -> np.ndarray:
    from PIL import Image

    rows, cols = np.nonzero(ink)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    digit = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize(size, Image.LANCZOS))
    digit = np.clip(digit, 0, 255)
    canvas = np.zeros((SIDE, SIDE), np.float32)
    cy, cx = _centre_of_mass(digit)
    top = int(np.clip(round(SIDE / 2 - cy), 0, SIDE - digit.shape[0]))
    left = int(np.clip(round(SIDE / 2 - cx), 0, SIDE - digit.shape[1]))
    canvas[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    return np.round(canvas).astype(np.uint8)


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    total = image.sum()
    ys, xs = np.indices(image.shape)
    return float((ys * image).sum() / total), float((xs * image).sum() / total)


def as_mnist_batch(inputs: object) -> tuple[np.ndarray, list[str]]:
    """Images, paths or arrays -> (N, 28, 28) uint8 and a name for each."""
    if isinstance(inputs, np.ndarray):
        if inputs.ndim == 3 and inputs.shape[1:] == (SIDE, SIDE) and inputs.dtype == np.uint8:
            return inputs, [f"array[{i}]" for i in range(len(inputs))]
        if inputs.ndim == 3:
            items = list(inputs)
            return np.stack([to_mnist(a, f"array[{i}]") for i, a in enumerate(items)]), [
                f"array[{i}]" for i in range(len(items))
            ]
        return to_mnist(inputs, "array")[None], ["array"]
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    images, names = [], []
    for i, item in enumerate(inputs):
        if isinstance(item, (str, Path)):
            images.append(to_mnist(load_image_file(Path(item)), str(item)))
            names.append(str(item))
        else:
            images.append(to_mnist(item, f"input[{i}]"))
            names.append(f"input[{i}]")
    if not images:
        raise RuntimeInputError("no images given")
    return np.stack(images), names
