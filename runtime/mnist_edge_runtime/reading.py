"""Read the digit in a gray picture: a 2-D array of pixel values -> 28x28 uint8 in MNIST form.

MNIST digits were size-normalized to fit a 20x20 box (keeping their aspect ratio) and centred in
28x28 by their centre of mass. A photo of a digit on paper is dark ink on a light, uneven
background at any size and position, so it goes through the same steps: polarity, background
removal, crop to the ink, scale to 20x20, centre by mass.

Polarity is read from every picture, whatever its size: where the border is brighter than the
ink, the picture is inverted. A 28x28 picture in MNIST form (ink within 20x20, centred by mass)
is taken as it is: bright ink on black (MNIST's own form) passes through untouched, dark ink on a
light background is inverted and its background level taken off. A 28x28 picture that is not
in MNIST form (a drawing shrunk to 28x28 by its owner, filling the frame) is then fitted and
centred like any other picture.

This module works on arrays and never decodes a file: ``decoding`` turns files and bytes into the
gray arrays read here, and imports this module (for the working size and the compositing rule);
nothing here imports ``decoding``. Pillow is used only to resample, imported when a picture needs
it. ``preprocess`` joins the two.

Every step gives the same pixels as the plain full-size computation it replaces (the tests and
``benchmarks/end_to_end.py`` compare the 28x28 output with an earlier version's): work is skipped
only where its result is known (an even background, no piece of ink dropped), and scaled values are
computed only inside the digit's box.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mnist_edge_runtime.errors import NoDigitError, RuntimeInputError

SIDE, BOX = 28, 20
WORKING_SIDE = 400  # photos are shrunk to this longest side before the digit is looked for
# MNIST centres each digit by its centre of mass: at most 0.52 pixels from the middle (14, 14)
# in all 70,000 images; a 28x28 picture further off than this was not made that way.
MAX_MASS_OFFSET = 2.0
# Ink for that test: JPEG's ringing around a stroke (quality 75) would otherwise widen the box
# of a 28x28 MNIST digit past 20 pixels; it stays under this level.
FORM_INK_LEVEL = 63
MIN_CONTRAST = 16  # gray levels between paper and ink below which a 28x28 picture is blank
# Ink in a photo is at least a quarter of the gray range darker than the paper around it; what
# stands out less (a shadow across blank paper, grain, a crease) is not taken for a digit.
MIN_INK_CONTRAST = 64
# A cell of the background grid whose 10th percentile lies more than half the gray range above the
# brightest paper's, and near the darkest ink of the other cells, is filled with ink (a blot, a
# filled shape), not paper in a shadow.
FILLED_CELL = 128
FILLED_SHARE = 0.85
# MNIST's stroke width at 28x28 (2 x area / boundary of the pixels over 127) is 2.2 / 2.8 / 3.9
# pixels at the 10th / 50th / 90th percentile of 5,000 training digits. Strokes well outside
# that range are brought to the median; those inside are left alone.
STROKE_WIDTH = (1.8, 2.8, 4.2)


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
    if array.dtype == np.uint8:
        return array  # always within 0..255
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise RuntimeInputError(f"{what}: contains NaN or infinite values")
        if array.max(initial=0) <= 1.0 and array.min(initial=0) >= 0.0:
            array = array * 255.0  # floats in [0, 1]
    if array.min(initial=0) < 0 or array.max(initial=0) > 255:
        raise RuntimeInputError(f"{what}: pixel values outside 0..255")
    return array


def array_to_gray(image: np.ndarray, what: str = "image") -> np.ndarray:
    """An (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA array -> a checked 2-D array
    (transparent pixels composited by ``flatten_alpha``)."""
    if image.ndim == 3 and image.shape[-1] in (1, 3, 4):
        rgb = check_array(image, what, ndim=3)
        if rgb.shape[-1] == 1:
            return rgb[..., 0]
        gray = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        if rgb.shape[-1] == 4:
            return flatten_alpha(gray, rgb[..., 3].astype(np.float32) / 255.0)
        return gray
    return check_array(image, what)


def flatten_alpha(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite over a background that contrasts with the opaque pixels: white behind dark ink
    (a canvas exported as black ink on transparent), black behind light ink."""
    opaque = alpha > 0.5
    ink_is_dark = not opaque.any() or opaque.all() or float(gray[opaque].mean()) < 128
    background = 255.0 if ink_is_dark else 0.0
    return (gray * alpha + background * (1.0 - alpha)).astype(np.float32)


def read_digit(image: np.ndarray, what: str = "image") -> np.ndarray:
    """A checked 2-D gray array (``check_array``) -> 28x28 uint8 in MNIST form.

    A 28x28 picture in MNIST form is taken as sized and centred: bright ink on black is only
    rounded to uint8; dark ink on a light background is inverted. One that is not (``in_mnist_form``)
    and anything larger or smaller is treated as a photo.
    Raises ``NoDigitError`` when there is no ink to read.
    """
    if image.shape == (SIDE, SIDE):
        return _small_to_mnist(image, what)
    found = _ink_signal(_ink_bright(_working_size(image)))
    if found is None:
        raise NoDigitError(f"{what}: no digit found (the picture is blank)")
    signal, peak, mask = found
    digit = _digit_mask(mask)
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    if not rows.size:
        raise NoDigitError(f"{what}: no digit found (the picture is blank)")
    box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    # The ink, scaled, only inside the digit's box; nothing outside the digit's pieces.
    crop = np.clip(signal[box] / peak * 255.0, 0, 255)
    crop *= digit[box]
    return _fit_and_centre(crop, what)


def _small_to_mnist(gray: np.ndarray, what: str) -> np.ndarray:
    if not _background_is_bright(gray):
        image = gray if gray.dtype == np.uint8 else np.round(gray).astype(np.uint8)
    else:
        ink = 255.0 - gray.astype(np.float32)
        floor = _median(_border(ink))
        top = float(ink.max())
        if top - floor < MIN_CONTRAST:
            raise NoDigitError(f"{what}: no digit found (the picture is blank)")
        image = np.round(np.clip((ink - floor) * (255.0 / (top - floor)), 0, 255)).astype(np.uint8)
    if in_mnist_form(image):
        return image
    # A drawing its owner shrank to 28x28 fills the frame, or sits off-centre: fitted like a photo.
    ink = image > FORM_INK_LEVEL
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32)
    return _fit_and_centre(crop, what)


