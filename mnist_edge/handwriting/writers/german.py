"""One German office worker's handwritten digits, as pen strokes.

Pure numpy.  The shapes follow the habits of someone who learned the
"Lateinische Ausgangsschrift" at a West German primary school in the 1980s and
now fills in dates and amounts on forms quickly with a ballpoint pen:

* 1 with a long, straight up-stroke (Anstrich) from lower left into the top,
  then a straight down-stroke; no foot.
* 7 crossed in the middle, usually with a small lead-in tick at the top left.
* 4 open at the top: an L-shaped first stroke, pen lift, long right stem.
* 9 a counter-clockwise head closed back into a straight stem.
* 2 with a flat base, fairly often with a small loop at the bottom left.
* 5 with the flag added last (sometimes written in one go, flag first).
* Whole hand slanted to the right, digits somewhat narrow.
"""

import numpy as np

DESCRIPTION = (
    "A German office worker in their 40s who learned the Lateinische Ausgangsschrift "
    "at a West German primary school and writes dates and amounts quickly with a "
    "ballpoint pen on paper forms (right-slanted, 1 with long up-stroke, crossed 7, "
    "open-top 4)."
)

# ---------------------------------------------------------------- person constants
_SLANT = 0.19  # horizontal shift per unit height (about 11 degrees to the right)
_WIDTH = 0.92  # overall width factor (a slightly narrow hand)
_STEP = 0.012  # resampling step of the pen path


# ---------------------------------------------------------------- geometry helpers
def _catmull(points, n_per=10):
    """Uniform Catmull-Rom spline through ``points`` (k, 2)."""
    points = np.asarray(points, dtype=float)
    if len(points) < 2:
        return points.copy()
    if len(points) == 2:
        t = np.linspace(0.0, 1.0, n_per + 1)[:, None]
        return points[0] * (1 - t) + points[1] * t
    ext = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    t = np.linspace(0.0, 1.0, n_per, endpoint=False)[:, None]
    t2, t3 = t * t, t * t * t
    out = []
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        seg = 0.5 * (
            (2 * p1)
            + (-p0 + p2) * t
            + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
            + (-p0 + 3 * p1 - 3 * p2 + p3) * t3
        )
        out.append(seg)
    out.append(points[-1][None, :])
    return np.vstack(out)


def _path(*parts):
    """Concatenate splined parts; the joints between parts are corners."""
    pieces = []
    for k, part in enumerate(parts):
        c = _catmull(part)
        if k > 0:
            c = c[1:]
        pieces.append(c)
    return np.vstack(pieces)


def _resample(p, step=_STEP):
    d = np.sqrt((np.diff(p, axis=0) ** 2).sum(1))
    s = np.concatenate([[0.0], np.cumsum(d)])
    length = s[-1]
    if length < 1e-9:
        return np.vstack([p[0], p[0] + 1e-3])
    n = max(int(np.ceil(length / step)) + 1, 4)
    u = np.linspace(0.0, length, n)
    return np.stack([np.interp(u, s, p[:, 0]), np.interp(u, s, p[:, 1])], axis=1)


def _gauss_smooth(a, sigma):
    """Gaussian smoothing along axis 0 with edge padding (keeps the ends put)."""
    if sigma < 0.3 or len(a) < 3:
        return a
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.concatenate([np.repeat(a[:1], r, 0), a, np.repeat(a[-1:], r, 0)])
    out = np.empty_like(a)
    for j in range(a.shape[1]):
        out[:, j] = np.convolve(pad[:, j], k, mode="valid")
    return out


# ---------------------------------------------------------------- the digits
# Each builder gets a jitter function jitter(x, y, s=1.0) returning a perturbed point
# and the rng plus a "speed" in [0, 1]; it returns a list of strokes, each a
# list of parts (point arrays) joined by corners.


