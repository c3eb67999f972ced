"""Handwriting beyond MNIST: digits and non-digits drawn with a pen, read as the runtime reads them.

MNIST is one population of writers (American census staff and students, 1990s): it has few
1s with a flag, 7s with a crossbar, open 4s or looped 2s, and no letters or shapes at all. This
module draws more: digits and letters from the outline fonts matplotlib ships, thinned to their
centre line and redrawn with a round pen, digits drawn as procedural pen strokes in two hands, and
things that are not digits (letters, shapes, scribbles, fragments of digits, two digits side by
side). Every picture is then read by the runtime's own ``read_digit``, so a model trained on it sees
exactly what a device feeds it. Nothing else is data: no font or glyph collection is installed
or read beyond matplotlib's own copy (``matplotlib.get_data_path()``).

Families are font families (each with its regular, bold and italic files) and the two procedural
hands. ``TRAIN_FAMILIES`` and ``HELD_OUT_FAMILIES`` split them so that a benchmark can measure
styles no training picture had; docs/input-forms.md ("Handwriting beyond MNIST") says why this
split. Pictures depend only on (count, seed, families) and the matplotlib (FreeType) and Pillow
versions: glyphs are rendered unhinted, and coordinates are rounded to 1/16 pixel before Pillow
draws them so that the last bits of a sine on one CPU or another change nothing.

Needs numpy, Pillow and matplotlib (for the font files and FreeType); never TensorFlow.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from mnist_edge_runtime.errors import NoDigitError
from mnist_edge_runtime.reading import read_digit

# Font families: their files in matplotlib's fonts/ttf folder.
# Font families: their files in matplotlib's fonts/ttf folder, upright and italic. Bold files
# are left out: thinning erases a branch shorter than the stroke is thick (a bold 4 loses the stem
# below its bar), and the pen's random width gives every weight anyway.
FONT_FAMILIES: dict[str, tuple[str, ...]] = {
    "DejaVu Sans": ("DejaVuSans.ttf", "DejaVuSans-Oblique.ttf"),
    "DejaVu Serif": ("DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf"),
    "STIX General": ("STIXGeneral.ttf", "STIXGeneralItalic.ttf"),
    "Computer Modern Roman": ("cmr10.ttf", "cmti10.ttf"),
    "Computer Modern Typewriter": ("cmtt10.ttf",),
    "DejaVu Sans Mono": ("DejaVuSansMono.ttf", "DejaVuSansMono-Oblique.ttf"),
    "Computer Modern Sans": ("cmss10.ttf",),
    "Computer Modern Math Italic": ("cmmi10.ttf",),  # old-style figures
}
# Procedural pen strokes: "print" builds digits from straight lines and elliptical arcs,
# "cursive" from smooth curves through key points, with looser proportions.
STROKE_HANDS: dict[str, str] = {"Pen strokes (print)": "print", "Pen strokes (cursive)": "cursive"}

TRAIN_FAMILIES: tuple[str, ...] = (
    "DejaVu Sans",
    "DejaVu Serif",
    "STIX General",
    "Computer Modern Roman",
    "Computer Modern Typewriter",
    "Pen strokes (print)",
)
HELD_OUT_FAMILIES: tuple[str, ...] = (
    "DejaVu Sans Mono",
    "Computer Modern Sans",
    "Computer Modern Math Italic",
    "Pen strokes (cursive)",
)

# Letters a person may read as a digit when written alone (0: O o D Q; 1: I l i j J; 2: Z z;
# 5: S s; 6: b G; 8: B; 9: g q). They are never drawn as non-digits: a model taught to doubt
# them would doubt the digits they resemble.
DIGIT_LIKE_LETTERS = "OoDQIlijJZzSsBbGgq"
LETTERS = "".join(c for c in string.ascii_letters if c not in DIGIT_LIKE_LETTERS)

# Procedural digit variants, the same names in both hands: the shapes MNIST has few of.
VARIANTS: dict[int, tuple[str, ...]] = {
    0: ("oval",),
    1: ("stroke", "flag", "flag and base"),
    2: ("plain", "loop"),
    3: ("round", "flat top"),
    4: ("closed", "open"),
    5: ("plain",),
    6: ("curved stem", "straight stem", "open loop"),
    7: ("plain", "crossbar", "curved stem"),
    8: ("two loops", "one stroke"),
    9: ("straight stem", "curved stem"),
}
FLAGGED_ONES: tuple[tuple[int, str], ...] = ((1, "flag"), (1, "flag and base"))

# Shapes that are not digits. A lone circle or oval is left out: written alone it is a 0.
SHAPES = (
    "square",
    "triangle",
    "star",
    "heart",
    "circle with a cross",
    "smiley",
    "arrow",
    "plus",
    "hash",
    "check mark",
    "zigzag",
)
# What render_non_digits draws, and how often (letters only where a font family is given).
NON_DIGIT_KINDS: dict[str, float] = {
    "letter": 0.40,
    "shape": 0.30,
    "scribble": 0.10,
    "fragment": 0.10,
    "two digits": 0.10,
}

PAGE_SIDE, PAGE_PEN = 280, 18.0  # the page's canvas and pen
PEN_RANGE = (8.0, 30.0)  # pen widths on the page's 280-pixel canvas, for training pictures
SIDE = 128  # training pictures are drawn at this size (a multiple of 4: the reading's fast path)
SUPERSAMPLE = 2  # drawn at twice the size and shrunk: edges anti-aliased, as a browser draws them
MAX_PEN_SHARE = 0.18  # the pen at most this share of the drawing's height (MNIST's is about 0.14)
GLYPH_EM = 128  # font size (pixels per em) at which glyphs are rendered and thinned
SPACING = 0.03  # longest step along a stroke, in drawing heights (the elastic field bends steps)


class Drawing(NamedTuple):
    """One picture as a person draws it: dark ink on a white square canvas."""

    image: np.ndarray  # (side, side) uint8
    label: int  # 0-9, or -1 for something that is not a digit
    family: str
    kind: str  # "digit", or one of NON_DIGIT_KINDS
    variant: str  # the procedural variant, the letter, the shape...


# ---------------------------------------------------------------------------------------------
# Public API


def render_digits(count: int, seed: int, families: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``count`` digits drawn with a pen in ``families``, read by the runtime: (count, 28, 28) uint8
    MNIST-form images (bright ink on black) and their int64 labels 0-9.

    Each is drawn on a 128-pixel canvas with a pen of 8-30 pixels on the page's scale, slanted,
    rotated, stretched and elastically distorted, then read by ``read_digit``; a picture it
    cannot read is dropped and another drawn in its place.
    """
    _check(count, families)
    rng = np.random.default_rng(seed)
    images, labels = _read_all(_digit_drawings(rng, families, SIDE, None), count)
    return images, np.array(labels, np.int64)