def in_mnist_form(image: np.ndarray) -> bool:
    """Is a 28x28 picture (bright ink on black) sized and centred as MNIST's are: its ink (pixels
    over ``FORM_INK_LEVEL``) within a 20x20 box, and its centre of mass within
    ``MAX_MASS_OFFSET`` pixels of the middle? Every one of MNIST's 70,000 images is, saved as a
    JPEG too."""
    ink = image > FORM_INK_LEVEL
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not rows.size:
        return True  # blank or faint: nothing to fit
    if rows[-1] - rows[0] + 1 > BOX or cols[-1] - cols[0] + 1 > BOX:
        return False
    if image.dtype != np.uint8:
        cy, cx = _centre_of_mass(image.astype(np.float64))
    else:
        # Row and column sums in integers: the centre of mass from them is exactly the one the
        # float64 sums of ``_centre_of_mass`` give (every partial sum is an integer under 2**53).
        row_sums, col_sums = image.sum(axis=1, dtype=np.int64), image.sum(axis=0, dtype=np.int64)
        total = int(row_sums.sum())
        cy = int(np.arange(len(row_sums)) @ row_sums) / total
        cx = int(np.arange(len(col_sums)) @ col_sums) / total
    return max(abs(cy - SIDE / 2), abs(cx - SIDE / 2)) <= MAX_MASS_OFFSET


def _working_size(gray: np.ndarray, longest: int = WORKING_SIDE) -> np.ndarray:
    """As float32, big photos shrunk (box filter): the digit ends up 20 pixels tall, and the
    steps below scale with area."""
    h, w = gray.shape
    if max(h, w) <= longest:
        return np.asarray(gray, dtype=np.float32)
    from PIL import Image

    scale = longest / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if gray.dtype == np.uint8:  # Pillow widens 8-bit to float exactly, with no float copy here
        picture = Image.fromarray(np.ascontiguousarray(gray)).convert("F")
    else:
        picture = Image.fromarray(gray.astype(np.float32), mode="F")
    return np.asarray(picture.resize(size, Image.BOX))


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
    return _median(_border(gray)) > middle