def _d0(jitter, rng, speed):
    w = rng.normal(1.0, 0.07)
    top = jitter(0.30, 0.02)
    pts = [
        top,
        jitter(0.13 * w, 0.11),
        jitter(0.03, 0.42),
        jitter(0.10, 0.84),
        jitter(0.28 * w, 0.985),
        jitter(0.47 * w, 0.87),
        jitter(0.55 * w, 0.52),
        jitter(0.48 * w, 0.14),
    ]
    # closing: overshoot past the start, or stop just short of it
    close = rng.random()
    if close < 0.55:
        pts += [top + np.array([0.0, -0.005]), top + np.array([-0.09, 0.05]) + rng.normal(0, 0.015, 2)]
    elif close < 0.85:
        pts += [top + np.array([0.02, 0.0])]
    else:
        pts += [top + np.array([0.07, 0.03])]
    return [[np.array(pts)]]


def _d1(jitter, rng, speed):
    top = jitter(0.40, 0.0, 0.6)
    bot = jitter(0.38, 1.0, 0.6)
    habit = rng.random()
    if habit < 0.8:  # the usual long Anstrich
        sy = rng.uniform(0.30, 0.50)
        start = jitter(0.40 - rng.uniform(0.26, 0.36), sy, 0.6)
    elif habit < 0.93:  # a shorter, hastier up-stroke
        sy = rng.uniform(0.18, 0.30)
        start = jitter(0.40 - rng.uniform(0.15, 0.22), sy, 0.5)
    else:  # almost no up-stroke at all
        start = jitter(0.33, 0.07, 0.3)
    mid_up = 0.5 * (start + top) + np.array([0.01, 0.0]) + rng.normal(0, 0.008, 2)
    mid_dn = 0.5 * (top + bot) + rng.normal(0, 0.008, 2)
    return [[np.array([start, mid_up, top]), np.array([top, mid_dn, bot])]]


def _d2(jitter, rng, speed):
    s = jitter(0.05, 0.24)
    pts = [
        s,
        jitter(0.16, 0.06),
        jitter(0.33, 0.0),
        jitter(0.50, 0.08),
        jitter(0.52, 0.27),
        jitter(0.40, 0.48),
        jitter(0.22, 0.70),
    ]
    base_r = jitter(0.58, 0.97 + rng.normal(0, 0.01))
    if rng.random() < 0.3:
        # a loop at the bottom left before the base line
        a = jitter(0.12, 0.82, 0.5)
        loop = [
            jitter(0.04, 0.91, 0.4),
            jitter(-0.03, 0.83, 0.4),
            jitter(0.03, 0.72, 0.4),
            jitter(0.14, 0.77, 0.4),
            jitter(0.16, 0.89, 0.4),
            jitter(0.22, 0.965, 0.4),
        ]
        return [[np.array(pts + [a] + loop), np.array([loop[-1], base_r])]]
    corner = jitter(0.04, 0.97, 0.6)
    return [[np.array(pts + [corner]), np.array([corner, 0.5 * (corner + base_r) + [0, 0.005], base_r])]]


def _d3(jitter, rng, speed):
    mid = jitter(0.20, 0.46)
    upper = [
        jitter(0.04, 0.14),
        jitter(0.20, 0.01),
        jitter(0.40, 0.02),
        jitter(0.50, 0.15),
        jitter(0.44, 0.32),
        mid,
    ]
    lower = [
        mid,
        jitter(0.42, 0.54),
        jitter(0.54, 0.74),
        jitter(0.44, 0.93),
        jitter(0.24, 0.99),
        jitter(0.06, 0.92),
        jitter(0.0, 0.82, 0.6),
    ]
    if rng.random() < 0.3:  # rounded middle instead of a cusp
        return [[np.array(upper[:-1] + [mid + [0.06, 0.0]] + lower[1:])]]
    return [[np.array(upper), np.array(lower)]]


