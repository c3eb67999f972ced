"""Font glyphs: matplotlib's outline fonts rendered unhinted at ``GLYPH_EM`` pixels per em, thinned to
their centre line and traced into strokes (unit size, centred)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

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
GLYPH_EM = 128  # font size (pixels per em) at which glyphs are rendered and thinned


def font_dir() -> Path:
    """matplotlib's own font folder (the only fonts used)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


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
