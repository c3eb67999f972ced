"""A simulated writer for the learning-loop tests: one person's hand, drawn on the page's canvas.

This writer's 1 has a long curved flag, and their 7 a hooked top and a long crossbar: styles
MNIST's writers rarely use. Each drawing varies as one person's do (size, place, slant, pen, a little tremor),
and is drawn as the page draws: black on a white 280x280 canvas, a round pen, sent as PNG.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 280
STROKES = {  # in a unit box, y downwards
    1: [[(0.0, 0.55), (0.3, 0.2), (0.62, 0.0)], [(0.62, 0.0), (0.5, 0.98)]],
    7: [[(0.1, 0.25), (0.2, 0.05), (0.9, 0.05), (0.5, 0.5), (0.5, 0.95)], [(0.15, 0.5), (0.95, 0.5)]],
}


def writer_png(digit: int, rng: np.random.Generator) -> bytes:
    """One drawing of ``digit`` (1 or 7) in this writer's hand, as PNG bytes."""
    image = Image.new("L", (CANVAS, CANVAS), 255)
    draw = ImageDraw.Draw(image)
    height = rng.uniform(150, 220)
    width = height * rng.uniform(0.55, 0.75)
    left = rng.uniform(20, CANVAS - 20 - width)
    top = rng.uniform(20, CANVAS - 20 - height)
    slant = rng.uniform(0.05, 0.30)  # this writer leans forward
    pen = int(rng.integers(14, 23))
    for stroke in STROKES[digit]:
        points = []
        for x, y in stroke:
            x, y = x + rng.normal(0, 0.025), y + rng.normal(0, 0.025)
            points.append((left + width * (x + slant * (1 - y)), top + height * y))
        draw.line(points, fill=0, width=pen, joint="curve")
        for px, py in (points[0], points[-1]):  # round ends, as the page's pen has
            draw.ellipse((px - pen / 2, py - pen / 2, px + pen / 2, py + pen / 2), fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def writer_digits(count: int, seed: int) -> list[tuple[int, bytes]]:
    """``count`` drawings, 1s and 7s alternately, with their digits."""
    rng = np.random.default_rng(seed)
    return [(digit, writer_png(digit, rng)) for digit in (1, 7) * (count // 2) + (1,) * (count % 2)]
