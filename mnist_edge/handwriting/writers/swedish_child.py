"""Simulated handwriting: a 9-year-old Swedish schoolchild's digits, written in pencil.

Pure numpy.  Coordinates: x to the right, y pointing DOWN, digit roughly 1 unit tall
(top near y=0, baseline near y=1).  The shapes follow the digits taught in Swedish primary
school: a 1 with an up-stroke flag and no foot, an open 4, a 7 normally without a crossbar,
a 9 made as a ring with a straight stem, a 5 whose top bar is added last, a flat-based 2.
"""

import numpy as np

DESCRIPTION = (
    "A 9-year-old Swedish schoolchild doing arithmetic homework in pencil in a squared maths "
    "notebook, writing large, wobbly, unevenly proportioned school digits (flagged 1 without a "
    "foot, open 4, uncrossed 7, ring-and-straight-stem 9)."
)

_STEP = 0.02  # target spacing of generated points


# ----------------------------------------------------------------------------- primitives
def _poly(pts):
    """Straight segments through pts, densely sampled (sharp corners kept)."""
    points = np.asarray(pts, float)
    out = [points[:1]]
    for a, b in zip(points[:-1], points[1:], strict=True):
        m = max(2, int(np.ceil(np.linalg.norm(b - a) / _STEP)))
        t = np.linspace(0.0, 1.0, m + 1)[1:, None]
        out.append(a + (b - a) * t)
    return np.vstack(out)


def _spline(pts):
    """Smooth Catmull-Rom curve through pts (centripetal-ish via uniform + dense sampling)."""
    points = np.asarray(pts, float)
    if len(points) < 3:
        return _poly(points)
    points = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    out = [points[1:2]]
    for i in range(1, len(points) - 2):
        p0, p1, p2, p3 = points[i - 1], points[i], points[i + 1], points[i + 2]
        m = max(3, int(np.ceil(np.linalg.norm(p2 - p1) / _STEP)))
        t = np.linspace(0.0, 1.0, m + 1)[1:, None]
        t2, t3 = t * t, t * t * t
        seg = 0.5 * (
            (2 * p1)
            + (-p0 + p2) * t
            + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
            + (-p0 + 3 * p1 - 3 * p2 + p3) * t3
        )
        out.append(seg)
    return np.vstack(out)


def _loop(rng, cx, cy, rx, ry, a0, a1):
    """Elliptic arc from angle a0 to a1 (degrees; y down, so increasing angle = clockwise on
    the page), with the radius wandering a little as a child's round shapes do."""
    n = max(8, int(abs(np.radians(a1 - a0)) * max(rx, ry) / _STEP) + 1)
    a = np.radians(np.linspace(a0, a1, n))
    k1, k2 = rng.normal(0, 0.06, 2)
    ph1, ph2 = rng.uniform(0, 2 * np.pi, 2)
    r = 1.0 + k1 * np.sin(a + ph1) + k2 * np.sin(2 * a + ph2)
    return np.column_stack([cx + rx * r * np.cos(a), cy + ry * r * np.sin(a)])


def _join(*parts):
    parts = [np.asarray(p, float) for p in parts]
    out = [parts[0]]
    for p in parts[1:]:
        if np.linalg.norm(p[0] - out[-1][-1]) < 1e-9:
            p = p[1:]
        out.append(p)
    return np.vstack(out)


def _arclen(s):
    d = np.linalg.norm(np.diff(s, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(d)])


def _wobble(s, rng, amp):
    """Slow pencil wander plus a faint tremor, as a function of distance along the stroke."""
    dist = _arclen(s)
    off = np.zeros_like(s)
    for _ in range(3):
        f = rng.uniform(1.0, 4.0)  # cycles per unit of path length
        ph = rng.uniform(0, 2 * np.pi, 2)
        a = amp * rng.uniform(0.4, 1.0)
        off[:, 0] += a * np.sin(2 * np.pi * f * dist + ph[0])
        off[:, 1] += a * np.sin(2 * np.pi * f * dist + ph[1])
    f = rng.uniform(6.0, 10.0)
    ph = rng.uniform(0, 2 * np.pi, 2)
    t = amp * 0.15
    off[:, 0] += t * np.sin(2 * np.pi * f * dist + ph[0])
    off[:, 1] += t * np.sin(2 * np.pi * f * dist + ph[1])
    return s + off


