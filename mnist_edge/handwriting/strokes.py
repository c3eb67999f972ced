"""Procedural pen strokes: digits in two hands (print and cursive) in the variants MNIST has few
of, shapes that are not digits, and scribbles."""

from __future__ import annotations

import math

import numpy as np

# Procedural pen strokes: "print" builds digits from straight lines and elliptical arcs,
# "cursive" from smooth curves through key points, with looser proportions.
STROKE_HANDS: dict[str, str] = {"Pen strokes (print)": "print", "Pen strokes (cursive)": "cursive"}

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


# ---------------------------------------------------------------------------------------------
# Procedural strokes: digits in two hands, shapes, scribbles. Coordinates: x right, y down, a
# digit about 1 tall and 0.6 wide; angles in degrees, 90 pointing down.


class _Jitter:
    """Random nudges of key coordinates, in drawing heights; ``long_flags`` and ``varied_flags``:
    the shares of a print hand's flagged 1s drawn with a long flag (``LONG_FLAG_SHARE``) and in
    one of ``FLAG_CONSTRUCTIONS``; ``flag_construction``: every flag in that one (a validation
    set of its own)."""

    def __init__(
        self,
        rng: np.random.Generator,
        scale: float,
        long_flags: float = 0.0,
        varied_flags: float = 0.0,
        flag_construction: str | None = None,
    ):
        self.rng, self.scale, self.long_flags, self.varied_flags = rng, scale, long_flags, varied_flags
        self.flag_construction = flag_construction

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


FLAG_MIN_SLOPE = 0.36  # a 1's flag drops at least this much per unit it reaches left (19.8 degrees)
# Long flags, as a 1 written fast has them: reaching 0.3-0.5 of the height to the left and down to
# 0.65 of it, never flatter than 38.7 degrees (a slope of 0.8): a flag longer than a short 7's bar
# is steeper. conv2d trains with a third of its flagged 1s drawn so (``TrainConfig.long_flag_share``);
# without them it read 9-24% of the learning loop writer's 1s (tests/writer.py) as 7.
LONG_FLAG_SHARE = 1 / 3
LONG_FLAG_MIN_SLOPE = 0.8


def _bent(start: tuple[float, float], stop: tuple[float, float], bend: float) -> np.ndarray:
    """From ``start`` to ``stop``, a quadratic Bezier curve whose control point lies ``bend`` of
    the chord's length to one side of its middle (0: straight; the sign says which side); the
    curve strays half as far."""
    a, b = np.array(start), np.array(stop)
    normal = np.array([a[1] - b[1], b[0] - a[0]])
    control = (a + b) / 2 + bend * normal
    t = np.linspace(0, 1, 12)[:, None]
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * control + t**2 * b


def _flagged_stem(j: _Jitter, top: tuple[float, float], bottom: tuple[float, float]) -> list[np.ndarray]:
    """A 1's flag and stem, as people write the flag: short and steep or long and low (reaching up
    to 0.45 of the height down and a third of it to the left, its chord never flatter than 19.8
    degrees, a slope of 0.36: a long level flag is a 7's bar), or, for ``j.long_flags`` of them,
    long and steep (``LONG_FLAG_MIN_SLOPE``); straight or bowed either way. Flag and stem are one
    stroke meeting in a sharp corner or a rounded one or, for ``j.varied_flags`` of them, are
    joined in one of ``FLAG_CONSTRUCTIONS`` (the lifted flag a stroke of its own), or all in
    ``j.flag_construction``."""
    # No draw without long or varied flags: the pictures of a hand without them stay what they were.
    construction = j.flag_construction
    if construction is None and j.varied_flags and j.uniform(0, 1) < j.varied_flags:
        construction = FLAG_CONSTRUCTIONS[int(j.rng.integers(len(FLAG_CONSTRUCTIONS)))]
    if j.long_flags and j.uniform(0, 1) < j.long_flags:
        left = j.uniform(0.3, 0.5)
        start = (top[0] - left, top[1] + j.uniform(LONG_FLAG_MIN_SLOPE * left, 0.65))
    else:
        left = j.uniform(0.12, 0.32)
        start = (top[0] - left, top[1] + j.uniform(max(0.06, FLAG_MIN_SLOPE * left), 0.45))
    flag = _bent(start, top, j.uniform(-0.2, 0.2))
    if construction is not None:
        return _CONSTRUCTED[construction](j, start, flag, top, bottom)
    if j.uniform(0, 1) < 0.5:
        return [_joined(flag, _line(top, bottom)[1:])]
    # A rounded top: the pen leaves the flag before the corner and joins the stem below it.
    radius = j.uniform(0.04, 0.12)
    leave, join = _leave(flag, radius), _below(top, bottom, radius)
    t = np.linspace(0, 1, 8)[1:-1, None]
    corner = (1 - t) ** 2 * leave[-1] + 2 * (1 - t) * t * np.array(top) + t**2 * join
    return [_joined(leave, corner, _line(tuple(join), bottom))]


