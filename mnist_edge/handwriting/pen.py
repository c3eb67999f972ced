"""The pen: strokes posed at random (elastic distortion, stretch, slant, rotation), resampled and
drawn with a round pen, dark on a white canvas; and the drawings read as the runtime reads them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from mnist_edge_runtime.errors import NoDigitError
from mnist_edge_runtime.reading import read_digit

PAGE_SIDE, PAGE_PEN = 280, 18.0  # the page's canvas and pen
PEN_RANGE = (8.0, 30.0)  # pen widths on the page's 280-pixel canvas, for training pictures
SIDE = 128  # training pictures are drawn at this size (a multiple of 4: the reading's fast path)
SUPERSAMPLE = 2  # drawn at twice the size and shrunk: edges anti-aliased, as a browser draws them
MAX_PEN_SHARE = 0.18  # the pen at most this share of the drawing's height (MNIST's is about 0.14)
SPACING = 0.03  # longest step along a stroke, in drawing heights (the elastic field bends steps)
# The elastic field's largest amplitude, in drawing heights. With twice and three times as much, conv2d
# read at most 0.35 pp more of the flags joined to the stem in ways it never trained on
# (docs/training.md, the sixth round).
ELASTIC_AMPLITUDE = 0.035


class Drawing(NamedTuple):
    """One picture as a person draws it: dark ink on a white square canvas."""

    image: np.ndarray  # (side, side) uint8
    label: int  # 0-9, or -1 for something that is not a digit
    family: str
    kind: str  # "digit", or one of NON_DIGIT_KINDS
    variant: str  # the procedural variant, the letter, the shape...


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
    amplitude = rng.uniform(0, ELASTIC_AMPLITUDE)
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