def _d4(jitter, rng, speed):
    lean = rng.uniform(0.0, 0.14)  # how diagonal the first down-stroke is
    t1 = jitter(0.12 + lean, 0.0)
    k = jitter(0.03, 0.62)
    r = jitter(0.60, 0.61)
    stem_x = rng.uniform(0.40, 0.47)
    s_top = jitter(stem_x, rng.uniform(0.02, 0.20))
    s_bot = jitter(stem_x - 0.02, 1.0)
    first = [
        np.array([t1, 0.5 * (t1 + k) + rng.normal(0, 0.006, 2), k]),
        np.array([k, 0.5 * (k + r) + [0.0, 0.005], r]),
    ]
    stem = [np.array([s_top, 0.5 * (s_top + s_bot) + rng.normal(0, 0.006, 2), s_bot])]
    if rng.random() < 0.12:  # hastily: stem first, then the L
        return [stem, first]
    return [first, stem]


def _d5(jitter, rng, speed):
    a = jitter(0.14, 0.03)
    k = jitter(0.09, 0.44)
    bowl = [
        k,
        jitter(0.24, 0.37),
        jitter(0.44, 0.42),
        jitter(0.55, 0.63),
        jitter(0.48, 0.88),
        jitter(0.27, 0.99),
        jitter(0.06, 0.92),
    ]
    f = jitter(0.54, 0.0 + rng.normal(0, 0.015))
    if rng.random() < 0.25:  # one stroke: flag from right to left, then down
        return [[np.array([f, 0.5 * (f + a), a]), np.array([a, 0.5 * (a + k), k]), np.array(bowl)]]
    a2 = a + rng.normal(0, 0.02, 2) + [0.0, -0.01]
    return [
        [np.array([a, 0.5 * (a + k), k]), np.array(bowl)],
        [np.array([a2, 0.5 * (a2 + f) + [0, -0.005], f])],
    ]


def _d6(jitter, rng, speed):
    pts = [
        jitter(0.50, 0.04),
        jitter(0.33, 0.01),
        jitter(0.15, 0.16),
        jitter(0.04, 0.50),
        jitter(0.09, 0.86),
        jitter(0.27, 0.99),
        jitter(0.47, 0.88),
        jitter(0.52, 0.68),
        jitter(0.38, 0.53),
        jitter(0.18, 0.56),
        jitter(0.06, 0.70),
    ]
    return [[np.array(pts)]]


def _d7(jitter, rng, speed):
    tl = jitter(0.04, 0.03)
    tr = jitter(0.58, 0.02)
    bot = jitter(0.22 + rng.normal(0, 0.03), 1.0)
    mid = 0.5 * (tr + bot) + np.array([0.03, 0.0]) + rng.normal(0, 0.01, 2)
    parts = []
    if rng.random() < 0.6:  # small lead-in tick
        tick = tl + np.array([rng.uniform(-0.04, 0.0), rng.uniform(0.08, 0.16)])
        parts.append(np.array([tick, tl]))
    parts.append(np.array([tl, 0.5 * (tl + tr) + [0, rng.normal(0.0, 0.01)], tr]))
    parts.append(np.array([tr, mid, bot]))
    strokes = [parts]
    if rng.random() < 0.93:  # the cross bar (almost always)
        yb = rng.uniform(0.46, 0.56)
        tb = (yb - tr[1]) / (bot[1] - tr[1])
        xc = tr[0] + tb * (bot[0] - tr[0]) + 0.02
        half = rng.uniform(0.17, 0.25)
        c0 = np.array([xc - half * rng.uniform(0.9, 1.2), yb + rng.normal(0.01, 0.012)])
        c1 = np.array([xc + half, yb + rng.normal(-0.01, 0.012)])
        strokes.append([np.array([c0, 0.5 * (c0 + c1), c1])])
    return strokes


