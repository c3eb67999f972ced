"""Turn a picture of a digit into an MNIST image: 28x28 uint8, bright ink on black.

MNIST digits were size-normalized to fit a 20x20 box (keeping their aspect
ratio) and centred in 28x28 by their centre of mass. A photo of a digit on
paper is dark ink on a light, uneven background at any size and position, so
it goes through the same steps: grayscale, polarity, background removal, crop
to the ink, scale to 20x20, centre by mass.

A 28x28 uint8 array is taken to be MNIST already and passes through untouched.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mnist_edge_runtime.errors import RuntimeInputError

SIDE, BOX = 28, 20
MAX_IMAGE_PIXELS = 40_000_000  # a 40-megapixel photo is plenty; more is likely a decompression bomb
MAX_FILE_BYTES = 50 * 1024 * 1024
WORKING_SIDE = 400  # photos are shrunk to this longest side before the digit is looked for


def _pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise RuntimeInputError(
            "reading image files needs Pillow: pip install 'mnist-edge-runtime[images]'"
        ) from None
    return Image, ImageOps


def load_image_file(path: Path) -> np.ndarray:
    """Read PNG / JPEG / BMP / PGM (anything Pillow reads) as a 2-D float array, 0..255.

    Changes no process-wide state (Pillow's limits, warning filters), so threads can share it.
    A JPEG is decoded at reduced size (``draft``): a 40-megapixel photo costs a few MB, not 160.
    """
    pil, _ = _pillow()
    path = Path(path)
    if not path.is_file():
        raise RuntimeInputError(f"{path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise RuntimeInputError(
            f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; not a digit picture"
        )
    try:
        with pil.open(path) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:  # read from the header, before decoding
                raise RuntimeInputError(f"{path}: {image.width}x{image.height} pixels is too large")
            if image.format == "JPEG":
                image.draft("L", (WORKING_SIDE, WORKING_SIDE))  # decode at 1/2, 1/4 or 1/8 size
            return pil_to_gray(image)
    except RuntimeInputError:
        raise
    except pil.DecompressionBombError:
        raise RuntimeInputError(f"{path}: image is too large (decompression bomb?)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise RuntimeInputError(f"{path}: not a readable image ({exc})") from None


def pil_to_gray(image) -> np.ndarray:
    """A Pillow image -> 2-D float32 gray, 0..255: upright (EXIF), transparency as white paper."""
    pil, pil_ops = _pillow()
    image = pil_ops.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        background = pil.new("RGBA", image.size, (255, 255, 255, 255))
        image = pil.alpha_composite(background, image.convert("RGBA"))
    gray = image.convert("L")
    factor = max(gray.size) // (2 * WORKING_SIDE)
    if factor > 1:  # shrink in uint8 before the float copy; _working_size does the rest
        gray = gray.reduce(factor)
    return np.asarray(gray, dtype=np.float32)


def _is_pil_image(value: object) -> bool:
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(value, module.Image)


def as_gray(image: object, what: str = "image") -> np.ndarray:
    """One picture as a 2-D array: a Pillow image, or a (H, W), (H, W, 1), (H, W, 3) RGB or
    (H, W, 4) RGBA array (transparent pixels count as white paper)."""
    if _is_pil_image(image):
        return pil_to_gray(image)
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[-1] in (1, 3, 4):
        rgb = check_array(image, what, ndim=3)
        if rgb.shape[-1] == 1:
            return rgb[..., 0]
        gray = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        if rgb.shape[-1] == 4:
            alpha = rgb[..., 3].astype(np.float32) / 255.0
            gray = gray * alpha + 255.0 * (1.0 - alpha)
        return gray
    return check_array(image, what)


def check_array(array: np.ndarray, what: str = "array", ndim: int = 2) -> np.ndarray:
    """A finite numeric array of pixel values: floats in [0, 1] are scaled to 0..255."""
    if not isinstance(array, np.ndarray):
        raise RuntimeInputError(
            f"{what}: expected a numpy array, a Pillow image or an image file, got {type(array).__name__}"
        )
    if array.ndim != ndim or min(array.shape, default=0) < 1:
        raise RuntimeInputError(
            f"{what}: expected one grayscale (H, W) or color (H, W, 3|4) image, got shape {array.shape}"
        )
    if array.dtype.kind not in "uif" and array.dtype != np.bool_:
        raise RuntimeInputError(f"{what}: unsupported dtype {array.dtype}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise RuntimeInputError(f"{what}: contains NaN or infinite values")
        if array.max(initial=0) <= 1.0 and array.min(initial=0) >= 0.0:
            array = array * 255.0  # floats in [0, 1]
    if array.min(initial=0) < 0 or array.max(initial=0) > 255:
        raise RuntimeInputError(f"{what}: pixel values outside 0..255")
    return array


def to_mnist(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Any picture of one digit (see ``as_gray``) -> 28x28 uint8 in MNIST form.

    A 28x28 grayscale image is taken to be MNIST already (bright digit on black, any numeric
    dtype, floats in [0, 1] or [0, 255]) and is only rounded to uint8; anything else, color
    pictures included, is treated as a photo.
    """
    color = _is_pil_image(image) and image.mode not in ("L", "I", "F", "1")
    color |= isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[-1] in (3, 4)
    image = as_gray(image, what)
    if image.shape == (SIDE, SIDE) and not color:
        return image if image.dtype == np.uint8 else np.round(image).astype(np.uint8)
    gray = _ink_bright(_working_size(image.astype(np.float32)))
    ink = _remove_background(gray)
    ink[~_digit_mask(ink > 0)] = 0
    if ink.max() <= 0:
        raise RuntimeInputError(f"{what}: no digit found (the picture is blank)")
    return _fit_and_centre(ink, what)


def _working_size(gray: np.ndarray, longest: int = WORKING_SIDE) -> np.ndarray:
    """Shrink big photos first: the digit ends up 20 pixels tall, and the steps below scale with area."""
    h, w = gray.shape
    if max(h, w) <= longest:
        return gray
    from PIL import Image

    scale = longest / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(gray, mode="F").resize(size, Image.BOX))