def _extend(s, length, at_end=True):
    """Overshoot: continue the stroke a little along its tangent."""
    if length <= 0 or len(s) < 3:
        return s
    d = s[-1] - s[-3] if at_end else s[0] - s[2]
    n = np.linalg.norm(d)
    if n < 1e-9:
        return s
    d = d / n
    m = max(2, int(np.ceil(length / _STEP)))
    t = np.linspace(0, length, m + 1)[1:, None]
    if at_end:
        return np.vstack([s, s[-1] + d * t])
    return np.vstack([(s[0] + d * t)[::-1], s])


def _trim(s, length, at_end=True):
    """Stop short (a gap where the child lifted early)."""
    if length <= 0:
        return s
    dist = _arclen(s)
    keep = dist[-1] - length >= dist if at_end else length <= dist
    if keep.sum() < 3:
        return s
    return s[keep]


# ----------------------------------------------------------------------------- digits
def _d0(rng, uniform, jitter):
    cx, cy = 0.3, 0.5
    rx = uniform(0.22, 0.33)
    ry = 0.5
    a0 = -90 + uniform(-15, 35)  # starts at the top, a bit right of centre
    close = uniform(-30, 40)  # <0: gap at the top, >0: overlap past the start
    s = _loop(rng, cx, cy, rx, ry, a0, a0 - 360 - close)  # anticlockwise on the page
    # children's zeros are often egg-shaped: fatter at the bottom or top
    egg = uniform(-0.12, 0.12)
    s[:, 0] = cx + (s[:, 0] - cx) * (1 + egg * (s[:, 1] - 0.5) * 2)
    return [s]


def _d1(rng, uniform, jitter):
    top = np.array([0.5 + uniform(-0.02, 0.02), 0.0])
    fdx = uniform(0.12, 0.26)
    flag = top + [-fdx, min(0.32, fdx * uniform(1.0, 1.6))]  # the flag rises steeply, never like a 7's bar
    bot = np.array([top[0] + uniform(-0.04, 0.03), 1.0 + uniform(-0.02, 0.03)])
    if rng.random() < 0.2:  # flag slightly curved, like a hook
        mid = (flag + top) / 2 + [uniform(-0.03, 0.0), -uniform(0.0, 0.04)]
        up = _spline([flag, mid, top])
    else:
        up = _poly([flag, top])
    s = _join(up, _poly([top, bot]))
    out = [s]
    if rng.random() < 0.08:  # now and then a foot is added (copying a printed 1)
        y = bot[1] + uniform(-0.01, 0.02)
        out.append(_poly([[bot[0] - uniform(0.12, 0.2), y], [bot[0] + uniform(0.12, 0.2), y]]))
    return out


def _d2(rng, uniform, jitter):
    w = uniform(0.5, 0.68)
    bump = uniform(0.25, 0.42)  # how far down the round top reaches
    pts = [
        [0.04, uniform(0.16, 0.3)],
        [0.14 + jitter(), 0.03 + jitter()],
        [w * 0.55 + jitter(), 0.0],
        [w * 0.95 + jitter(), 0.1 + jitter()],
        [w + jitter(), bump],
        [w * 0.6 + jitter(), 0.62 + jitter()],
    ]
    corner = np.array([uniform(0.0, 0.08), 1.0 + uniform(-0.03, 0.02)])
    right = np.array([w + uniform(0.0, 0.12), corner[1] + uniform(-0.05, 0.03)])
    curve = _spline(pts + [corner])
    if rng.random() < 0.12:
        # a small loop at the bottom-left corner
        loop = _spline([corner, corner + [0.07, -0.06], corner + [0.1, 0.0], corner + [0.08, 0.02]])
        base = _poly([loop[-1], right])
        return [_join(curve, loop, base)]
    base = _spline([corner, (corner + right) / 2 + [0, uniform(-0.025, 0.025)], right])
    return [_join(curve, base)]


