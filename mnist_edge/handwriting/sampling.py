"""Sampling: the family, digit, variant or kind of non-digit of each picture, and the strokes of
fragments of digits and of two digits side by side, drawn with the pen."""

from __future__ import annotations

import string
from collections.abc import Iterator

import numpy as np

from mnist_edge.handwriting.glyphs import FONT_FAMILIES, _glyph
from mnist_edge.handwriting.pen import Drawing, _arc_length, _normalized, _pen_drawing, _resampled
from mnist_edge.handwriting.strokes import (
    _CURSIVE,
    _PRINT,
    FLAGGED_ONES,
    SHAPES,
    STROKE_HANDS,
    VARIANTS,
    _Jitter,
    _scribble,
    _shape,
)
from mnist_edge.handwriting.writers import WRITERS

# Letters a person may read as a digit when written alone (0: O o D Q; 1: I l i j J; 2: Z z;
# 5: S s; 6: b G; 8: B; 9: g q). They are never drawn as non-digits: a model taught to doubt
# them would doubt the digits they resemble.
DIGIT_LIKE_LETTERS = "OoDQIlijJZzSsBbGgq"
LETTERS = "".join(c for c in string.ascii_letters if c not in DIGIT_LIKE_LETTERS)

# What render_non_digits draws, and how often (letters only where a font family is given).
NON_DIGIT_KINDS: dict[str, float] = {
    "letter": 0.40,
    "shape": 0.30,
    "scribble": 0.10,
    "fragment": 0.10,
    "two digits": 0.10,
}

# Training's pen-stroke digits: this share of them are drawn as flagged 1s instead, which makes
# 21% of them flagged 1s where the variants alone give 6.7%. A 1's flag and a 7's bar differ
# mostly in length; MNIST has 6,000 7s and few flagged 1s, and with 6.7% of its procedural digits
# as flagged 1s a model still read 11 of 286 new print-hand 1s with a flag (no base) as 7. 15%
# rather than 7% (the previous setting) made flat read 0.9 pp more validation flags at two training seeds, conv2d about
# as many (docs/training.md, "Handwriting beyond MNIST").
EXTRA_FLAGGED_ONES = 0.15