def _digit_mask(ink: np.ndarray) -> np.ndarray:
    """Keep the digit's strokes; drop ruled lines, specks and things at the picture's edge.

    A row or column of ink from edge to edge is a ruled (or graph-paper) line. Of the
    connected pieces left, those touching the border are paper edges or
    shadows (unless nothing else is left), and pieces under 5% of the largest
    are specks.
    """
    ink = ink.copy()
    ink[_ruled(ink), :] = False
    ink[:, _ruled(ink.T)] = False
    labels, sizes = _connected_components(ink)
    if not sizes:
        return ink
    h, w = ink.shape
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist()) - {
        0
    }
    inside = [label for label in range(1, len(sizes) + 1) if label not in border]
    candidates = inside or list(range(1, len(sizes) + 1))
    largest = max(sizes[label - 1] for label in candidates)
    keep = [label for label in candidates if sizes[label - 1] >= 0.05 * largest]
    return np.isin(labels, keep)


def _ruled(ink: np.ndarray) -> np.ndarray:
    """Rows that run from edge to edge and are over half ink: ruled lines, not strokes."""
    margin = max(1, ink.shape[1] // 20)
    return (ink.mean(axis=1) > 0.5) & ink[:, :margin].any(axis=1) & ink[:, -margin:].any(axis=1)


def _connected_components(mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """8-connected components of a boolean mask: (labels, size of each label 1..n).

    Works on runs of ink along each row rather than on pixels: runs in neighbouring rows that
    touch (diagonals included) are joined with a union-find, so Python loops over runs, a few
    hundred in a drawing, and numpy does the per-pixel work. Labels are numbered in raster order
    of each component's first pixel.
    """
    h, w = mask.shape
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    run_rows, starts = np.nonzero(edges == 1)
    ends = np.nonzero(edges == -1)[1]  # exclusive; runs come in raster order
    labels = np.zeros((h, w), np.int32)
    if len(starts) == 0:
        return labels, []
    parent = np.arange(len(starts))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_run = np.searchsorted(run_rows, np.arange(h + 1))
    for row in range(h - 1):
        a, b, c = first_run[row], first_run[row + 1], first_run[row + 2]
        if a == b or b == c:
            continue
        # Run i (row) touches run j (row + 1) when start_j <= end_i and start_i <= end_j.
        first = np.searchsorted(ends[b:c], starts[a:b], side="left")
        last = np.searchsorted(starts[b:c], ends[a:b], side="right")
        for i in np.nonzero(last > first)[0]:
            for j in range(first[i], last[i]):
                x, y = root(a + i), root(b + j)
                if x != y:
                    parent[max(x, y)] = min(x, y)
    while True:  # flatten every chain to its root
        flattened = parent[parent]
        if np.array_equal(flattened, parent):
            break
        parent = flattened
    _, run_label = np.unique(parent, return_inverse=True)
    run_label = run_label.reshape(-1) + 1
    lengths = ends - starts
    sizes = np.bincount(run_label, weights=lengths)[1:].astype(int).tolist()
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    labels.reshape(-1)[np.repeat(run_rows * w + starts, lengths) + offsets] = np.repeat(run_label, lengths)
    return labels, sizes


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


def _fit_and_centre(ink: np.ndarray, what: str) -> np.ndarray:
    from PIL import Image

    rows, cols = np.nonzero(ink)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    crop = _normalize_stroke(crop, scale)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    digit = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize(size, Image.LANCZOS))
    digit = np.clip(digit, 0, 255)
    if digit.sum() <= 0:  # a speck or a line so thin that nothing is left at 20x20
        raise RuntimeInputError(f"{what}: no digit found (the ink vanishes at MNIST's size)")
    canvas = np.zeros((SIDE, SIDE), np.float32)
    cy, cx = _centre_of_mass(digit)
    top = int(np.clip(round(SIDE / 2 - cy), 0, SIDE - digit.shape[0]))
    left = int(np.clip(round(SIDE / 2 - cx), 0, SIDE - digit.shape[1]))
    canvas[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    return np.round(canvas).astype(np.uint8)


# MNIST's stroke width at 28x28 (2 x area / boundary of the pixels over 127) is 2.2 / 2.8 / 3.9
# pixels at the 10th / 50th / 90th percentile of 5,000 training digits. Strokes well outside
# that range are brought to the median; those inside are left alone.
STROKE_WIDTH = (1.8, 2.8, 4.2)


def _stroke_width(mask: np.ndarray) -> float:
    inner = mask.copy()
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return 2 * float(mask.sum()) / max(float((mask & ~inner).sum()), 1.0)


def _normalize_stroke(crop: np.ndarray, scale: float) -> np.ndarray:
    """Thin a marker's strokes or thicken a fine pen's, so they end up as wide as MNIST's."""
    padded = np.pad(crop, 1)
    width = _stroke_width(padded > 0.5 * padded.max())
    low, typical, high = STROKE_WIDTH
    if low <= width * scale <= high:
        return crop
    radius = round(abs(typical / scale - width) / 2)
    if radius < 1:
        return crop
    grow = width * scale < low
    out = np.pad(crop, radius) if grow else crop
    return _grey_morphology(out, radius, np.maximum if grow else np.minimum)


def _grey_morphology(image: np.ndarray, radius: int, op) -> np.ndarray:
    """Dilation (np.maximum) or erosion (np.minimum) with a square of side 2 * radius + 1."""
    result = image
    for axis in (0, 1):
        padded = np.pad(result, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        size = result.shape[axis]
        result = padded.take(range(0, size), axis=axis)
        for shift in range(1, 2 * radius + 1):
            result = op(result, padded.take(range(shift, shift + size), axis=axis))
    return result


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    total = image.sum()
    ys, xs = np.indices(image.shape)
    return float((ys * image).sum() / total), float((xs * image).sum() / total)


def as_mnist_batch(inputs: object) -> tuple[np.ndarray, list[str]]:
    """Pictures -> (N, 28, 28) uint8 and a name for each.

    ``inputs`` is one picture or a sequence of them: an image file path, a Pillow image, or a
    numpy array of one picture (``as_gray``); an (N, 28, 28) array is a batch of MNIST images,
    an (N, H, W) or (N, H, W, C) array a batch of pictures.
    """
    if isinstance(inputs, np.ndarray):
        if inputs.ndim == 3 and inputs.shape[1:] == (SIDE, SIDE) and inputs.dtype == np.uint8:
            return inputs, [f"array[{i}]" for i in range(len(inputs))]
        if inputs.ndim == 4 or (inputs.ndim == 3 and inputs.shape[-1] not in (1, 3, 4)):
            names = [f"array[{i}]" for i in range(len(inputs))]
            return _stack([to_mnist(a, n) for a, n in zip(inputs, names)]), names
        return to_mnist(inputs, "array")[None], ["array"]
    if isinstance(inputs, (str, Path)) or _is_pil_image(inputs):
        inputs = [inputs]
    images, names = [], []
    for i, item in enumerate(inputs):
        if isinstance(item, (str, Path)):
            images.append(to_mnist(load_image_file(Path(item)), str(item)))
            names.append(str(item))
        else:
            images.append(to_mnist(item, f"input[{i}]"))
            names.append(f"input[{i}]")
    return _stack(images), names


def _stack(images: list[np.ndarray]) -> np.ndarray:
    if not images:
        raise RuntimeInputError("no images given")
    return np.stack(images)