def render_non_digits(count: int, seed: int, families: tuple[str, ...]) -> np.ndarray:
    """``count`` pictures of things that are not digits, drawn and read as ``render_digits``
    draws and reads digits: (count, 28, 28) uint8.

    Letters of the font families among ``families`` (none of ``DIGIT_LIKE_LETTERS``), shapes
    (``SHAPES``), scribbles, fragments of digits (20-40% of their strokes' length, never of a 1,
    a line, a shallow arc or a closed loop: those read as 1 and 0) and two digits side by side, mixed as
    ``NON_DIGIT_KINDS`` says.
    """
    _check(count, families)
    rng = np.random.default_rng(seed)
    images, _ = _read_all(_non_digit_drawings(rng, families, SIDE, None), count)
    return images


def draw_digits(
    count: int,
    seed: int,
    families: tuple[str, ...],
    side: int = PAGE_SIDE,
    pen: float | None = PAGE_PEN,
    variants: tuple[tuple[int, str], ...] | None = None,
) -> list[Drawing]:
    """Digits as drawn on a canvas of ``side`` pixels with a round pen ``pen`` pixels wide (None:
    8-30 pixels on the page's scale), before any reading. ``variants`` keeps only the procedural
    (digit, variant) pairs named, e.g. ``FLAGGED_ONES`` (then only the pen-stroke hands among
    ``families`` draw)."""
    _check(count, families)
    if variants is not None:
        unknown = [v for v in variants if v not in _PRINT]
        if unknown or not variants:
            raise ValueError(f"no procedural variants {unknown or variants}; known: {sorted(_PRINT)}")
        families = tuple(f for f in families if f in STROKE_HANDS)
        if not families:
            raise ValueError("variants are drawn by the pen-stroke hands only; none is among the families")
    rng = np.random.default_rng(seed)
    drawings = _digit_drawings(rng, families, side, pen, variants)
    return [next(drawings) for _ in range(count)]


def draw_non_digits(
    count: int,
    seed: int,
    families: tuple[str, ...],
    side: int = PAGE_SIDE,
    pen: float | None = PAGE_PEN,
    kinds: tuple[str, ...] | None = None,
) -> list[Drawing]:
    """Non-digits as ``draw_digits`` draws digits; ``kinds`` keeps only those kinds."""
    _check(count, families)
    rng = np.random.default_rng(seed)
    drawings = _non_digit_drawings(rng, families, side, pen, kinds)
    return [next(drawings) for _ in range(count)]