def _median(values: np.ndarray) -> float:
    """``float(np.median(values))`` of a 1-D array: for an even count of integers, float32 or
    float64, the mean of the two middle values as numpy computes it (integers in float64, floats
    in their own precision), without most of its call's cost (a 28x28 picture's whole border)."""
    kind, size = values.dtype.kind, values.size
    if size % 2 or not (kind in "ui" or values.dtype in (np.float32, np.float64)):
        return float(np.median(values))
    a, b = np.sort(values)[size // 2 - 1 : size // 2 + 1]
    return (int(a) + int(b)) / 2 if kind in "ui" else float((a + b) / 2)


def _ink_bright(gray: np.ndarray) -> np.ndarray:
    """Make ink bright on a dark background, whatever the picture had; of a sheet of paper
    photographed on a darker desk, only the sheet (``_paper``)."""
    if _background_is_bright(gray):
        return 255.0 - gray
    paper = _paper(gray)
    return gray if paper is None else 255.0 - gray[paper]


# A sheet of paper photographed with the desk around it: the border is dark, yet what is brighter
# than the middle of the tonal range makes a box covering much of the picture whose edges, just
# inside it, are bright all along (a sheet's edges are paper; the edges of a digit's box are
# mostly background, and a filled blob's are bright but hold nothing dark inside), and which holds
# darker marks. The picture is then read inside that box, a little in from the paper's edges.
PAPER_AREA = 0.2  # of the picture
PAPER_EDGE = 0.95  # of each edge line bright
PAPER_INSET = 0.02  # of the box's height and width
PAPER_MIN_SIDE = 16  # pixels of the box, at working size


def _paper(gray: np.ndarray) -> tuple[slice, slice] | None:
    """Where the sheet of paper lies, if a picture with a dark border is one on a darker desk."""
    low, high = float(gray.min()), float(gray.max())
    if high - low < MIN_CONTRAST:
        return None
    bright = gray > (low + high) / 2
    rows, cols = np.flatnonzero(bright.any(axis=1)), np.flatnonzero(bright.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    if min(height, width) < PAPER_MIN_SIDE or height * width < PAPER_AREA * gray.size:
        return None
    dy, dx = max(1, round(PAPER_INSET * height)), max(1, round(PAPER_INSET * width))
    inside = slice(rows[0] + dy, rows[-1] + 1 - dy), slice(cols[0] + dx, cols[-1] + 1 - dx)
    sheet = bright[inside]
    edges = (sheet[0], sheet[-1], sheet[:, 0], sheet[:, -1])
    if min(float(edge.mean()) for edge in edges) < PAPER_EDGE or sheet.all():
        return None
    return inside


def _ink_signal(gray: np.ndarray) -> tuple[np.ndarray, np.float32, np.ndarray] | None:
    """Subtract an uneven background and keep only what is clearly ink: (the signal above the
    background, the 95th percentile ``peak`` of what is kept, the mask of kept pixels), or None
    where nothing stands out.

    The ink of a kept pixel is ``clip(signal / peak * 255, 0, 255)``, positive exactly where the
    mask is; elsewhere it is 0.
    """
    # Paper tone and shadows change slowly: the 10th percentile of each cell of a
    # 4x4 grid, smoothly interpolated, is background wherever a cell is not all ink.
    h, w = gray.shape
    grid = 4 if min(h, w) >= 16 else 1
    cells = _paper_only(gray, _cell_percentiles(gray, grid, 10), grid)
    if (cells == cells.flat[0]).all():
        # An even background (a drawing's): interpolation gives that value everywhere.
        background = np.float32(float(cells.flat[0]) + 0.0)
    else:
        from PIL import Image

        background = np.asarray(Image.fromarray(cells, mode="F").resize((w, h), Image.BILINEAR))
    # The background is a weighted mean of gray levels, so the difference stays under 255 (and
    # the clip with both bounds is numpy's fast one). Gray lies within 0..255 (``check_array``):
    # taking off a background of 0 and clipping would change nothing.
    even_zero = background.ndim == 0 and background == 0
    signal = gray if even_zero else np.clip(gray - background, 0, 255)
    if signal.max() <= 0:
        return None
    floor = _otsu(signal) * 0.5
    mask = signal >= floor  # what is kept; the rest counts as 0
    if not np.float32(floor) > 0:
        mask &= signal > 0
    ink = signal[mask]
    if not ink.size:
        return None
    peak = _percentile_rows(ink.reshape(1, -1), 95)[0]
    if peak < MIN_INK_CONTRAST:  # paper grain, a shadow's edge, a crease: nothing written
        return None
    # Scaling is monotonic: if the faintest kept value stays positive, every kept one does.
    if not (ink.min(keepdims=True) / peak * 255.0 > 0)[0]:
        mask = np.clip(signal * mask / peak * 255.0, 0, 255) > 0
    return signal, peak, mask


def _paper_only(gray: np.ndarray, cells: np.ndarray, grid: int) -> np.ndarray:
    """The cells' percentiles with those of cells filled with ink (a blot, a filled shape, a
    marker stroke wider than a cell) replaced by the median of the others.

    A filled cell's percentile is ink, not paper: taken for background, it would leave only the
    rim of a filled shape, a ring, to be read as a 0. A cell is deep when its percentile lies
    more than ``FILLED_CELL`` above the lowest (the brightest paper). In a drawing (a border of
    one exact tone: no light falls on it) a deep cell is filled. In a photo it may be paper in a
    deep shadow, so it is filled only when it is near the ink the other cells hold
    (``FILLED_SHARE`` of the way from their paper to their darkest ink): where they hold no ink
    there is nothing to be near, and ink in a shadow is darker than the shadow's paper.
    """
    low = cells.min()
    deep = cells - low > FILLED_CELL
    if not deep.any() or deep.all():
        return cells
    border = _border(gray)
    if (border == border[0]).all():
        filled = deep
    else:
        darkest = _cell_percentiles(gray, grid, 99)[~deep].max()
        filled = deep & (cells - low >= FILLED_SHARE * (darkest - low)) & (darkest - low > FILLED_CELL)
        if not filled.any():
            return cells
    cells = cells.copy()
    cells[filled] = np.median(cells[~filled])
    return cells


def _cell_percentiles(gray: np.ndarray, grid: int, q: float) -> np.ndarray:
    """The q-th percentile (linear interpolation) of each cell of a grid x grid split of ``gray``."""
    h, w = gray.shape
    if h % grid == 0 and w % grid == 0:  # equal cells: one partition call for all of them
        cells = gray.reshape(grid, h // grid, grid, w // grid).swapaxes(1, 2).reshape(grid * grid, -1)
        return _percentile_rows(cells, q).reshape(grid, grid).astype(np.float32)
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    # Cells of the same size (at most four sizes) go through one partition call together.
    same_size: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i in range(grid):
        for j in range(grid):
            same_size.setdefault((ys[i + 1] - ys[i], xs[j + 1] - xs[j]), []).append((i, j))
    percentiles = np.empty((grid, grid), np.float32)
    for cells in same_size.values():
        rows = np.stack([gray[ys[i] : ys[i + 1], xs[j] : xs[j + 1]].reshape(-1) for i, j in cells])
        for (i, j), value in zip(cells, _percentile_rows(rows, q)):
            percentiles[i, j] = value
    return percentiles


def _percentile_rows(rows: np.ndarray, q: float) -> np.ndarray:
    """``np.percentile(rows, q, axis=1)`` by one partial sort (a fraction of the cost).

    One partition point, the next value the minimum above it: numpy's partition around two
    points was measured ten times slower than around one (its vectorized selection takes one).
    A row whose two values fall among copies of its lowest or highest value (a drawing's blank
    background, its strokes' full black) takes that value unsorted: ties are numpy's slowest
    case to partition.
    """
    n = rows.shape[1]
    position = q / 100 * (n - 1)
    lo = int(position)
    hi = min(lo + 1, n - 1)
    low = rows.min(axis=1)
    at_low = _count(rows == low[:, None], axis=1) > hi
    if at_low.all():
        return low + (low - low) * (position - lo)
    high = rows.max(axis=1)
    at_high = ~at_low & (_count(rows == high[:, None], axis=1) >= n - lo)
    low[at_high] = high[at_high]
    high = low.copy()
    rest = ~(at_low | at_high)
    if rest.any():
        parted = np.partition(rows[rest] if not rest.all() else rows, lo, axis=1)
        low[rest] = parted[:, lo]
        high[rest] = parted[:, lo + 1 :].min(axis=1) if hi > lo else parted[:, lo]
    return low + (high - low) * (position - lo)


def _count(mask: np.ndarray, axis: int) -> np.ndarray:
    """``np.count_nonzero(mask, axis)`` of a 2-D boolean array, in half the time."""
    return mask.view(np.uint8).sum(axis=axis, dtype=np.int32)


def _histogram(index: np.ndarray, bins: int) -> np.ndarray:
    """``np.bincount(index, minlength=bins)`` of a 1-D uint8 array with values under ``bins``."""
    if index.size < 1 << 15:
        return np.bincount(index, minlength=bins)
    # Neighbours counted in pairs, as one 16-bit value: half as many increments, spread over many
    # more counters (counting is slowest where a few counters take every increment, as a photo's
    # blank paper makes them). Each pair's two values are its high and its low byte.
    pairs = np.bincount(index[: index.size // 2 * 2].view(np.uint16), minlength=1 << 16).reshape(256, 256)
    counts = pairs.sum(axis=0) + pairs.sum(axis=1)
    if index.size % 2:
        counts[index[-1]] += 1
    return counts[:bins]


def _otsu(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of non-negative values, on a histogram of ``bins`` (at most 256) bins."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return low
    # Most pixels of a drawing are background, all equal to the lowest value: count them at
    # once and bin the rest (the same histogram, several times faster). In a photo most are
    # above it: binning all of them skips the copy.
    above = values > low
    part = values[above] if 4 * np.count_nonzero(above) < 3 * values.size else values.reshape(-1)
    # (part - low) * scale lies in [0, bins]: truncating it to 8 bits is truncating it to any width.
    index = np.minimum(((part - low) * (bins / (high - low))).astype(np.uint8), bins - 1)
    hist = _histogram(index, bins)
    hist[0] += values.size - part.size
    edges = np.linspace(low, high, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist)
    total = weight[-1]
    mean = np.cumsum(hist * centres)
    between = (mean[-1] * weight - mean * total) ** 2 / np.maximum(weight * (total - weight), 1)
    return float(centres[int(np.argmax(between))])


def _digit_mask(ink: np.ndarray) -> np.ndarray:
    """Keep the digit's strokes; drop ruled lines, specks and things at the picture's edge.

    Three or more thin parallel rows (or columns) of ink from edge to edge are ruled or graph-paper
    lines; one or two are strokes of a digit drawn as big as the canvas (a 7's bar, a 4's stem).
    Of the connected pieces left, one that lies along the border (a paper edge, a table, a
    shadow) is dropped unless nothing else is left. One that touches the border only briefly is
    a stroke running off the edge of a big drawing: it is kept when its box lies mostly within
    the box of the digit's other pieces, or when there are no others. Pieces under 5% of the
    largest are specks. Returns ``ink`` itself when all of it is kept.
    """
    ruled = _ruled(ink)
    if ruled.any():
        ink = ink.copy()
        ink[ruled, :] = False
    ruled = _ruled(ink.T)
    if ruled.any():
        ink = ink.copy()
        ink[:, ruled] = False
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
            if brief.any():
                keep |= brief & (sizes >= 0.05 * largest) & (_share_inside(runs, keep, len(sizes)) >= 0.5)
        else:
            keep = brief & (sizes >= 0.05 * largest)
    else:  # everything lies along the border: keep looking at all of it
        keep = sizes >= 0.05 * sizes[1:].max()
    keep[0] = False
    if keep[1:].all():
        return ink
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
    edge to edge, when there are at least ``fewest`` of them (a digit makes one or two, or thick
    ones when drawn big with a marker) and at least ``fewest`` of them stand out, with a quarter
    of the width less ink just beyond them on both sides (the ragged edge of a blot as tall or
    wide as the picture makes thin bands too, with as much ink beside them; a line a digit's
    stroke runs along stands out less, and is dropped with the others)."""
    counts = _count(ink, axis=1)
    over_half = counts > 0.5 * ink.shape[1]
    if np.count_nonzero(over_half) < fewest:  # not enough rows for that many bands
        return np.zeros(ink.shape[0], bool)
    margin = max(1, ink.shape[1] // 20)
    rows = over_half & ink[:, :margin].any(axis=1) & ink[:, -margin:].any(axis=1)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], rows.astype(np.int8), [0]])))
    starts, ends = edges[0::2], edges[1::2]
    thin = ends - starts <= max(3, ink.shape[0] // 50)
    ruled = np.zeros_like(rows)
    if np.count_nonzero(thin) < fewest:
        return ruled
    last = len(counts) - 1
    beside = [
        max(counts[max(start - 2 * (end - start), 0)], counts[min(end - 1 + 2 * (end - start), last)])
        for start, end in zip(starts[thin], ends[thin])
    ]
    lines = counts[starts[thin]] - np.array(beside)
    if np.count_nonzero(lines >= 0.25 * ink.shape[1]) >= fewest:
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
    padded = np.zeros((h, w + 2), bool)
    padded[:, 1:-1] = mask
    # Each row's changes alternate: a run starts (0 -> 1), then ends (1 -> 0, exclusive).
    changes = np.flatnonzero(padded[:, 1:] != padded[:, :-1])
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
    # Each run's root is the smallest run of its piece, so the roots are the runs that are their
    # own root, and a piece's label is its root's rank among them (``np.unique``'s inverse, + 1,
    # without its sort).
    root = _merge(len(starts), upper, lower)
    label = np.cumsum(root == np.arange(len(root)))[root]
    return _Runs(rows, starts, ends, label)


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
        root_a, root_b = root[a], root[b]
        low = np.minimum(root_a, root_b)
        hooked = root.copy()
        np.minimum.at(hooked, root_a, low)  # hook each edge's two roots onto the smaller one
        np.minimum.at(hooked, root_b, low)
        while True:  # pointer jumping: every node straight to its root
            jumped = hooked[hooked]
            if not (jumped != hooked).any():  # np.array_equal's checks cost more than this
                break
            hooked = jumped
        if not (hooked != root).any():
            return root
        root = hooked


def _fit_and_centre(crop: np.ndarray, what: str) -> np.ndarray:
    """The ink cropped to its box -> scaled to fit 20x20 and centred by mass in 28x28."""
    from PIL import Image

    h, w = crop.shape
    scale = BOX / max(h, w)
    crop = _normalize_stroke(crop, scale)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    crop = np.ascontiguousarray(crop, dtype=np.float32)
    digit = np.asarray(Image.fromarray(crop, mode="F").resize(size, Image.LANCZOS))
    digit = np.clip(digit, 0, 255)
    if digit.sum() <= 0:  # a speck or a line so thin that nothing is left at 20x20
        raise NoDigitError(f"{what}: no digit found (the ink vanishes at MNIST's size)")
    canvas = np.zeros((SIDE, SIDE), np.float32)
    cy, cx = _centre_of_mass(digit)
    top = min(max(round(SIDE / 2 - cy), 0), SIDE - digit.shape[0])
    left = min(max(round(SIDE / 2 - cx), 0), SIDE - digit.shape[1])
    canvas[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    return np.round(canvas).astype(np.uint8)


def _stroke_width(mask: np.ndarray) -> float:
    inner = mask.copy()
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return 2 * float(np.count_nonzero(mask)) / max(float(np.count_nonzero(mask & ~inner)), 1.0)


def _normalize_stroke(crop: np.ndarray, scale: float) -> np.ndarray:
    """Thin a marker's strokes or thicken a fine pen's, so they end up as wide as MNIST's."""
    # The ink over half its peak, with a margin of one blank pixel (ink is never negative).
    h, w = crop.shape
    mask = np.zeros((h + 2, w + 2), bool)
    mask[1:-1, 1:-1] = crop > 0.5 * max(crop.max(), 0)
    width = _stroke_width(mask)
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
    """Dilation (np.maximum) or erosion (np.minimum) with a square of side 2 * radius + 1:
    the extreme over a window along the columns, then along the rows (the pixels beyond the edge
    repeat it)."""
    result = image
    for axis in (0, 1):
        padded = np.pad(result, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        result = _window_extreme(padded, 2 * radius + 1, axis, op)
    return result


def _window_extreme(values: np.ndarray, width: int, axis: int, op) -> np.ndarray:
    """``op`` over each run of ``width`` values along ``axis`` (the result ``width - 1`` shorter).

    Windows doubling in length, then two overlapping ones: a handful of array operations for any
    width, rather than one per pixel of it (the extreme of overlapping windows is exact).
    """

    def part(array: np.ndarray, start: int, stop: int | None) -> np.ndarray:
        return array[start:stop] if axis == 0 else array[:, start:stop]

    span, extreme = 1, values
    while 2 * span <= width:
        extreme = op(part(extreme, 0, -span), part(extreme, span, None))
        span *= 2
    size = values.shape[axis] - width + 1
    return op(part(extreme, 0, size), part(extreme, width - span, width - span + size))


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    total = image.sum()
    ys, xs = np.indices(image.shape)
    return float((ys * image).sum() / total), float((xs * image).sum() / total)