def _d3(rng, uniform, jitter):
    w = uniform(0.48, 0.62)
    my = uniform(0.4, 0.52)  # height of the middle cusp
    mx = uniform(0.18, 0.32)
    topw = w * uniform(0.8, 1.0)  # top bump usually a little smaller
    upper = _spline(
        [
            [0.04, uniform(0.08, 0.2)],
            [0.25 + jitter(), 0.0],
            [topw + jitter(), 0.08 + jitter()],
            [topw + jitter(), my * 0.6],
            [mx, my],
        ]
    )
    lower = _spline(
        [
            [mx, my],
            [w * 0.8 + jitter(), my + 0.08],
            [w + jitter(), my + (1 - my) * 0.55],
            [w * 0.65 + jitter(), 0.98],
            [0.25 + jitter(), 1.0],
            [0.0 + jitter(), uniform(0.82, 0.92)],
        ]
    )
    if rng.random() < 0.2:  # lifts the pencil at the middle and starts again
        return [upper, _extend(lower, uniform(0.0, 0.02), at_end=False)]
    return [_join(upper, lower)]


def _d4(rng, uniform, jitter):
    bary = uniform(0.56, 0.72)  # height of the crossbar
    vx = uniform(0.38, 0.5)  # where the upright stands
    right = vx + uniform(0.12, 0.25)
    if rng.random() < 0.82:
        # Swedish school 4: open top.  Stroke 1 down-and-across, stroke 2 the upright.
        tl = np.array([uniform(0.06, 0.22), uniform(0.0, 0.08)])
        bl = np.array([uniform(-0.04, 0.06), bary + uniform(-0.02, 0.02)])
        s1 = _poly([tl, bl, [right, bary + uniform(-0.04, 0.03)]])
        s2 = _poly([[vx + uniform(-0.03, 0.03), uniform(0.08, 0.3)], [vx + uniform(-0.04, 0.03), 1.0]])
    else:
        # occasionally the closed, printed-looking 4
        top = np.array([vx, 0.0])
        s1 = _poly([top, [uniform(-0.04, 0.04), bary], [right, bary + uniform(-0.03, 0.03)]])
        s2 = _poly([top + [uniform(-0.02, 0.04), uniform(-0.02, 0.06)], [vx + uniform(-0.04, 0.03), 1.0]])
    return [s1, s2]


def _d5(rng, uniform, jitter):
    w = uniform(0.5, 0.64)
    stem_top = np.array([uniform(0.06, 0.14), uniform(0.0, 0.04)])
    knee = np.array([stem_top[0] + uniform(-0.07, 0.0), uniform(0.38, 0.5)])
    belly = _spline(
        [
            knee,
            [0.25 + jitter(), knee[1] - 0.07],
            [w * 0.85 + jitter(), knee[1] + 0.0],
            [w + jitter(), 0.72],
            [w * 0.75 + jitter(), 0.96],
            [0.3 + jitter(), 1.0],
            [0.0 + jitter(), uniform(0.84, 0.94)],
        ]
    )
    bar_end = np.array([w + uniform(-0.04, 0.1), uniform(-0.03, 0.04)])
    if rng.random() < 0.2:
        # one stroke: bar first (right to left), then down and round
        s = _join(_poly([bar_end, stem_top, knee]), belly)
        return [s]
    s1 = _join(_poly([stem_top, knee]), belly)
    # the flag is added last: often not quite touching, or poking out left
    start = stem_top + [uniform(-0.04, 0.05), uniform(-0.03, 0.03)]
    s2 = _spline([start, (start + bar_end) / 2 + [0, uniform(-0.03, 0.01)], bar_end])
    return [s1, s2]