def font_dir() -> Path:
    """matplotlib's own font folder (the only fonts used)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


# ---------------------------------------------------------------------------------------------
# Sampling


def _check(count: int, families: tuple[str, ...]) -> None:
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if not families:
        raise ValueError("no families given")
    unknown = [f for f in families if f not in FONT_FAMILIES and f not in STROKE_HANDS]
    if unknown:
        known = ", ".join([*FONT_FAMILIES, *STROKE_HANDS])
        raise ValueError(f"unknown families {unknown}; known: {known}")


def _read_all(drawings: Iterator[Drawing], count: int) -> tuple[np.ndarray, list[int]]:
    images, labels = np.zeros((count, 28, 28), np.uint8), []
    tries = 0
    while len(labels) < count:
        drawing = next(drawings)
        tries += 1
        if tries > 10 * count + 100:  # never expected: every drawing has ink well inside its canvas
            raise RuntimeError("the runtime finds no digit in most drawings")
        try:
            images[len(labels)] = read_digit(drawing.image)
        except NoDigitError:
            continue
        labels.append(drawing.label)
    return images, labels


def _split(families: tuple[str, ...]) -> tuple[list[str], list[str]]:
    fonts = [f for f in dict.fromkeys(families) if f in FONT_FAMILIES]
    hands = [f for f in dict.fromkeys(families) if f in STROKE_HANDS]
    return fonts, hands


def _pick_family(rng: np.random.Generator, fonts: list[str], hands: list[str]) -> str:
    """Fonts and pen-stroke hands half the pictures each when both are given: the strokes carry
    the variants MNIST lacks, the fonts the variety of styles."""
    group = fonts if not hands else hands if not fonts else (hands if rng.random() < 0.5 else fonts)
    return group[int(rng.integers(len(group)))]


def _digit_strokes(
    rng: np.random.Generator, family: str, variants: tuple[tuple[int, str], ...] | None = None
) -> tuple[list[np.ndarray], int, str]:
    """Strokes (unit size, centred), label and variant of one digit in ``family``."""
    if family in FONT_FAMILIES:
        files = FONT_FAMILIES[family]
        digit = int(rng.integers(10))
        file = files[int(rng.integers(len(files)))]
        return list(_glyph(file, str(digit))), digit, file
    if variants is None:  # every digit equally often, then every variant of it
        digit = int(rng.integers(10))
        variant = VARIANTS[digit][int(rng.integers(len(VARIANTS[digit])))]
    else:
        digit, variant = variants[int(rng.integers(len(variants)))]
    hand = STROKE_HANDS[family]
    build = _PRINT if hand == "print" else _CURSIVE
    return (
        _normalized(build[digit, variant](_Jitter(rng, 0.02 if hand == "print" else 0.035))),
        digit,
        variant,
    )


def _digit_drawings(
    rng: np.random.Generator,
    families: tuple[str, ...],
    side: int,
    pen: float | None,
    variants: tuple[tuple[int, str], ...] | None = None,
) -> Iterator[Drawing]:
    fonts, hands = _split(families)
    while True:
        family = _pick_family(rng, fonts, hands)
        strokes, label, variant = _digit_strokes(rng, family, variants)
        yield Drawing(_pen_drawing(rng, strokes, side, pen), label, family, "digit", variant)


def _non_digit_drawings(
    rng: np.random.Generator,
    families: tuple[str, ...],
    side: int,
    pen: float | None,
    kinds: tuple[str, ...] | None = None,
) -> Iterator[Drawing]:
    fonts, hands = _split(families)
    names = [k for k in NON_DIGIT_KINDS if (kinds is None or k in kinds) and (k != "letter" or fonts)]
    if not names:
        raise ValueError(f"no kind of non-digit to draw among {kinds} with families {families}")
    weights = np.array([NON_DIGIT_KINDS[k] for k in names])
    weights /= weights.sum()
    while True:
        kind = names[int(rng.choice(len(names), p=weights))]
        aspect = 0.25
        if kind == "letter":
            family = fonts[int(rng.integers(len(fonts)))]
            files = FONT_FAMILIES[family]
            file = files[int(rng.integers(len(files)))]
            variant = LETTERS[int(rng.integers(len(LETTERS)))]
            strokes = list(_glyph(file, variant))
        elif kind == "shape":
            family, variant = "shapes", SHAPES[int(rng.integers(len(SHAPES)))]
            strokes = _normalized(_shape(_Jitter(rng, 0.02), variant))
            aspect = 0.1  # a square stretched far is an oval, a 0
        elif kind == "scribble":
            family, variant = "scribbles", "scribble"
            strokes = _normalized(_scribble(rng))
        elif kind == "fragment":
            family = _pick_family(rng, fonts, hands)
            strokes, variant = _fragment(rng, family)
        else:  # two digits side by side, in one hand
            family = _pick_family(rng, fonts, hands)
            first, a, _ = _digit_strokes(rng, family)
            second, b, _ = _digit_strokes(rng, family)
            variant = f"{a}{b}"
            strokes = _side_by_side(rng, first, second)
            aspect = 0.1
        yield Drawing(_pen_drawing(rng, strokes, side, pen, aspect=aspect), -1, family, kind, variant)


def _fragment(rng: np.random.Generator, family: str) -> tuple[list[np.ndarray], str]:
    """20-40% of a digit's strokes by length, in one run, that reads as neither a 1 or a 7 (a
    line, a shallow arc, a straight stroke with a hook or a bar) nor a 0 (a closed loop). Never a
    piece of a 1: every piece of it is a 1 or a dash."""
    while True:
        strokes, digit, _ = _digit_strokes(rng, family)
        if digit == 1:
            continue
        for _ in range(4):
            piece = _window(strokes, rng.uniform(0.2, 0.4), rng.random())
            if piece and not _line_like(piece) and not _closed(piece) and _straightest(piece) < 0.6:
                return _normalized(piece), f"part of {digit}"


def _window(strokes: list[np.ndarray], share: float, where: float) -> list[np.ndarray]:
    """The part of the strokes, taken end to end, from ``where`` of the way along for ``share``
    of their total length."""
    resampled = [_resampled(s) for s in strokes]
    lengths = [_arc_length(s) for s in resampled]
    total = float(sum(along[-1] for along in lengths))
    start = where * (1 - share) * total
    stop = start + share * total
    pieces, offset = [], 0.0
    for stroke, along in zip(resampled, lengths, strict=True):
        keep = (along + offset >= start) & (along + offset <= stop)
        if np.count_nonzero(keep) >= 2:
            pieces.append(stroke[keep])
        offset += float(along[-1])
    return pieces


def _line_like(strokes: list[np.ndarray]) -> bool:
    points = np.concatenate(strokes)
    spread = np.linalg.eigvalsh(np.cov(points.T))
    return bool(spread[0] <= 0.1 * max(spread[1], 1e-12))  # thinner than about a third of its length


def _straightest(strokes: list[np.ndarray]) -> float:
    """The longest straight run (its direction within 20 degrees of where it started) as a share
    of the longer side of the box around the strokes: near 1 for a stem with a hook or a bar."""
    longest = 0.0
    for stroke in strokes:
        steps = np.diff(_resampled(stroke), axis=0)
        length = np.hypot(*steps.T)
        heading = np.arctan2(steps[:, 1], steps[:, 0])
        for i in range(len(steps)):
            off = np.abs((heading[i:] - heading[i] + np.pi) % (2 * np.pi) - np.pi) > np.radians(20)
            end = i + (int(np.argmax(off)) if off.any() else len(off))
            longest = max(longest, float(length[i:end].sum()))
    points = np.concatenate(strokes)
    return longest / max(float(np.ptp(points, axis=0).max()), 1e-9)


def _closed(strokes: list[np.ndarray]) -> bool:
    longest = max(strokes, key=lambda s: float(_arc_length(s)[-1]))
    extent = float(np.ptp(longest, axis=0).max())
    return bool(np.hypot(*(longest[0] - longest[-1])) < 0.25 * extent)


def _side_by_side(
    rng: np.random.Generator, first: list[np.ndarray], second: list[np.ndarray]
) -> list[np.ndarray]:
    gap = rng.uniform(0.1, 0.35)
    right_of_first = max(float(s[:, 0].max()) for s in first)
    left_of_second = min(float(s[:, 0].min()) for s in second)
    shift = np.array([right_of_first - left_of_second + gap, rng.normal(0, 0.05)])
    return _normalized([*first, *(s + shift for s in second)])


# ---------------------------------------------------------------------------------------------
# The pen


def _pen_drawing(
    rng: np.random.Generator,
    strokes: list[np.ndarray],
    side: int,
    pen: float | None,
    aspect: float = 0.25,
) -> np.ndarray:
    """Strokes (unit size, centred) posed at random and drawn dark on a white ``side`` canvas."""
    from PIL import Image, ImageDraw

    points = [_resampled(s) for s in strokes]
    points = _posed(rng, points, aspect)
    lows = np.min([p.min(axis=0) for p in points], axis=0)
    highs = np.max([p.max(axis=0) for p in points], axis=0)
    extent = highs - lows
    height = rng.uniform(0.4, 0.88) * side
    scale = height / max(float(extent.max()), 1e-6)
    if pen is None:
        top = min(PEN_RANGE[1] * side / PAGE_SIDE, MAX_PEN_SHARE * height)
        pen = rng.uniform(min(PEN_RANGE[0] * side / PAGE_SIDE, top), top)
    margin = pen / 2 + 2
    room = np.maximum(side - 2 * margin - extent * scale, 0)
    origin = margin + rng.uniform(0, 1, 2) * room - lows * scale
    big = SUPERSAMPLE * side
    canvas = Image.new("L", (big, big), 255)
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(pen * SUPERSAMPLE))
    r = width / 2
    for stroke in points:
        # 1/16 pixel: a last-bit difference in a sine between CPUs never moves a point Pillow draws.
        xy = np.round((stroke * scale + origin) * SUPERSAMPLE * 16) / 16
        if len(xy) > 1:
            draw.line(xy.reshape(-1).tolist(), fill=0, width=width)
        # The pen is round: a disc at both ends and at every corner. Along a curve the steps
        # turn by a few degrees and their square ends overlap (Pillow's round joints, drawn in
        # Python at every point, would cost more than the rest of the picture).
        for x, y in xy[_round_points(xy)].tolist():
            draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
    return np.asarray(canvas.reduce(SUPERSAMPLE))


def _round_points(xy: np.ndarray, corner: float = 0.26) -> np.ndarray:
    """Indices of the ends of a path and of its points where it turns by more than ``corner``
    radians (15 degrees)."""
    steps = np.diff(xy, axis=0)
    heading = np.arctan2(steps[:, 1], steps[:, 0])
    turn = np.abs((np.diff(heading) + np.pi) % (2 * np.pi) - np.pi)
    return np.concatenate([[0], 1 + np.flatnonzero(turn > corner), [len(xy) - 1]])


def _posed(rng: np.random.Generator, strokes: list[np.ndarray], aspect: float) -> list[np.ndarray]:
    """Elastic distortion (a smooth random field: three waves per axis), then stretch, slant
    (shear up to 20 degrees) and rotation (up to 10 degrees)."""
    waves = rng.normal(0, 3.5, (2, 3, 2))  # wave vectors, radians per drawing height
    phases = rng.uniform(0, 2 * np.pi, (2, 3))
    amplitude = rng.uniform(0, 0.035)
    stretch = math.exp(rng.uniform(-aspect, aspect))
    shear = math.tan(math.radians(rng.uniform(-20, 20)))
    turn = math.radians(rng.uniform(-10, 10))
    cos, sin = math.cos(turn), math.sin(turn)
    affine = (
        np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, -shear], [0.0, 1.0]]) @ np.diag([stretch, 1.0])
    )
    posed = []
    for p in strokes:
        shift = np.stack([np.sin(p @ waves[a].T + phases[a]).sum(axis=1) for a in (0, 1)], axis=1)
        posed.append((p + amplitude / math.sqrt(3) * shift) @ affine.T)
    return posed


def _arc_length(stroke: np.ndarray) -> np.ndarray:
    steps = np.hypot(*np.diff(stroke, axis=0).T) if len(stroke) > 1 else np.zeros(0)
    return np.concatenate([[0.0], np.cumsum(steps)])


def _resampled(stroke: np.ndarray, spacing: float = SPACING) -> np.ndarray:
    """Points along the stroke at most ``spacing`` apart (its own points kept)."""
    if len(stroke) < 2:
        return stroke
    along = _arc_length(stroke)
    if along[-1] <= 0:
        return stroke[:1]
    steps = np.maximum(np.ceil(np.diff(along) / spacing).astype(int), 1)
    segment = np.repeat(np.arange(len(steps)), steps)
    share = (np.arange(steps.sum()) - np.repeat(np.cumsum(steps) - steps, steps)) / steps[segment]
    between = stroke[segment] + share[:, None] * (stroke[segment + 1] - stroke[segment])
    return np.concatenate([between, stroke[-1:]])


def _normalized(strokes: list[np.ndarray]) -> list[np.ndarray]:
    """Centred on the box around all strokes, its longer side 1."""
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    size = max(float((high - low).max()), 1e-6)
    return [(np.asarray(s, float) - (low + high) / 2) / size for s in strokes]


# ---------------------------------------------------------------------------------------------
# Font glyphs: rendered, thinned to their centre line, traced into strokes

_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


@cache
def _glyph(file: str, char: str) -> tuple[np.ndarray, ...]:
    """The centre lines of one glyph as strokes (x, y) (unit size, centred), traced once."""
    ink = _glyph_ink(file, char)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    skeleton = _cleaned(_thinned(ink))
    width = np.count_nonzero(ink) / max(np.count_nonzero(skeleton), 1)
    strokes = _traced(skeleton, spur=0.8 * width)
    h, w = ink.shape
    centre, size = np.array([(w - 1) / 2, (h - 1) / 2]), max(h, w)
    return tuple((_smoothed(s) - centre) / size for s in strokes)


def _glyph_ink(file: str, char: str) -> np.ndarray:
    from matplotlib import ft2font

    path = font_dir() / file
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in matplotlib's fonts")
    font = ft2font.FT2Font(str(path))
    font.set_size(GLYPH_EM, 72)  # 72 dpi: one point is one pixel
    flags = ft2font.LoadFlags.NO_HINTING if hasattr(ft2font, "LoadFlags") else ft2font.LOAD_NO_HINTING
    font.set_text(char, 0.0, flags=flags)
    font.draw_glyphs_to_bitmap(antialiased=True)
    ink = np.asarray(font.get_image()) >= 128
    if not ink.any():
        raise ValueError(f"{file} has no glyph for {char!r}")
    return ink


def _thinned(ink: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning (two sub-iterations per pass, all pixels at once)."""
    image = np.pad(ink, 1).astype(np.uint8)
    while True:
        changed = False
        for step in (0, 1):
            c = image[1:-1, 1:-1]
            p2, p3, p4 = image[:-2, 1:-1], image[:-2, 2:], image[1:-1, 2:]
            p5, p6, p7 = image[2:, 2:], image[2:, 1:-1], image[2:, :-2]
            p8, p9 = image[1:-1, :-2], image[:-2, :-2]
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            neighbours = p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9
            transitions = sum((ring[i] == 0) & (ring[i + 1] == 1) for i in range(8))
            if step == 0:
                first, second = p2 * p4 * p6, p4 * p6 * p8
            else:
                first, second = p2 * p4 * p8, p2 * p6 * p8
            remove = (c == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1)
            remove &= (first == 0) & (second == 0)
            if remove.any():
                c[remove] = 0
                changed = True
        if not changed:
            return image[1:-1, 1:-1].astype(bool)


