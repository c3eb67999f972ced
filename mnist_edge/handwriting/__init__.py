"""Handwriting beyond MNIST: digits and non-digits drawn with a pen, read as the runtime reads them.

MNIST is one population of writers (American census staff and students, 1990s): it has few
1s with a flag, 7s with a crossbar, open 4s or looped 2s, and no letters or shapes at all. This
package draws more: digits and letters from the outline fonts matplotlib ships, thinned to their
centre line and redrawn with a round pen, digits drawn as procedural pen strokes in two hands, and
things that are not digits (letters, shapes, scribbles, fragments of digits, two digits side by
side). Every picture is then read by the runtime's own ``read_digit``, so a model trained on it sees
exactly what a device feeds it. Nothing else is data: no font or glyph collection is installed
or read beyond matplotlib's own copy (``matplotlib.get_data_path()``).

Families are font families (each with its upright and italic files), the two procedural
hands, and four writers written independently of the rest (``writers``). ``TRAIN_FAMILIES`` and
``HELD_OUT_FAMILIES`` split the fonts and hands so that a benchmark can measure styles no
training picture had; docs/input-forms.md ("Handwriting beyond MNIST") says why this split. The
writers validate training choices (``benchmarks/flagged_ones.py``) and are trained on where
``TrainConfig.writer_hands`` names them. Pictures depend only on the arguments of the function
that draws them and the matplotlib (FreeType), Pillow and numpy versions: glyphs are rendered
unhinted, and coordinates are rounded to 1/16 pixel before Pillow draws them so that the last
bits of a sine on one CPU or another change nothing.

The modules: ``glyphs`` (font glyphs traced into strokes), ``strokes`` (procedural pen strokes),
``pen`` (posing, drawing with a round pen, reading), ``sampling`` (what each picture shows) and
``writers`` (the four independent hands).

Needs numpy, Pillow and matplotlib (for the font files and FreeType); never TensorFlow.
"""

from __future__ import annotations

import numpy as np

from mnist_edge.handwriting.glyphs import FONT_FAMILIES, GLYPH_EM, font_dir
from mnist_edge.handwriting.pen import (
    MAX_PEN_SHARE,
    PAGE_PEN,
    PAGE_SIDE,
    PEN_RANGE,
    SIDE,
    SPACING,
    SUPERSAMPLE,
    Drawing,
    _read_all,
)
from mnist_edge.handwriting.sampling import (
    DIGIT_LIKE_LETTERS,
    EXTRA_FLAGGED_ONES,
    LETTERS,
    NON_DIGIT_KINDS,
    _check,
    _digit_drawings,
    _non_digit_drawings,
)
from mnist_edge.handwriting.strokes import (
    _PRINT,
    FLAG_CONSTRUCTIONS,
    FLAGGED_ONES,
    LONG_FLAG_SHARE,
    SHAPES,
    STROKE_HANDS,
    VARIANTS,
)
from mnist_edge.handwriting.writers import WRITERS, writer_seed

__all__ = [
    "DIGIT_LIKE_LETTERS",
    "FLAG_CONSTRUCTIONS",
    "FLAGGED_ONES",
    "FONT_FAMILIES",
    "GLYPH_EM",
    "HELD_OUT_FAMILIES",
    "LETTERS",
    "LONG_FLAG_SHARE",
    "MAX_PEN_SHARE",
    "NON_DIGIT_KINDS",
    "PAGE_PEN",
    "PAGE_SIDE",
    "PEN_RANGE",
    "SHAPES",
    "SIDE",
    "SPACING",
    "STROKE_HANDS",
    "SUPERSAMPLE",
    "TRAIN_FAMILIES",
    "VARIANTS",
    "WRITERS",
    "Drawing",
    "draw_digits",
    "draw_non_digits",
    "draw_writer_digits",
    "writer_seed",
    "font_dir",
    "render_digits",
    "render_non_digits",
]

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


# ---------------------------------------------------------------------------------------------
# Public API