def _d6(rng, uniform, jitter):
    w = uniform(0.5, 0.62)
    ly = uniform(0.45, 0.6)  # top of the loop
    pts = [
        [w * uniform(0.8, 1.0), uniform(0.0, 0.06)],
        [w * 0.45 + jitter(), 0.05 + jitter()],
        [0.1 + jitter(), 0.32 + jitter()],
        [0.02 + jitter(), 0.66],
        [0.12 + jitter(), 0.92],
        [0.34 + 0.5 * jitter(), 1.0],
        [w * 0.92 + 0.5 * jitter(), 0.9],
        [w + 0.5 * jitter(), (ly + 1) / 2],
        [w * 0.6 + 0.5 * jitter(), ly],
        [0.2 + 0.5 * jitter(), ly + 0.08],
        [uniform(0.08, 0.16), uniform(0.7, 0.8)],
    ]
    return [_spline(pts)]


def _d7(rng, uniform, jitter):
    w = uniform(0.5, 0.66)
    tl = np.array([uniform(0.0, 0.06), uniform(0.0, 0.06)])
    tr = np.array([w, uniform(-0.03, 0.03)])
    foot = np.array([uniform(0.12, 0.3), 1.0])
    mid = (tr + foot) / 2 + [uniform(-0.04, 0.03), 0.0]
    head = _poly([tl, tr])
    if rng.random() < 0.2:  # small tick down at the start of the bar
        head = _join(_poly([tl + [uniform(-0.02, 0.02), uniform(0.1, 0.16)], tl]), head)
    s = _join(head, _spline([tr, mid, foot]))
    out = [s]
    if rng.random() < 0.15:  # sometimes crossed after all
        y = uniform(0.45, 0.58)
        xc = tr[0] + (foot[0] - tr[0]) * (y - tr[1]) / (foot[1] - tr[1])
        out.append(
            _poly(
                [
                    [xc - uniform(0.12, 0.2), y + uniform(-0.02, 0.02)],
                    [xc + uniform(0.1, 0.18), y + uniform(-0.02, 0.02)],
                ]
            )
        )
    return out


def _d8(rng, uniform, jitter):
    w = uniform(0.5, 0.62)
    cy = uniform(0.4, 0.5)  # waist
    cx = w / 2 + uniform(-0.03, 0.03)
    if rng.random() < 0.25:
        # "snowman": two separate rings, the top one smaller
        tr = uniform(0.7, 0.9)
        ry1 = cy / 2
        ry2 = (1 - cy) / 2
        a = uniform(-110, -60)
        s1 = _loop(rng, cx, ry1, w / 2 * tr, ry1, a, a - 360 - uniform(-10, 30))
        b = uniform(-110, -60)
        s2 = _loop(rng, cx + uniform(-0.03, 0.03), cy + ry2, w / 2, ry2, b, b - 360 - uniform(-10, 30))
        return [s1, s2]
    tw = w * uniform(0.75, 0.95)
    off = (w - tw) / 2
    pts = [
        [off + tw * 0.9 + 0.6 * jitter(), 0.1],
        [off + tw * 0.5 + 0.6 * jitter(), 0.0],
        [off + tw * 0.08 + 0.6 * jitter(), 0.1],
        [off + tw * 0.1 + 0.6 * jitter(), cy * 0.65],
        [cx, cy],
        [w * 0.92 + 0.6 * jitter(), cy + (1 - cy) * 0.35],
        [w * 0.9 + 0.6 * jitter(), 0.9],
        [w * 0.5 + 0.6 * jitter(), 1.0],
        [w * 0.06 + 0.6 * jitter(), 0.9],
        [w * 0.08 + 0.6 * jitter(), cy + (1 - cy) * 0.35],
        [cx, cy],
        [off + tw * 0.95 + 0.6 * jitter(), cy * 0.55],
        [off + tw * uniform(0.8, 1.0), uniform(0.04, 0.14)],
    ]
    return [_spline(pts)]