def _cleaned(skeleton: np.ndarray) -> np.ndarray:
    """Zhang-Suen leaves two-pixel steps on diagonals; a pixel whose removal keeps its neighbours
    connected (Yokoi's 8-connectivity number 1) and is not a line's end goes."""
    image = np.pad(skeleton, 1).astype(np.uint8)
    # Neighbours in order E, NE, N, NW, W, SW, S, SE.
    ring = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))
    changed = True
    while changed:
        changed = False
        for y, x in zip(*np.nonzero(image), strict=True):
            around = [1 - image[y + dy, x + dx] for dy, dx in ring]
            if 8 - sum(around) < 2:
                continue
            around.append(around[0])
            number = sum(around[k] - around[k] * around[k + 1] * around[(k + 2) % 8] for k in (0, 2, 4, 6))
            if number == 1:
                image[y, x] = 0
                changed = True
    return image[1:-1, 1:-1].astype(bool)


def _traced(skeleton: np.ndarray, spur: float) -> list[np.ndarray]:
    """The skeleton as paths between its ends and junctions (x, y), with spurs (a branch from an
    end to a junction shorter than ``spur``: a thick stroke's corner, not a stroke) dropped."""
    pixels = set(zip(*(a.tolist() for a in np.nonzero(skeleton)), strict=True))

    def around(p: tuple[int, int]) -> list[tuple[int, int]]:
        return [(p[0] + dy, p[1] + dx) for dy, dx in _NEIGHBOURS if (p[0] + dy, p[1] + dx) in pixels]

    degree = {p: len(around(p)) for p in pixels}
    nodes = {p for p in pixels if degree[p] != 2}
    cluster: dict[tuple[int, int], int] = {}  # touching junction pixels are one junction
    for p in sorted(nodes):
        if p in cluster:
            continue
        cluster[p], todo = len(cluster), [p]
        while todo:
            q = todo.pop()
            for n in around(q):
                if n in nodes and n not in cluster:
                    cluster[n] = cluster[p]
                    todo.append(n)
    paths: list[tuple[list[tuple[int, int]], int, int]] = []
    seen: set[tuple[int, int]] = set()
    for p in sorted(nodes):
        for n in around(p):
            if n in nodes or n in seen:
                continue
            path, previous = [p, n], p
            seen.add(n)
            while path[-1] not in nodes:
                options = [q for q in around(path[-1]) if q != previous and (q in nodes or q not in seen)]
                if not options:
                    break
                previous = path[-1]
                path.append(next((q for q in options if q in nodes), options[0]))
                seen.add(path[-1])
            end = cluster.get(path[-1], -1)
            paths.append((path, cluster[p], end))
    for p in sorted(pixels - nodes - seen):  # closed loops with no junction (an O)
        if p in seen:
            continue
        path = [p]
        seen.add(p)
        while True:
            step = [q for q in around(path[-1]) if q not in seen]
            if not step:
                break
            path.append(step[0])
            seen.add(step[0])
        path.append(p)
        paths.append((path, -1, -1))
    lone = [p for p in nodes if degree[p] == 0]  # a dot: one pixel
    ends = {cluster[p] for p in nodes if degree[p] == 1}
    for _ in range(3):
        uses: dict[int, int] = {}
        for _, a, b in paths:
            for c in (a, b):
                uses[c] = uses.get(c, 0) + 1
        kept = []
        for path, a, b in paths:
            is_spur = (a in ends) != (b in ends) and uses.get(b if a in ends else a, 0) >= 3
            if is_spur and len(path) < spur:
                continue
            kept.append((path, a, b))
        if len(kept) == len(paths):
            break
        paths = kept
    strokes = [np.array([(x, y) for y, x in path], float) for path, _, _ in paths]
    strokes += [np.array([(p[1], p[0])], float) for p in lone]
    return strokes