def _d8(jitter, rng, speed):
    pts = [
        jitter(0.47, 0.10),
        jitter(0.30, 0.0),
        jitter(0.10, 0.08),
        jitter(0.10, 0.28),
        jitter(0.30, 0.45),
        jitter(0.50, 0.64),
        jitter(0.49, 0.89),
        jitter(0.29, 0.99),
        jitter(0.07, 0.90),
        jitter(0.06, 0.68),
        jitter(0.25, 0.50),
        jitter(0.44, 0.32),
        jitter(0.50, 0.14),
        jitter(0.42, 0.04),
    ]
    return [[np.array(pts)]]


def _d9(jitter, rng, speed):
    c = jitter(0.52, 0.07, 0.6)
    head = [
        jitter(0.50, 0.14),
        jitter(0.34, 0.02),
        jitter(0.13, 0.07),
        jitter(0.05, 0.26),
        jitter(0.17, 0.44),
        jitter(0.38, 0.43),
        jitter(0.52, 0.27),
        c,
    ]
    b = jitter(0.40 + rng.normal(0, 0.03), 1.0)
    stem = np.array([c, 0.5 * (c + b) + [0.015, 0.0] + rng.normal(0, 0.008, 2), b])
    if rng.random() < 0.15:  # occasionally a slight hook at the foot
        stem = np.array([c, 0.55 * c + 0.45 * b + [0.01, 0], b + [0.0, -0.04], b + [-0.06, 0.0]])
    return [[np.array(head), stem]]


_BUILDERS = [_d0, _d1, _d2, _d3, _d4, _d5, _d6, _d7, _d8, _d9]


# ---------------------------------------------------------------- public function
def strokes(digit, rng):
    """Pen strokes of one drawing of ``digit`` (0-9) by this person: each an (N, 2)
    float array of (x, y) points along the pen's path, y pointing DOWN, the digit
    roughly 1 unit tall; the pen is lifted between strokes.  Each call varies as one
    person's writing does.  All randomness from rng."""
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be an integer 0-9, got {digit!r}")
    digit = int(digit)

    speed = rng.beta(2.0, 2.0)  # 0 = careful, 1 = hurried
    sloppy = 0.010 + 0.018 * speed  # control point scatter
    # correlated deformation of the whole figure (proportions)
    top_w = rng.normal(1.0, 0.06)  # width of upper half
    bot_w = rng.normal(1.0, 0.06)  # width of lower half
    mid_y = rng.normal(0.0, 0.025)  # where the waist sits

    def jitter(x, y, s=1.0):
        p = np.array([x, y], dtype=float)
        p += rng.normal(0.0, sloppy * s, 2)
        wy = top_w if p[1] < 0.5 else bot_w
        p[0] = 0.28 + (p[0] - 0.28) * wy
        p[1] += mid_y * np.sin(np.pi * np.clip(p[1], 0, 1))
        return p

    raw = _BUILDERS[digit](jitter, rng, speed)

    slant = _SLANT + rng.normal(0.0, 0.055) + 0.04 * (speed - 0.5)
    width = _WIDTH * rng.normal(1.0, 0.06) * (1.0 + 0.06 * (speed - 0.5))
    rot = rng.normal(0.0, 0.02)
    ca, sa = np.cos(rot), np.sin(rot)
    smooth = 0.6 + 1.6 * speed  # in resampled points: rounds corners
    tremor = rng.uniform(0.002, 0.006)

    out = []
    for parts in raw:
        p = _resample(_path(*parts))
        p = _gauss_smooth(p, smooth)
        # small tremor: smooth low-amplitude noise along the path
        n = rng.normal(0.0, 1.0, p.shape)
        n = _gauss_smooth(n, 3.0)
        sd = n.std()
        if sd > 1e-9:
            p = p + n / sd * tremor
        x = p[:, 0] * width
        y = p[:, 1]
        x = x + slant * (1.0 - y)
        q = np.stack([ca * x - sa * y, sa * x + ca * y], axis=1)
        out.append(np.ascontiguousarray(q, dtype=float))
    return out
