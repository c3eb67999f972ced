"""Turn a picture of a digit into an MNIST image: 28x28 uint8, bright ink on black.

MNIST digits were size-normalized to fit a 20x20 box (keeping their aspect
ratio) and centred in 28x28 by their centre of mass. A photo of a digit on
paper is dark ink on a light, uneven background at any size and position, so
it goes through the same steps: grayscale, polarity, background removal, crop
to the ink, scale to 20x20, centre by mass.

Polarity is read from every picture, whatever its size: where the border is brighter than the
ink, the picture is inverted. A 28x28 picture is then taken as already sized and centred: one
that is bright ink on black (MNIST's own form) passes through untouched, one that is dark ink
on a light background is inverted and its background level taken off.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mnist_edge_runtime.errors import NoDigitError, RuntimeInputError

SIDE, BOX = 28, 20
# Decoding a picture may take at most this much memory (see decode_cost): a 40-megapixel RGB photo
# in a lossless format; more is likely a decompression bomb.
MAX_DECODE_BYTES = 200_000_000
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


def image_suffixes() -> set[str]:
    """The file extensions of the formats read (``FORMATS``; lower case, with the dot)."""
    pil, _ = _pillow()
    return {suffix.lower() for suffix, fmt in pil.registered_extensions().items() if fmt in FORMATS}


def load_image_file(path: Path, max_decode_bytes: int = MAX_DECODE_BYTES) -> np.ndarray:
    """Read a PNG, JPEG, GIF, BMP, WebP, TIFF or PGM/PPM file (``FORMATS``) as a 2-D float array, 0..255.

    Changes no process-wide state (Pillow's limits, warning filters), so threads can share it.
    Memory is bounded by ``max_decode_bytes`` as far as ``decode_cost`` estimates it from the
    header; only ``FORMATS`` are read; a JPEG is decoded at reduced size and in gray (``draft``):
    a 48-megapixel baseline photo costs a few megabytes.
    """
    path = Path(path)
    if not path.is_file():
        raise RuntimeInputError(f"{path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise RuntimeInputError(
            f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; not a digit picture"
        )
    return _decode(path, str(path), max_decode_bytes)


def load_image_bytes(
    data: bytes, what: str = "image", max_decode_bytes: int = MAX_DECODE_BYTES
) -> np.ndarray:
    """``load_image_file`` for an encoded picture in memory (an upload, say)."""
    import io

    if not data:
        raise RuntimeInputError(f"{what}: empty")
    return _decode(io.BytesIO(data), what, max_decode_bytes)


DECODE_OVERHEAD = 8_000_000  # a decoder's tables and buffers (libjpeg at 1/8 scale of 48 megapixels: 5 MB)
# Bytes Pillow stores per pixel, by mode (every mode not named here takes 4, RGB included).
_STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# Decoders that hold their own full-size buffer besides Pillow's image: the peak, measured, is
# this many times the image itself (a lossless 16-megapixel RGBA WebP: 249 MB for 64 MB).
_DECODER_COPIES = {"WEBP": 4}


# The formats read: what a digit picture comes as. Pillow's others are refused unread: ICO and ICNS
# decode an embedded PNG of any size inside open(), before its size can be checked, and EPS runs
# Ghostscript.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "PPM")  # JPEG includes MPO (multi-picture JPEG)
MAX_EXIF_BYTES = 64 * 1024  # a larger EXIF block is not read (Pillow 9 copies tag data unbounded)


def decode_cost(image, full_size: tuple[int, int] | None = None, full_bands: int = 3) -> int:
    """Bytes that reading an opened (not yet loaded) Pillow image takes at its peak, estimated
    from its header (``benchmarks/serve_hostile.py`` measures it against this): the pixels as
    Pillow stores them with a pointer per row (a 1x16,000,000 picture holds 128 MB of row
    pointers), the decoder's own buffers, the full-size 8-bit copies made before shrinking, and
    the float working copies of the shrunk picture. A progressive JPEG is decoded at reduced
    size (``draft``) but libjpeg keeps every coefficient of the full-size picture: 2 bytes per
    sample of ``full_size`` x ``full_bands``."""
    width, height = image.size
    pixels = width * height
    stored = height * (width * _STORED_BYTES.get(image.mode, 4) + 8)
    transparent = _is_transparent(image)
    wide = image.mode.startswith("I") or image.mode == "F"
    if transparent:  # gray, alpha and 1-alpha planes (through 4-byte gray+alpha unless RGBA/LA)
        copy_bytes = 3 if image.mode in ("RGBA", "LA") else 7
    elif image.mode in ("L", "I", "F"):
        copy_bytes = 0  # shrunk as it is
    elif image.mode.startswith("I;16"):
        copy_bytes = 4  # 32-bit gray
    elif image.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        copy_bytes = 5  # to gray through a full-size RGB copy
    else:
        copy_bytes = 1  # 8-bit gray
    # float32 working copies of the shrunk picture; 16-bit and wider gray is scaled in float64
    working = min(pixels, (4 * WORKING_SIDE) ** 2) * (28 if wide else 24 if transparent else 12)
    coefficients = 0
    if image.format in ("JPEG", "MPO") and ("progressive" in image.info or "progression" in image.info):
        full_width, full_height = full_size or image.size
        coefficients = 2 * full_width * full_height * full_bands
    return (
        stored * _DECODER_COPIES.get(image.format or "", 1)
        + (height * (width * copy_bytes + 8) if copy_bytes else 0)
        + 2 * width * _STORED_BYTES.get(image.mode, 4)  # the decoder's previous and current row
        + working
        + coefficients
        + DECODE_OVERHEAD
    )


def _decode(source: object, what: str, max_decode_bytes: int) -> np.ndarray:
    pil, _ = _pillow()
    try:
        with pil.open(source, formats=FORMATS) as image:
            full_size, full_bands = image.size, len(image.getbands())
            if image.format in ("JPEG", "MPO"):
                image.draft("L", (WORKING_SIDE, WORKING_SIDE))  # decode at 1/2, 1/4 or 1/8 size, in gray
            cost = decode_cost(image, full_size, full_bands)  # from the header, before decoding
            if cost > max_decode_bytes:
                raise RuntimeInputError(
                    f"{what}: too large to read: a {image.width}x{image.height} {image.mode} image takes"
                    f" {_mb(cost)} to decode, over the {_mb(max_decode_bytes)} limit"
                )
            return pil_to_gray(image)
    except RuntimeInputError:
        raise
    except pil.DecompressionBombError:
        raise RuntimeInputError(f"{what}: image is too large (decompression bomb?)") from None
    except pil.UnidentifiedImageError:
        raise RuntimeInputError(
            f"{what}: not a readable image (formats read: {', '.join(FORMATS)})"
        ) from None
    except MemoryError:
        raise RuntimeInputError(f"{what}: too large to read") from None
    except Exception as exc:  # a damaged file makes Pillow's decoders raise all kinds of errors
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise RuntimeInputError(f"{what}: not a readable image ({reason})") from None


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB" if size >= 1e6 else f"{size / 1e6:.1f} MB"


def _is_transparent(image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


# EXIF orientation -> the Pillow transpose that makes the picture upright (as ImageOps.exif_transpose).
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
            6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}  # fmt: skip


def pil_to_gray(image) -> np.ndarray:
    """A Pillow image -> 2-D float32 gray, 0..255: upright (EXIF), 16-bit scaled, transparency
    as a background that contrasts with the ink.

    Memory: one full-size 8-bit gray (or gray+alpha) copy of the decoded picture, shrunk at once
    to less than twice the working size (1,600 pixels); the upright turn and the float copy are
    made of the shrunk picture.
    """
    pil, _ = _pillow()
    orientation = None
    if len(image.info.get("exif") or b"") <= MAX_EXIF_BYTES:
        try:
            orientation = image.getexif().get(0x0112)
        except Exception:  # a damaged EXIF block is no reason to refuse the picture
            orientation = None
    if image.mode.startswith("I") or image.mode == "F":  # 16-bit, 32-bit integer or float gray
        wide = image if image.mode in ("I", "F") else image.convert("I")
        gray = _shrunk(wide)
    elif not _is_transparent(image):
        gray = _shrunk(image if image.mode == "L" else image.convert("L"))
    else:
        if image.mode not in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")  # a colour key ("transparency" of RGB or L) becomes alpha
        if image.mode == "P":
            image = image.convert("LA")  # keeps the palette's transparency
        # A big one is flattened in 8-bit at full size, then shrunk: no full-size float copy.
        big = max(image.size) >= 4 * WORKING_SIDE
        gray = _shrunk(_flattened(image)) if big else image.convert("LA")
    if orientation in _UPRIGHT:
        gray = gray.transpose(getattr(pil.Transpose, _UPRIGHT[orientation]))
    if gray.mode in ("I", "F"):
        return _wide_to_8bit(np.asarray(gray))
    array = np.asarray(gray, dtype=np.float32)
    return _flatten_alpha(array[..., 0], array[..., 1] / 255.0) if gray.mode == "LA" else array


def _flattened(image):
    """A big RGBA or LA image -> 8-bit gray composited like ``_flatten_alpha``, in two 8-bit
    planes rather than Pillow's 4-byte gray+alpha (whose ``reduce`` makes two more copies)."""
    pil, _ = _pillow()
    alpha = image.getchannel("A")
    gray = image.convert("L")
    del image
    opaque = alpha.point([0] * 128 + [255] * 128)
    counts = gray.histogram(mask=opaque)
    total = sum(counts)
    del opaque
    ink_is_dark = (
        total in (0, alpha.width * alpha.height)
        or sum(level * n for level, n in enumerate(counts)) < 128 * total
    )
    # paste(colour, mask=1-alpha) is gray*alpha + background*(1-alpha), in place.
    gray.paste(255 if ink_is_dark else 0, None, alpha.point([255 - v for v in range(256)]))
    return gray


def _shrunk(image):
    """Shrink by a whole factor to at most twice the working size; ``_working_size`` does the rest."""
    factor = max(image.size) // (2 * WORKING_SIDE)
    return image.reduce(factor) if factor > 1 else image


def _wide_to_8bit(values: np.ndarray) -> np.ndarray:
    """16-bit (or wider) gray values -> 0..255 by the type's range, never clipped."""
    kind, values = values.dtype.kind, values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if low >= 0 and high <= 1 and kind == "f":  # a float image in [0, 1]
        return (values * 255.0).astype(np.float32)
    if low >= 0 and high <= 255:  # 8-bit values in a wide container
        return values.astype(np.float32)
    if low >= 0 and high <= 65535:
        return (values / 257.0).astype(np.float32)
    return ((values - low) * (255.0 / max(high - low, 1e-12))).astype(np.float32)


def _flatten_alpha(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite over a background that contrasts with the opaque pixels: white behind dark ink
    (a canvas exported as black ink on transparent), black behind light ink."""
    opaque = alpha > 0.5
    ink_is_dark = not opaque.any() or opaque.all() or float(gray[opaque].mean()) < 128
    background = 255.0 if ink_is_dark else 0.0
    return (gray * alpha + background * (1.0 - alpha)).astype(np.float32)


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
            return _flatten_alpha(gray, rgb[..., 3].astype(np.float32) / 255.0)
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

    A 28x28 picture is taken as sized and centred: bright ink on black (MNIST's form, any
    numeric dtype, floats in [0, 1] or [0, 255]) is only rounded to uint8; dark ink on a light
    background, grayscale or colour, is inverted. Anything larger or smaller is treated as a
    photo. Raises ``NoDigitError`` when there is no ink to read.
    """
    image = as_gray(image, what)
    if image.shape == (SIDE, SIDE):
        return _small_to_mnist(image, what)
    gray = _ink_bright(_working_size(image.astype(np.float32)))
    ink = _remove_background(gray)
    ink[~_digit_mask(ink > 0)] = 0
    if ink.max() <= 0:
        raise NoDigitError(f"{what}: no digit found (the picture is blank)")
    return _fit_and_centre(ink, what)


def _small_to_mnist(gray: np.ndarray, what: str) -> np.ndarray:
    if not _background_is_bright(gray):
        return gray if gray.dtype == np.uint8 else np.round(gray).astype(np.uint8)
    ink = 255.0 - gray.astype(np.float32)
    floor = float(np.median(_border(ink)))
    top = float(ink.max())
    if top - floor < MIN_CONTRAST:
        raise NoDigitError(f"{what}: no digit found (the picture is blank)")
    return np.round(np.clip((ink - floor) * (255.0 / (top - floor)), 0, 255)).astype(np.uint8)


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

    Three or more thin parallel rows (or columns) of ink from edge to edge are ruled or graph-paper
    lines; one or two are strokes of a digit drawn as big as the canvas (a 7's bar, a 4's stem).
    Of the connected pieces left, one that lies along the border (a paper edge, a table, a
    shadow) is dropped unless nothing else is left. One that touches the border only briefly is
    a stroke running off the edge of a big drawing: it is kept when its box lies mostly within
    the box of the digit's other pieces, or when there are no others. Pieces under 5% of the
    largest are specks.
    """
    ink = ink.copy()
    ink[_ruled(ink), :] = False
    ink[:, _ruled(ink.T)] = False
    runs = _ink_runs(ink)
    if not len(runs.rows):
        return ink
    h, w = ink.shape
    lengths = runs.ends - runs.starts
    sizes = np.bincount(runs.label, weights=lengths)  # indexed by label; 0 is none
    on_edge_row = (runs.rows == 0) | (runs.rows == h - 1)
    contact = np.bincount(
        runs.label,
        weights=np.where(on_edge_row, lengths, 0) + (runs.starts == 0) + (runs.ends == w),
        minlength=len(sizes),
    )
    interior, brief = contact == 0, (contact > 0) & (contact <= 0.1 * (2 * h + 2 * w))
    interior[0] = brief[0] = False
    if interior.any() or brief.any():
        largest = sizes[interior | brief].max()
        keep = interior & (sizes >= 0.05 * largest)
        if keep.any():
            keep |= brief & (sizes >= 0.05 * largest) & (_share_inside(runs, keep, len(sizes)) >= 0.5)
        else:
            keep = brief & (sizes >= 0.05 * largest)
    else:  # everything lies along the border: keep looking at all of it
        keep = sizes >= 0.05 * sizes[1:].max()
    keep[0] = False
    return _paint(runs, keep[runs.label], (h, w))


def piece_boxes(runs: _Runs, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bounding box of each label 0..count-1: top, bottom, left, right (bottom and right exclusive)."""
    top, left = np.full(count, np.iinfo(np.int64).max), np.full(count, np.iinfo(np.int64).max)
    bottom, right = np.full(count, -1), np.full(count, -1)
    np.minimum.at(top, runs.label, runs.rows)
    np.maximum.at(bottom, runs.label, runs.rows + 1)
    np.minimum.at(left, runs.label, runs.starts)
    np.maximum.at(right, runs.label, runs.ends)
    return top, bottom, left, right


def _share_inside(runs: _Runs, kept: np.ndarray, count: int) -> np.ndarray:
    """For each piece, the share of its bounding box inside the bounding box of the kept pieces."""
    top, bottom, left, right = piece_boxes(runs, count)
    k = kept[1:]
    box = top[1:][k].min(), bottom[1:][k].max(), left[1:][k].min(), right[1:][k].max()
    inside_h = np.clip(np.minimum(bottom, box[1]) - np.maximum(top, box[0]), 0, None)
    inside_w = np.clip(np.minimum(right, box[3]) - np.maximum(left, box[2]), 0, None)
    area = np.maximum((bottom - top) * (right - left), 1)
    return inside_h * inside_w / area


def _ruled(ink: np.ndarray, fewest: int = 3) -> np.ndarray:
    """Rows that belong to ruled lines: thin bands of rows that are over half ink and run from
    edge to edge, when there are at least ``fewest`` of them (a digit makes one or two, or
    thick ones when drawn big with a marker)."""
    margin = max(1, ink.shape[1] // 20)
    over_half = np.count_nonzero(ink, axis=1) > 0.5 * ink.shape[1]
    rows = over_half & ink[:, :margin].any(axis=1) & ink[:, -margin:].any(axis=1)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], rows.astype(np.int8), [0]])))
    starts, ends = edges[0::2], edges[1::2]
    thin = ends - starts <= max(3, ink.shape[0] // 50)
    ruled = np.zeros_like(rows)
    if np.count_nonzero(thin) >= fewest:
        for start, end in zip(starts[thin], ends[thin]):
            ruled[start:end] = True
    return ruled


class _Runs(NamedTuple):
    """Horizontal runs of ink in raster order: row, first column, column after the last, and the
    label (1..n) of the 8-connected piece each belongs to."""

    rows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    label: np.ndarray


def _ink_runs(mask: np.ndarray) -> _Runs:
    """Runs of a boolean mask, labelled by 8-connected component.

    Works on runs rather than pixels, with no Python loop: every pair of runs in neighbouring
    rows that touch (diagonals included) is found with two sorted searches, then the pairs are
    merged by repeated min-label propagation and pointer jumping (a handful of rounds, each a
    few array operations). Labels are numbered in raster order of each component's first pixel.
    """
    h, w = mask.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask
    # Each row's changes alternate: a run starts (0 -> 1), then ends (1 -> 0, exclusive).
    changes = np.flatnonzero(np.diff(padded, axis=1))
    rows, starts = np.divmod(changes[0::2], w + 1)
    ends = changes[1::2] - rows * (w + 1)
    # One sorted key per run: a row's runs never reach the next row's key range.
    stride = w + 2
    start_keys, end_keys = rows * stride + starts, rows * stride + ends
    # Run i touches run j of the row below when start_j <= end_i and start_i <= end_j.
    below = (rows + 1) * stride
    first = np.searchsorted(end_keys, below + starts, side="left")
    last = np.searchsorted(start_keys, below + ends, side="right")
    counts = np.maximum(last - first, 0)
    upper = np.repeat(np.arange(len(starts)), counts)
    lower = np.repeat(first, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    _, label = np.unique(_merge(len(starts), upper, lower), return_inverse=True)
    return _Runs(rows, starts, ends, label.reshape(-1) + 1)


def _paint(runs: _Runs, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An image of ``shape`` with each run's pixels set to its entry of ``values`` (0 elsewhere)."""
    image = np.zeros(shape, values.dtype)
    lengths = runs.ends - runs.starts
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    image.reshape(-1)[np.repeat(runs.rows * shape[1] + runs.starts, lengths) + offsets] = np.repeat(
        values, lengths
    )
    return image


def _connected_components(mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """8-connected components of a boolean mask: (labels, size of each label 1..n)."""
    runs = _ink_runs(mask)
    sizes = np.bincount(runs.label, weights=runs.ends - runs.starts)[1:].astype(int).tolist()
    return _paint(runs, runs.label.astype(np.int32), mask.shape), sizes


def _merge(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For nodes 0..n-1 joined by edges (a[k], b[k]): each node's smallest connected node."""
    root = np.arange(n)
    while True:
        low = np.minimum(root[a], root[b])
        hooked = root.copy()
        np.minimum.at(hooked, root[a], low)  # hook each edge's two roots onto the smaller one
        np.minimum.at(hooked, root[b], low)
        while True:  # pointer jumping: every node straight to its root
            jumped = hooked[hooked]
            if np.array_equal(jumped, hooked):
                break
            hooked = jumped
        if np.array_equal(hooked, root):
            return root
        root = hooked


MIN_CONTRAST = 16  # gray levels between paper and ink below which a 28x28 picture is blank
# Ink in a photo is at least a quarter of the gray range darker than the paper around it; what
# stands out less (a shadow across blank paper, grain, a crease) is not taken for a digit.
MIN_INK_CONTRAST = 64


def _border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def _background_is_bright(gray: np.ndarray) -> bool:
    """Is the picture's border (its background) brighter than the middle of its tonal range?

    The middle lies halfway between the darkest and the brightest pixel, so gray paper under
    dark ink counts as bright, and MNIST's black border as dark. A picture with almost no
    contrast is judged against mid-gray.
    """
    low, high = float(gray.min()), float(gray.max())
    middle = (low + high) / 2 if high - low >= MIN_CONTRAST else 127.5
    return float(np.median(_border(gray))) > middle


def _ink_bright(gray: np.ndarray) -> np.ndarray:
    """Make ink bright on a dark background, whatever the picture had."""
    return 255.0 - gray if _background_is_bright(gray) else gray


def _remove_background(gray: np.ndarray) -> np.ndarray:
    """Subtract an uneven background and keep only what is clearly ink, scaled to 0..255."""
    from PIL import Image

    # Paper tone and shadows change slowly: the 10th percentile of each cell of a
    # 4x4 grid, smoothly interpolated, is background wherever a cell is not all ink.
    h, w = gray.shape
    cells = _cell_percentiles(gray, 4 if min(h, w) >= 16 else 1, 10)
    background = np.asarray(Image.fromarray(cells, mode="F").resize((w, h), Image.BILINEAR))
    signal = np.clip(gray - background, 0, None)
    if signal.max() <= 0:
        return signal
    threshold = _otsu(signal)
    signal[signal < threshold * 0.5] = 0
    ink = signal[signal > 0]
    peak = _percentile_rows(ink.reshape(1, -1), 95)[0] if ink.size else 0.0
    if peak < MIN_INK_CONTRAST:  # paper grain, a shadow's edge, a crease: nothing written
        return np.zeros_like(signal)
    return np.clip(signal / peak * 255.0, 0, 255)


def _cell_percentiles(gray: np.ndarray, grid: int, q: float) -> np.ndarray:
    """The q-th percentile (linear interpolation) of each cell of a grid x grid split of ``gray``."""
    h, w = gray.shape
    if h % grid == 0 and w % grid == 0:  # equal cells: one partition call for all of them
        cells = gray.reshape(grid, h // grid, grid, w // grid).swapaxes(1, 2).reshape(grid * grid, -1)
        return _percentile_rows(cells, q).reshape(grid, grid).astype(np.float32)
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    return np.array(
        [
            [
                _percentile_rows(gray[ys[i] : ys[i + 1], xs[j] : xs[j + 1]].reshape(1, -1), q)[0]
                for j in range(grid)
            ]
            for i in range(grid)
        ],
        dtype=np.float32,
    )


def _percentile_rows(rows: np.ndarray, q: float) -> np.ndarray:
    """``np.percentile(rows, q, axis=1)`` by one partial sort (a fraction of the cost)."""
    position = q / 100 * (rows.shape[1] - 1)
    lo = int(position)
    hi = min(lo + 1, rows.shape[1] - 1)
    parted = np.partition(rows, [lo, hi], axis=1)
    return parted[:, lo] + (parted[:, hi] - parted[:, lo]) * (position - lo)


def _otsu(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of non-negative values, on a 64-bin histogram."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return low
    # Most pixels of a drawing are background, all equal to the lowest value: count them at
    # once and bin the rest (the same histogram, several times faster).
    above = values[values > low]
    index = np.minimum(((above - low) * (bins / (high - low))).astype(np.intp), bins - 1)
    hist = np.bincount(index, minlength=bins)
    hist[0] += values.size - above.size
    edges = np.linspace(low, high, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist)
    total = weight[-1]
    mean = np.cumsum(hist * centres)
    between = (mean[-1] * weight - mean * total) ** 2 / np.maximum(weight * (total - weight), 1)
    return float(centres[int(np.argmax(between))])


def _fit_and_centre(ink: np.ndarray, what: str) -> np.ndarray:
    from PIL import Image

    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    crop = _normalize_stroke(crop, scale)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    digit = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize(size, Image.LANCZOS))
    digit = np.clip(digit, 0, 255)
    if digit.sum() <= 0:  # a speck or a line so thin that nothing is left at 20x20
        raise NoDigitError(f"{what}: no digit found (the ink vanishes at MNIST's size)")
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