def _smoothed(stroke: np.ndarray) -> np.ndarray:
    """A pixel path without its staircase: a 5-point moving average (ends kept), every third point."""
    if len(stroke) < 5:
        return stroke
    kernel = np.ones(5) / 5
    inner = np.stack([np.convolve(stroke[:, a], kernel, mode="valid") for a in (0, 1)], axis=1)
    smooth = np.concatenate([stroke[:1], inner, stroke[-1:]])
    return np.concatenate([smooth[:-1:3], smooth[-1:]])


# ---------------------------------------------------------------------------------------------
# Procedural strokes: digits in two hands, shapes, scribbles. Coordinates: x right, y down, a
# digit about 1 tall and 0.6 wide; angles in degrees, 90 pointing down.


class _Jitter:
    """Random nudges of key coordinates, in drawing heights."""

    def __init__(self, rng: np.random.Generator, scale: float):
        self.rng, self.scale = rng, scale

    def __call__(self, value: float, scale: float = 1.0) -> float:
        return value + float(self.rng.normal(0, self.scale * scale))

    def point(self, x: float, y: float) -> tuple[float, float]:
        return self(x), self(y)

    def uniform(self, low: float, high: float) -> float:
        return float(self.rng.uniform(low, high))


def _line(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, float)


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float) -> np.ndarray:
    n = max(4, int(abs(stop - start) / 8))
    t = np.radians(np.linspace(start, stop, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _spline(*points: tuple[float, float], per_segment: int = 8) -> np.ndarray:
    """A Catmull-Rom curve through the points (the ends repeated)."""
    p = np.array(points, float)
    p = np.concatenate([p[:1], p, p[-1:]])
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    parts = []
    for i in range(1, len(p) - 2):
        a, b, c, d = p[i - 1], p[i], p[i + 1], p[i + 2]
        parts.append(
            0.5 * (2 * b + (c - a) * t + (2 * a - 5 * b + 4 * c - d) * t**2 + (3 * b - a - 3 * c + d) * t**3)
        )
    return np.concatenate([*parts, p[-2:-1]])


def _joined(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts)


def _print_digits() -> dict[tuple[int, str], object]:
    """Lines and elliptical arcs."""

    def oval(j: _Jitter) -> list[np.ndarray]:
        start = j.uniform(-120, -60)
        return [_arc(0.3, 0.5, j(0.28), 0.5, start, start - 360 - j.uniform(-15, 40))]

    def one(j: _Jitter, flag: bool, base: bool) -> list[np.ndarray]:
        top, bottom = j.point(0.35, 0.0), (j(0.35), 1.0)
        strokes = [_line(top, bottom)]
        if flag:
            strokes = [_line((j(0.35) - j.uniform(0.15, 0.32), j.uniform(0.12, 0.4)), top, bottom)]
        if base:
            half = j.uniform(0.15, 0.28)
            strokes.append(_line((bottom[0] - half, j(1.0, 0.5)), (bottom[0] + half, j(1.0, 0.5))))
        return strokes

    def two(j: _Jitter, loop: bool) -> list[np.ndarray]:
        r = j(0.27)
        top = _arc(0.3, j(0.3), r, j(0.28), j.uniform(185, 210), j.uniform(370, 400))
        corner = j.point(0.03, 0.97)
        if not loop:
            return [_joined(top, _line(corner, (j(0.62), j(0.99))))]
        curl = _spline(
            corner, (j(0.02), 0.86), (j(0.12), j(0.8)), (j(0.17), 0.9), (j(0.1), 0.99), (j(0.62), j(0.98))
        )
        return [_joined(top, curl)]

    def three(j: _Jitter, flat: bool) -> list[np.ndarray]:
        middle = j(0.5)
        lower = _arc(
            0.3, (1 + middle) / 2, j(0.29), (1 - middle) / 2, j.uniform(-125, -100), j.uniform(130, 165)
        )
        if flat:
            return [_joined(_line((j(0.03), j(0.02)), (j(0.58), j(0.0)), (j(0.25), middle)), lower)]
        upper = _arc(0.28, middle / 2, j(0.25), middle / 2, j.uniform(190, 215), j.uniform(450, 480))
        return [_joined(upper, lower)]

    def four(j: _Jitter, closed: bool) -> list[np.ndarray]:
        stem_x, bar_y = j(0.45), j(0.65)
        stem_top = (stem_x, 0.0) if closed else (stem_x, j.uniform(0.0, 0.25))
        first = _line((stem_x, 0.0) if closed else (j(0.05), 0.0), (j(0.0), bar_y), (j(0.62), bar_y))
        return [first, _line(stem_top, (j(stem_x), 1.0))]

    def five(j: _Jitter) -> list[np.ndarray]:
        corner, waist = j.point(0.1, 0.0), j.point(0.07, 0.45)
        bowl = _arc(0.3, 0.7, j(0.28), 0.3, j.uniform(205, 225), j.uniform(490, 520))
        return [_line((j(0.58), j(0.0)), corner), _joined(_line(corner, waist), bowl)]

    def six(j: _Jitter, kind: str) -> list[np.ndarray]:
        r, cy = j(0.27), 0.73
        if kind == "straight stem":
            stem = _line(j.point(0.5, 0.0), (0.3 - r, cy))
        else:
            cx = j(0.6)
            stem = _arc(cx, cy, cx - 0.3 + r, cy, -90, -180)
        stop = -180 - j.uniform(-10, 30) if kind != "open loop" else j.uniform(-110, -60)
        return [_joined(stem, _arc(0.3, cy, r, 0.27, 180, stop))]

    def seven(j: _Jitter, kind: str) -> list[np.ndarray]:
        left, corner, foot = (j(0.0), j(0.02)), (j(0.6), j(0.0)), (j(0.22), 1.0)
        if kind == "curved stem":
            stem = _spline(corner, (j(0.42), 0.4), (j(0.3), 0.7), foot)
            return [_joined(_line(left, corner), stem)]
        strokes = [_line(left, corner, foot)]
        if kind == "crossbar":
            y = j(0.5, 0.5)
            x = corner[0] + (foot[0] - corner[0]) * y
            strokes.append(_line((x - j.uniform(0.12, 0.25), y), (x + j.uniform(0.1, 0.22), j(y, 0.5))))
        return strokes

    def eight(j: _Jitter, loops: bool) -> list[np.ndarray]:
        middle = j(0.46)
        upper = _arc(0.3, middle / 2, j(0.22), middle / 2, 90, 450)
        lower = _arc(0.3, (1 + middle) / 2, j(0.28), (1 - middle) / 2, -90, 270)
        if loops:
            return [upper, lower]
        # The upper loop from its right side over the top to the waist, the lower loop whole,
        # then straight back up to where the pen started.
        upper = _arc(0.3, middle / 2, j(0.22), middle / 2, -30, -270)
        return [_joined(upper, lower, upper[:1])]

    def nine(j: _Jitter, curved: bool) -> list[np.ndarray]:
        r, cy = j(0.27), j(0.27)
        loop = _arc(0.3, cy, r, cy, 0, -360 - j.uniform(-10, 20))
        right = (0.3 + r, cy)
        stem = (
            _spline(right, (j(0.55), 0.7), (j(0.4), 0.95), (j(0.22), 1.0))
            if curved
            else _line(right, (j(0.5), 1.0))
        )
        return [_joined(loop, stem)]

    return {
        (0, "oval"): oval,
        (1, "stroke"): lambda j: one(j, False, False),
        (1, "flag"): lambda j: one(j, True, False),
        (1, "flag and base"): lambda j: one(j, True, True),
        (2, "plain"): lambda j: two(j, False),
        (2, "loop"): lambda j: two(j, True),
        (3, "round"): lambda j: three(j, False),
        (3, "flat top"): lambda j: three(j, True),
        (4, "closed"): lambda j: four(j, True),
        (4, "open"): lambda j: four(j, False),
        (5, "plain"): five,
        (6, "curved stem"): lambda j: six(j, "curved stem"),
        (6, "straight stem"): lambda j: six(j, "straight stem"),
        (6, "open loop"): lambda j: six(j, "open loop"),
        (7, "plain"): lambda j: seven(j, "plain"),
        (7, "crossbar"): lambda j: seven(j, "crossbar"),
        (7, "curved stem"): lambda j: seven(j, "curved stem"),
        (8, "two loops"): lambda j: eight(j, True),
        (8, "one stroke"): lambda j: eight(j, False),
        (9, "straight stem"): lambda j: nine(j, False),
        (9, "curved stem"): lambda j: nine(j, True),
    }


# Key points of each variant, the cursive hand: one list per stroke.
_CURSIVE_POINTS: dict[tuple[int, str], tuple[tuple[tuple[float, float], ...], ...]] = {
    (0, "oval"): (
        (
            (0.35, 0.02),
            (0.1, 0.15),
            (0.02, 0.5),
            (0.15, 0.92),
            (0.38, 0.98),
            (0.56, 0.7),
            (0.55, 0.25),
            (0.38, 0.0),
            (0.25, 0.06),
        ),
    ),
    (1, "stroke"): (((0.32, 0.0), (0.3, 0.5), (0.28, 1.0)),),
    (1, "flag"): (((0.05, 0.3), (0.18, 0.14), (0.33, 0.0), (0.31, 0.5), (0.29, 1.0)),),
    (1, "flag and base"): (
        ((0.05, 0.3), (0.18, 0.14), (0.33, 0.0), (0.31, 0.5), (0.29, 1.0)),
        ((0.05, 1.0), (0.3, 0.98), (0.55, 1.0)),
    ),
    (2, "plain"): (
        (
            (0.05, 0.25),
            (0.25, 0.02),
            (0.5, 0.1),
            (0.5, 0.35),
            (0.25, 0.68),
            (0.02, 0.98),
            (0.3, 0.95),
            (0.62, 0.98),
        ),
    ),
    (2, "loop"): (
        (
            (0.05, 0.25),
            (0.25, 0.02),
            (0.5, 0.1),
            (0.5, 0.35),
            (0.25, 0.68),
            (0.06, 0.9),
            (0.05, 1.0),
            (0.17, 0.95),
            (0.1, 0.86),
            (0.35, 0.97),
            (0.62, 0.95),
        ),
    ),
    (3, "round"): (
        (
            (0.05, 0.12),
            (0.3, 0.0),
            (0.52, 0.12),
            (0.45, 0.35),
            (0.22, 0.48),
            (0.5, 0.6),
            (0.56, 0.82),
            (0.3, 1.0),
            (0.03, 0.88),
        ),
    ),
    (3, "flat top"): (
        ((0.03, 0.02), (0.55, 0.02), (0.25, 0.4), (0.5, 0.52), (0.57, 0.78), (0.3, 1.0), (0.03, 0.88)),
    ),
    (4, "closed"): (
        ((0.45, 0.0), (0.22, 0.35), (0.0, 0.66), (0.3, 0.65), (0.62, 0.62)),
        ((0.45, 0.02), (0.45, 0.6), (0.44, 1.0)),
    ),
    (4, "open"): (
        ((0.05, 0.0), (0.03, 0.35), (0.05, 0.62), (0.35, 0.62), (0.62, 0.6)),
        ((0.45, 0.05), (0.46, 0.55), (0.45, 1.0)),
    ),
    (5, "plain"): (
        (
            (0.1, 0.02),
            (0.07, 0.25),
            (0.06, 0.45),
            (0.3, 0.38),
            (0.55, 0.55),
            (0.55, 0.85),
            (0.3, 1.0),
            (0.03, 0.9),
        ),
        ((0.1, 0.02), (0.35, 0.0), (0.6, 0.02)),
    ),
    (6, "curved stem"): (
        (
            (0.55, 0.02),
            (0.25, 0.15),
            (0.05, 0.5),
            (0.1, 0.88),
            (0.32, 1.0),
            (0.55, 0.85),
            (0.52, 0.6),
            (0.3, 0.5),
            (0.1, 0.62),
        ),
    ),
    (6, "straight stem"): (
        (
            (0.5, 0.0),
            (0.3, 0.3),
            (0.1, 0.62),
            (0.08, 0.85),
            (0.3, 1.0),
            (0.52, 0.85),
            (0.5, 0.62),
            (0.3, 0.52),
            (0.12, 0.62),
        ),
    ),
    (6, "open loop"): (
        (
            (0.55, 0.02),
            (0.25, 0.15),
            (0.05, 0.5),
            (0.1, 0.88),
            (0.32, 1.0),
            (0.55, 0.85),
            (0.5, 0.62),
            (0.38, 0.55),
        ),
    ),
    (7, "plain"): (((0.02, 0.05), (0.3, 0.02), (0.6, 0.0), (0.4, 0.45), (0.22, 1.0)),),
    (7, "crossbar"): (
        ((0.02, 0.05), (0.3, 0.02), (0.6, 0.0), (0.4, 0.45), (0.22, 1.0)),
        ((0.2, 0.52), (0.38, 0.51), (0.56, 0.5)),
    ),
    (7, "curved stem"): (((0.02, 0.05), (0.3, 0.02), (0.6, 0.0), (0.45, 0.35), (0.35, 0.7), (0.33, 1.0)),),
    (8, "two loops"): (
        (
            (0.3, 0.45),
            (0.1, 0.25),
            (0.3, 0.0),
            (0.5, 0.22),
            (0.3, 0.45),
            (0.05, 0.72),
            (0.3, 1.0),
            (0.56, 0.72),
            (0.32, 0.46),
        ),
    ),
    (8, "one stroke"): (
        (
            (0.5, 0.15),
            (0.3, 0.0),
            (0.08, 0.18),
            (0.3, 0.45),
            (0.55, 0.72),
            (0.3, 1.0),
            (0.05, 0.72),
            (0.3, 0.45),
            (0.52, 0.2),
            (0.45, 0.08),
        ),
    ),
    (9, "straight stem"): (
        (
            (0.55, 0.15),
            (0.3, 0.0),
            (0.05, 0.18),
            (0.15, 0.45),
            (0.45, 0.42),
            (0.56, 0.2),
            (0.55, 0.55),
            (0.52, 1.0),
        ),
    ),
    (9, "curved stem"): (
        (
            (0.55, 0.15),
            (0.3, 0.0),
            (0.05, 0.18),
            (0.15, 0.45),
            (0.45, 0.42),
            (0.56, 0.2),
            (0.55, 0.6),
            (0.45, 0.9),
            (0.25, 1.0),
        ),
    ),
}


def _cursive_digits() -> dict[tuple[int, str], object]:
    """Smooth curves through jittered key points."""

    def build(strokes):
        return lambda j: [_spline(*(j.point(x, y) for x, y in points)) for points in strokes]

    return {key: build(strokes) for key, strokes in _CURSIVE_POINTS.items()}


_PRINT = _print_digits()
_CURSIVE = _cursive_digits()


def _shape(j: _Jitter, name: str) -> list[np.ndarray]:
    if name == "square":
        corners = [j.point(0, 0), j.point(1, 0), j.point(1, 1), j.point(0, 1)]
        return [_line(*corners, corners[0], j.point(*corners[1]))]
    if name == "triangle":
        corners = [j.point(0.5, 0), j.point(1, 0.9), j.point(0, 0.9)]
        return [_line(*corners, corners[0])]
    if name == "star":
        angles = np.radians(-90 + 144 * np.arange(6))
        return [_line(*((j(0.5 + 0.5 * math.cos(a)), j(0.5 + 0.5 * math.sin(a))) for a in angles))]
    if name == "heart":
        bottom, dip = j.point(0.5, 1.0), j.point(0.5, 0.25)
        return [
            _spline(
                bottom,
                (j(0.12), 0.55),
                (0.0, j(0.2)),
                (j(0.25), 0.0),
                dip,
                (j(0.75), 0.0),
                (1.0, j(0.2)),
                (j(0.88), 0.55),
                bottom,
            )
        ]
    if name == "circle with a cross":
        circle = _arc(0.5, 0.5, 0.5, j(0.5), 0, 370)
        if j.uniform(0, 1) < 0.5:
            return [
                circle,
                _line(j.point(0.15, 0.15), j.point(0.85, 0.85)),
                _line(j.point(0.85, 0.15), j.point(0.15, 0.85)),
            ]
        return [
            circle,
            _line(j.point(0.5, 0.0), j.point(0.5, 1.0)),
            _line(j.point(0.0, 0.5), j.point(1.0, 0.5)),
        ]
    if name == "smiley":
        eyes = [np.array([j.point(0.33, 0.35)]), np.array([j.point(0.67, 0.35)])]
        return [_arc(0.5, 0.5, 0.5, 0.5, 0, 365), *eyes, _arc(0.5, j(0.5), j(0.28), j(0.22), 20, 160)]
    if name == "arrow":
        turn = math.radians(45 * int(j.rng.integers(8)))
        c, s = math.cos(turn), math.sin(turn)
        shaft = [(-0.5, 0.0), (0.5, 0.0)]
        head = [(j(0.25), j(-0.22)), (0.5, 0.0), (j(0.25), j(0.22))]

        def turned(p: tuple[float, float]) -> tuple[float, float]:
            return p[0] * c - p[1] * s, p[0] * s + p[1] * c

        return [_line(*map(turned, shaft)), _line(*map(turned, head))]
    if name == "plus":
        return [_line(j.point(0.5, 0), j.point(0.5, 1)), _line(j.point(0, 0.5), j.point(1, 0.5))]
    if name == "hash":
        return [
            _line(j.point(0.35, 0), j.point(0.3, 1)),
            _line(j.point(0.7, 0), j.point(0.65, 1)),
            _line(j.point(0, 0.33), j.point(1, 0.33)),
            _line(j.point(0, 0.67), j.point(1, 0.67)),
        ]
    if name == "check mark":
        return [_line(j.point(0, 0.55), j.point(0.35, 0.95), j.point(1, 0))]
    if name == "zigzag":
        teeth = int(j.rng.integers(3, 6))
        return [_line(*((i / teeth, j(0.0 if i % 2 else 0.6)) for i in range(teeth + 1)))]
    raise ValueError(f"no shape {name!r}")


def _scribble(rng: np.random.Generator) -> list[np.ndarray]:
    """A curve through 6-10 random points: rarely a digit's shape."""
    points = rng.uniform(0, 1, (int(rng.integers(6, 11)), 2))
    return [_spline(*map(tuple, points))]