def render_digits(
    count: int, seed: int, families: tuple[str, ...], long_flags: float = 0.0, varied_flags: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` digits drawn with a pen in ``families``, read by the runtime: (count, 28, 28) uint8
    MNIST-form images (bright ink on black) and their int64 labels 0-9.

    Each is drawn on a 128-pixel canvas with a pen of 8-30 pixels on the page's scale, slanted,
    rotated, stretched and elastically distorted, then read by ``read_digit``; a picture it
    cannot read is dropped and another drawn in its place. ``long_flags``: the share of the print
    hand's flagged 1s drawn with a long, steep flag (0: none, as flat trains); ``varied_flags``:
    the share joined to the stem in one of ``FLAG_CONSTRUCTIONS`` (0: none, as both models train).
    """
    _check(count, families, long_flags, varied_flags)
    rng = np.random.default_rng(seed)
    drawings = _digit_drawings(
        rng,
        families,
        SIDE,
        None,
        extra_flagged_ones=EXTRA_FLAGGED_ONES,
        long_flags=long_flags,
        varied_flags=varied_flags,
    )
    images, labels = _read_all(drawings, count)
    return images, np.array(labels, np.int64)


def render_non_digits(
    count: int, seed: int, families: tuple[str, ...], long_flags: float = 0.0, varied_flags: float = 0.0
) -> np.ndarray:
    """``count`` pictures of things that are not digits, drawn and read as ``render_digits``
    draws and reads digits: (count, 28, 28) uint8.

    Letters of the font families among ``families`` (none of ``DIGIT_LIKE_LETTERS``), shapes
    (``SHAPES``), scribbles, fragments of digits (20-40% of their strokes' length, never of a 1,
    a line, a shallow arc or a closed loop: those read as 1 and 0) and two digits side by side, mixed as
    ``NON_DIGIT_KINDS`` says. ``long_flags`` and ``varied_flags`` as for ``render_digits`` (the
    print hand's 1s beside another digit).
    """
    _check(count, families, long_flags, varied_flags)
    rng = np.random.default_rng(seed)
    drawings = _non_digit_drawings(
        rng, families, SIDE, None, long_flags=long_flags, varied_flags=varied_flags
    )
    images, _ = _read_all(drawings, count)
    return images


def draw_digits(
    count: int,
    seed: int,
    families: tuple[str, ...],
    side: int = PAGE_SIDE,
    pen: float | None = PAGE_PEN,
    variants: tuple[tuple[int, str], ...] | None = None,
    long_flags: float = 0.0,
    varied_flags: float = 0.0,
    flag_construction: str | None = None,
) -> list[Drawing]:
    """Digits as drawn on a canvas of ``side`` pixels with a round pen ``pen`` pixels wide (None:
    8-30 pixels on the page's scale), before any reading. ``variants`` keeps only the procedural
    (digit, variant) pairs named, e.g. ``FLAGGED_ONES`` (then only the pen-stroke hands among
    ``families`` draw). ``long_flags`` and ``varied_flags`` as for ``render_digits``;
    ``flag_construction``: every flagged 1 joined to its stem in that one of
    ``FLAG_CONSTRUCTIONS`` (a validation set of that construction alone)."""
    _check(count, families, long_flags, varied_flags)
    if flag_construction is not None and flag_construction not in FLAG_CONSTRUCTIONS:
        raise ValueError(f"no flag construction {flag_construction!r}; known: {list(FLAG_CONSTRUCTIONS)}")
    if variants is not None:
        unknown = [v for v in variants if v not in _PRINT]
        if unknown or not variants:
            raise ValueError(f"no procedural variants {unknown or variants}; known: {sorted(_PRINT)}")
        families = tuple(f for f in families if f in STROKE_HANDS)
        if not families:
            raise ValueError("variants are drawn by the pen-stroke hands only; none is among the families")
    rng = np.random.default_rng(seed)
    drawings = _digit_drawings(
        rng,
        families,
        side,
        pen,
        variants,
        long_flags=long_flags,
        varied_flags=varied_flags,
        flag_construction=flag_construction,
    )
    return [next(drawings) for _ in range(count)]


def draw_writer_digits(
    count: int, seed: int, writer: str, digit: int, side: int = PAGE_SIDE, pen: float | None = PAGE_PEN
) -> list[Drawing]:
    """``count`` drawings of ``digit`` by one of ``WRITERS``, drawn as ``draw_digits`` draws."""
    if writer not in WRITERS:
        raise ValueError(f"no writer {writer!r}; known: {list(WRITERS)}")
    if digit not in range(10):
        raise ValueError(f"a digit is 0-9, not {digit}")
    drawings = _digit_drawings(np.random.default_rng(seed), (writer,), side, pen, digit=digit)
    return [next(drawings) for _ in range(count)]


def draw_non_digits(
    count: int,
    seed: int,
    families: tuple[str, ...],
    side: int = PAGE_SIDE,
    pen: float | None = PAGE_PEN,
    kinds: tuple[str, ...] | None = None,
    long_flags: float = 0.0,
    varied_flags: float = 0.0,
) -> list[Drawing]:
    """Non-digits as ``draw_digits`` draws digits; ``kinds`` keeps only those kinds."""
    _check(count, families, long_flags, varied_flags)
    rng = np.random.default_rng(seed)
    drawings = _non_digit_drawings(
        rng, families, side, pen, kinds, long_flags=long_flags, varied_flags=varied_flags
    )
    return [next(drawings) for _ in range(count)]
