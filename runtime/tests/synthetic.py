"""Synthetic photos of MNIST digits on paper, for the preprocessing tests and its benchmark."""

from __future__ import annotations

import numpy as np


def paper_photo(
    digit: np.ndarray, size: tuple[int, int], box: tuple[int, int, int, int], seed: int
) -> np.ndarray:
    """An MNIST digit drawn as dark ink on uneven light paper, at another size and position."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = size
    top, left, dh, dw = box
    paper = 200 + 30 * np.linspace(0, 1, w)[None, :] + rng.normal(0, 4, (h, w))
    ink = np.asarray(Image.fromarray(digit).resize((dw, dh), Image.BICUBIC), dtype=np.float32) / 255
    paper[top : top + dh, left : left + dw] *= 1 - 0.8 * np.clip(ink, 0, 1)
    return np.clip(paper, 0, 255).astype(np.uint8)


def fine_pen_on_ruled_paper(digit: np.ndarray, seed: int) -> np.ndarray:
    """The digit drawn 12x larger with a thin pen, on ruled paper with specks of dirt."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    big = np.asarray(Image.fromarray(digit).resize((336, 336), Image.BICUBIC)) > 100
    thin = big.copy()
    for dy in range(-4, 5):  # erode by 4 pixels: strokes about 1/3 as wide as MNIST's
        for dx in range(-4, 5):
            thin &= np.roll(np.roll(big, dy, 0), dx, 1)
    paper = 200 + rng.normal(0, 5, (436, 396))
    paper[40:376, 30:366] -= 150 * thin
    for row in range(10, 436, 37):
        paper[row : row + 2] -= 40
    paper.flat[rng.integers(0, paper.size, 30)] -= 120
    return np.clip(paper, 0, 255).astype(np.uint8)