def _check(count: int, families: tuple[str, ...], *shares: float) -> None:
    """``shares``: ``long_flags``, ``varied_flags``; each from 0 to 1 (nan is refused too)."""
    if not all(0 <= share <= 1 for share in shares):
        raise ValueError(f"a share of the flags must be from 0 to 1, got {shares}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if not families:
        raise ValueError("no families given")
    unknown = [f for f in families if f not in FONT_FAMILIES and f not in STROKE_HANDS and f not in WRITERS]
    if unknown:
        known = ", ".join([*FONT_FAMILIES, *STROKE_HANDS, *WRITERS])
        raise ValueError(f"unknown families {unknown}; known: {known}")


def _split(families: tuple[str, ...]) -> tuple[list[str], list[str]]:
    fonts = [f for f in dict.fromkeys(families) if f in FONT_FAMILIES]
    hands = [f for f in dict.fromkeys(families) if f in STROKE_HANDS or f in WRITERS]
    return fonts, hands


def _pick_family(rng: np.random.Generator, fonts: list[str], hands: list[str]) -> str:
    """Fonts and pen-stroke hands half the pictures each when both are given: the strokes carry
    the variants MNIST lacks, the fonts the variety of styles. Among the hands, the writers
    (``WRITERS``) draw half when there are any."""
    group = fonts if not hands else hands if not fonts else (hands if rng.random() < 0.5 else fonts)
    if group is hands:
        # The procedural hands carry the variants, the writers one person each: half and half.
        own, writers = [h for h in hands if h in STROKE_HANDS], [h for h in hands if h in WRITERS]
        if own and writers:  # no draw without writers: training's pictures stay what they were
            group = own if rng.random() < 0.5 else writers
    return group[int(rng.integers(len(group)))]


def _digit_strokes(
    rng: np.random.Generator,
    family: str,
    variants: tuple[tuple[int, str], ...] | None = None,
    long_flags: float = 0.0,
    varied_flags: float = 0.0,
    flag_construction: str | None = None,
    digit: int | None = None,
) -> tuple[list[np.ndarray], int, str]:
    """Strokes (unit size, centred), label and variant of one digit in ``family``; ``long_flags``
    and ``varied_flags``: the shares of the print hand's flags drawn long and in one of
    ``strokes.FLAG_CONSTRUCTIONS``; ``flag_construction``: all of them in that one. A writer's
    digits have no named variants (their variant is "writer"); ``digit``: that digit of theirs."""
    if family in FONT_FAMILIES:
        files = FONT_FAMILIES[family]
        digit = int(rng.integers(10))
        file = files[int(rng.integers(len(files)))]
        return list(_glyph(file, str(digit))), digit, file
    if family in WRITERS:
        digit = int(rng.integers(10)) if digit is None else digit
        return _writer_strokes(family, digit, rng), digit, "writer"
    if variants is None:  # every digit equally often, then every variant of it
        digit = int(rng.integers(10))
        variant = VARIANTS[digit][int(rng.integers(len(VARIANTS[digit])))]
    else:
        digit, variant = variants[int(rng.integers(len(variants)))]
    hand = STROKE_HANDS[family]
    build = _PRINT if hand == "print" else _CURSIVE
    return (
        _normalized(
            build[digit, variant](
                _Jitter(rng, 0.02 if hand == "print" else 0.035, long_flags, varied_flags, flag_construction)
            )
        ),
        digit,
        variant,
    )


def _writer_strokes(writer: str, digit: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One drawing of ``digit`` by ``writer``, normalized; a writer module that returns no stroke,
    a stroke that is not (N, 2), or a point that is not finite is a bug, named here (a NaN would
    draw an empty picture, which reading drops without a word)."""
    strokes = [np.asarray(s, float) for s in WRITERS[writer].strokes(digit, rng)]
    if not strokes or any(
        s.ndim != 2 or s.shape[1] != 2 or not len(s) or not np.isfinite(s).all() for s in strokes
    ):
        raise ValueError(f"{writer}: strokes of {digit} empty, not (N, 2) or not finite")
    return _normalized(strokes)


def _digit_drawings(
    rng: np.random.Generator,
    families: tuple[str, ...],
    side: int,
    pen: float | None,
    variants: tuple[tuple[int, str], ...] | None = None,
    extra_flagged_ones: float = 0.0,
    long_flags: float = 0.0,
    varied_flags: float = 0.0,
    flag_construction: str | None = None,
    digit: int | None = None,
) -> Iterator[Drawing]:
    """``extra_flagged_ones``: the share of the pen-stroke hands' digits drawn as a flagged 1
    instead of any digit and variant (training's; 0 draws every digit equally often); ``digit``:
    the writers draw only that digit."""
    fonts, hands = _split(families)
    while True:
        family = _pick_family(rng, fonts, hands)
        # No draw from ``rng`` without extras: the benchmark's pictures stay what they were.
        extra = (
            extra_flagged_ones > 0
            and family in STROKE_HANDS
            and variants is None
            and rng.random() < extra_flagged_ones
        )
        strokes, label, variant = _digit_strokes(
            rng,
            family,
            FLAGGED_ONES if extra else variants,
            long_flags,
            varied_flags,
            flag_construction,
            digit,
        )
        yield Drawing(_pen_drawing(rng, strokes, side, pen), label, family, "digit", variant)


def _non_digit_drawings(
    rng: np.random.Generator,
    families: tuple[str, ...],
    side: int,
    pen: float | None,
    kinds: tuple[str, ...] | None = None,
    long_flags: float = 0.0,
    varied_flags: float = 0.0,
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
            strokes, variant = _fragment(rng, family, long_flags, varied_flags)
        else:  # two digits side by side, in one hand
            family = _pick_family(rng, fonts, hands)
            first, a, _ = _digit_strokes(rng, family, None, long_flags, varied_flags)
            second, b, _ = _digit_strokes(rng, family, None, long_flags, varied_flags)
            variant = f"{a}{b}"
            strokes = _side_by_side(rng, first, second)
            aspect = 0.1
        yield Drawing(_pen_drawing(rng, strokes, side, pen, aspect=aspect), -1, family, kind, variant)


def _fragment(
    rng: np.random.Generator, family: str, long_flags: float = 0.0, varied_flags: float = 0.0
) -> tuple[list[np.ndarray], str]:
    """20-40% of a digit's strokes by length, in one run, that reads as neither a 1 or a 7 (a
    line, a shallow arc, a straight stroke with a hook or a bar) nor a 0 (a closed loop). Never a
    piece of a 1: every piece of it is a 1 or a dash."""
    while True:
        strokes, digit, _ = _digit_strokes(rng, family, None, long_flags, varied_flags)
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