def _leave(flag: np.ndarray, before: float) -> np.ndarray:
    """The flag up to ``before`` (in heights, along it) short of its end."""
    along = np.cumsum(np.r_[0, np.hypot(*np.diff(flag, axis=0).T)])
    return flag[along <= along[-1] - before]


def _down(top: tuple[float, float], bottom: tuple[float, float]) -> np.ndarray:
    """The unit vector down the stem."""
    return np.subtract(bottom, top) / np.hypot(*np.subtract(bottom, top))


def _below(top: tuple[float, float], bottom: tuple[float, float], distance: float) -> np.ndarray:
    """The point ``distance`` down the stem from ``top``."""
    return np.array(top) + distance * _down(top, bottom)


# Other ways people join a 1's flag and stem: the stem bowed, the flag a stroke of its own
# (stopping short of the stem's top or overshooting it), a small hook where the pen lands, the pen
# carrying on past the flag and turning down into the stem. benchmarks/flagged_ones.py measures each; no
# model trains on them (``TrainConfig.varied_flag_share`` 0: a candidate with half its flags so
# drawn missed its bar, docs/training.md, "Flagged 1s, compared on validation").
def _bowed_stem(j: _Jitter, start, flag, top, bottom) -> list[np.ndarray]:
    side = 1 if j.uniform(0, 1) < 0.5 else -1
    return [_joined(flag, _bent(top, bottom, side * j.uniform(0.06, 0.14))[1:])]


def _lifted_flag(j: _Jitter, start, flag, top, bottom) -> list[np.ndarray]:
    # The flag drawn anew, with a bend of its own, to where the pen lifts: up to 0.06 short of the
    # stem's top or 0.04 past it, up and to the right.
    ahead = np.subtract(top, start) / np.hypot(*np.subtract(top, start))
    tip = np.array(top) + j.uniform(-0.06, 0.04) * ahead
    return [_bent(start, tuple(tip), j.uniform(-0.2, 0.2)), _line(top, bottom)]


def _hooked_start(j: _Jitter, start, flag, top, bottom) -> list[np.ndarray]:
    # A hook where the pen lands: a 160-degree arc of radius 0.04-0.09 ending where the flag starts.
    radius, turn = j.uniform(0.04, 0.09), j.uniform(60, 140)
    hook = _arc(start[0] + radius, start[1], radius, radius, turn + 180, turn + 340)[::-1]
    hook = hook - hook[-1] + np.array(start)
    return [_joined(hook, flag[1:], _line(top, bottom)[1:])]


def _arched_top(j: _Jitter, start, flag, top, bottom) -> list[np.ndarray]:
    # The pen leaves the flag 0.03-0.08 before the top, carries on along it and turns down onto
    # the stem 0.08-0.2 below the top (a cubic Bezier curve): over the corner about half the time,
    # a smooth turn otherwise.
    leave = _leave(flag, j.uniform(0.03, 0.08))
    heading = (leave[-1] - leave[-2]) / np.hypot(*(leave[-1] - leave[-2]))
    join = _below(top, bottom, j.uniform(0.08, 0.2))
    lift = j.uniform(0.08, 0.2)
    p0, p1, p2, p3 = leave[-1], leave[-1] + lift * heading, join - lift * _down(top, bottom), join
    t = np.linspace(0, 1, 12)[1:, None]
    arch = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
    return [_joined(leave, arch, _line(tuple(join), bottom)[1:])]


_CONSTRUCTED = {
    "bowed stem": _bowed_stem,
    "lifted flag": _lifted_flag,
    "hooked start": _hooked_start,
    "arched top": _arched_top,
}
FLAG_CONSTRUCTIONS: tuple[str, ...] = tuple(_CONSTRUCTED)


def _print_digits() -> dict[tuple[int, str], object]:
    """Lines and elliptical arcs (and the curves of a 1's flag)."""

    def oval(j: _Jitter) -> list[np.ndarray]:
        start = j.uniform(-120, -60)
        return [_arc(0.3, 0.5, j(0.28), 0.5, start, start - 360 - j.uniform(-15, 40))]

    def one(j: _Jitter, flag: bool, base: bool) -> list[np.ndarray]:
        top, bottom = j.point(0.35, 0.0), (j(0.35), 1.0)
        strokes = [_line(top, bottom)]
        if flag:
            strokes = _flagged_stem(j, top, bottom)
        if base:
            half, off_centre = j.uniform(0.1, 0.28), j.uniform(-0.08, 0.08)
            middle = bottom[0] + off_centre
            strokes.append(_line((middle - half, j(1.0, 0.5)), (middle + half, j(1.0, 0.5))))
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