def _d9(rng, uniform, jitter):
    w = uniform(0.48, 0.62)
    ringb = uniform(0.42, 0.58)  # bottom of the ring
    sx = w + uniform(-0.02, 0.03)
    ring = _spline(
        [
            [sx, uniform(0.14, 0.24)],
            [w * 0.65 + jitter(), 0.0],
            [w * 0.2 + jitter(), 0.03],
            [0.0 + jitter(), ringb * 0.5],
            [w * 0.3 + jitter(), ringb],
            [w * 0.8 + jitter(), ringb * 0.85],
            [sx, ringb * 0.45],
        ]
    )
    foot = np.array([sx + uniform(-0.07, 0.02), 1.0])
    if rng.random() < 0.2:
        # ring first, then the stem drawn separately from the top
        ring = _extend(ring, uniform(0.0, 0.08))
        stem = _poly([[sx + uniform(-0.02, 0.03), uniform(0.0, 0.1)], foot])
        return [ring, stem]
    top = np.array([sx + uniform(-0.02, 0.02), uniform(0.0, 0.08)])
    return [_join(ring, _poly([ring[-1], top, foot])[1:])]


_DIGITS = [_d0, _d1, _d2, _d3, _d4, _d5, _d6, _d7, _d8, _d9]


# ----------------------------------------------------------------------------- public API
def strokes(digit: int, rng: np.random.Generator) -> list:
    """Pen strokes of one drawing of ``digit`` (0-9) by this person: each an (N, 2) float array
    of (x, y) points along the pen's path, y pointing DOWN, the digit roughly 1 unit tall; the
    pen is lifted between strokes. Each call varies as one person's writing does. All randomness
    from rng."""
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be an integer 0-9, got {digit!r}")
    digit = int(digit)

    def uniform(a, b):
        return float(rng.uniform(a, b))

    jit = uniform(0.018, 0.042)  # how carefully the child is writing today

    def jitter():
        return float(rng.normal(0.0, jit))

    parts = _DIGITS[digit](rng, uniform, jitter)

    out = []
    amp = uniform(0.004, 0.011)
    for s in parts:
        s = np.asarray(s, float)
        r = rng.random()
        if r < 0.15:
            s = _extend(s, uniform(0.02, 0.07))  # overshoot at the end
        elif r < 0.22:
            s = _trim(s, uniform(0.02, 0.05))  # lifted a bit early
        s = _wobble(s, rng, amp)
        out.append(s)

    # a retraced stroke: the child goes over part of a stroke again to make it darker/fix it
    if rng.random() < 0.06:
        k = int(rng.integers(len(out)))
        s = out[k]
        n = len(s)
        i0 = int(rng.integers(0, max(1, n // 2)))
        i1 = min(n, i0 + max(4, int(n * uniform(0.3, 0.7))))
        seg = s[i0:i1] + rng.normal(0, 0.012, 2)
        if len(seg) >= 2:
            out.append(_wobble(seg, rng, amp))

    # this child's own geometry: mostly upright with a slight, variable right slant,
    # sometimes leaning back; digits a bit wide; small tilt.
    slant = float(rng.normal(0.06, 0.07))
    wscale = float(rng.normal(1.02, 0.08))
    hscale = float(rng.normal(1.0, 0.04))
    rot = np.radians(rng.normal(0.0, 3.0))
    c, s_ = np.cos(rot), np.sin(rot)
    res = []
    for s in out:
        x = (s[:, 0] - 0.3) * wscale
        y = (s[:, 1] - 0.5) * hscale
        x = x - slant * y
        xr = c * x - s_ * y
        yr = s_ * x + c * y
        arr = np.column_stack([xr + 0.3, yr + 0.5]).astype(float)
        res.append(arr)
    return res
