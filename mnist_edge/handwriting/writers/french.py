"""One French teacher's handwritten digits, simulated as pen strokes (pure numpy).

The hand: a French secondary-school teacher in their 30s who learned "écriture scolaire" on
Seyès-ruled notebooks and now writes marks, dates and page numbers quickly with a fountain pen
or a felt-tip.  National habits built in:

* 1 -- a long, steep up-flag from about mid-height to the top, then a straight down-stroke; no foot.
* 7 -- a flat top bar (often begun with a tiny upward tick), a long slightly curved diagonal,
  and a short horizontal bar across the middle, added as a second stroke.
* 4 -- the open French 4: a slanted "L" (down-left then across) and a separate, taller
  vertical stem that cuts the crossbar; sometimes the closed, triangular form.
* 9 -- a round head drawn anticlockwise, then a straight stem (sometimes hooked to the left).
* 2 -- the swan 2, very often with the small school loop where the diagonal meets the base.
* 5 -- stem and belly first, the flag added last (sometimes all in one go).
* 3, 6, 8, 0 -- rounded cursive forms; 8 in one S-like stroke.

Writing is right-slanted (about 12 degrees) and varies from one time to the next in slant,
width, speed (rounder corners when fast), tremor and, now and then, a different habit for a
digit.  All randomness comes from the ``rng`` passed in.
"""

import numpy as np

DESCRIPTION = (
    "A French secondary-school teacher in their 30s, schooled in Seyès-notebook 'écriture scolaire', "
    "writing marks, dates and page numbers quickly with a fountain pen or felt-tip in right-slanted "
    "digits: 1 with a long up-flag, crossed 7, open 4, looped 2 and straight-stemmed 9."
)

_SPACING = 0.008  # internal dense spacing (units of digit height)


# ----------------------------------------------------------------------------- geometry helpers
def _catmull(points, spacing=_SPACING):
    """Centripetal Catmull-Rom curve through the control ``points`` (k, 2)."""
    points = np.asarray(points, dtype=float)
    if len(points) < 2:
        raise ValueError("need at least two points")
    if len(points) == 2:
        n = max(2, int(np.linalg.norm(points[1] - points[0]) / spacing) + 1)
        t = np.linspace(0.0, 1.0, n)[:, None]
        return points[0] * (1 - t) + points[1] * t
    ext = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    out = []
    nseg = len(points) - 1
    for i in range(nseg):
        p0, p1, p2, p3 = ext[i], ext[i + 1], ext[i + 2], ext[i + 3]
        d01 = max(np.linalg.norm(p1 - p0), 1e-6) ** 0.5
        d12 = max(np.linalg.norm(p2 - p1), 1e-6) ** 0.5
        d23 = max(np.linalg.norm(p3 - p2), 1e-6) ** 0.5
        t0, t1 = 0.0, d01
        t2 = t1 + d12
        t3 = t2 + d23
        n = max(2, int(np.linalg.norm(p2 - p1) / spacing) + 1)
        t = np.linspace(t1, t2, n, endpoint=(i == nseg - 1))[:, None]
        a1 = (t1 - t) / (t1 - t0) * p0 + (t - t0) / (t1 - t0) * p1
        a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
        a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
        b1 = (t2 - t) / (t2 - t0) * a1 + (t - t0) / (t2 - t0) * a2
        b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
        c = (t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2
        out.append(c)
    return np.vstack(out)


def _stroke(pieces):
    """Join pieces (each a list of control points) into one polyline; joins are sharp corners."""
    parts = []
    for j, piece in enumerate(pieces):
        c = _catmull(piece)
        parts.append(c if j == 0 else c[1:])
    return np.vstack(parts)


def _arclen(p):
    d = np.linalg.norm(np.diff(p, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(d)])


def _resample(p, spacing):
    s = _arclen(p)
    length = s[-1]
    if length < 1e-9:
        return np.vstack([p[0], p[0] + [1e-3, 0.0]])
    n = max(2, int(np.ceil(length / spacing)) + 1)
    u = np.linspace(0.0, length, n)
    return np.column_stack([np.interp(u, s, p[:, 0]), np.interp(u, s, p[:, 1])])


def _smooth(p, w):
    """Moving average (window w points), endpoints kept: rounds corners as a fast hand does."""
    if w < 2 or len(p) < w + 2:
        return p
    k = np.ones(w) / w
    pad = w // 2
    q = np.pad(p, ((pad, w - 1 - pad), (0, 0)), mode="edge")
    return np.column_stack([np.convolve(q[:, 0], k, "valid"), np.convolve(q[:, 1], k, "valid")])


def _ellipse(cx, cy, rx, ry, a0, a1, n=None):
    """Points on an ellipse; angles in degrees, 90 = top, increasing = anticlockwise on paper."""
    if n is None:
        n = max(8, int(abs(a1 - a0) / 8))
    t = np.radians(np.linspace(a0, a1, n))
    return np.column_stack([cx + rx * np.cos(t), cy - ry * np.sin(t)])


# ----------------------------------------------------------------------------- the digits
# Coordinates: x to the right, y DOWN, top of digit at y=0, baseline at y=1, upright (the
# personal slant is applied afterwards).  Each digit returns a list of strokes, each stroke a
# list of pieces (control-point lists) joined with sharp corners.


def _d0(r, s):
    rx = r.uniform(0.21, 0.28) * s["wide"]
    a0 = r.uniform(65, 100)
    sweep = r.uniform(352, 392)
    n = 72
    t = np.radians(np.linspace(a0, a0 + sweep, n))
    egg = r.uniform(-0.04, 0.14)  # narrower at the top
    shrink = r.uniform(0.0, 0.08)  # end spirals slightly inside the start
    f = 1.0 - shrink * np.linspace(0, 1, n) ** 2
    x = 0.3 + rx * np.cos(t) * (1 - egg * np.sin(t)) * f
    y = 0.5 - 0.5 * np.sin(t) * (1 - 0.3 * shrink * np.linspace(0, 1, n) ** 2)
    return [[np.column_stack([x, y])]]


def _d1(r, s):
    top = np.array([0.34, 0.0])
    bottom = np.array([0.34 + r.uniform(-0.03, 0.01), 1.0])
    # now and then: just a short tick of a flag
    flag_len = r.uniform(0.14, 0.22) if r.random() < 0.06 else r.uniform(0.28, 0.46)
    ang = np.radians(r.uniform(34, 56))  # angle of the flag from the vertical
    start = top + flag_len * np.array([-np.sin(ang), np.cos(ang)])
    mid = (start + top) / 2 + r.uniform(-0.005, 0.025) * np.array([np.cos(ang), np.sin(ang)])
    stem_mid = (top + bottom) / 2 + [r.uniform(-0.012, 0.012), 0.0]
    return [[[start, mid, top], [top, stem_mid, bottom]]]


def _d2(r, s):
    w = s["wide"]
    h = r.uniform(0.0, 0.06)  # size of the upper hook
    pts = [
        [0.05, 0.24 + h],
        [0.12, 0.07],
        [0.29, 0.0],
        [0.46, 0.07],
        [0.5 * w + 0.02, 0.26],
        [0.41, 0.48],
        [0.24, 0.70],
    ]
    base_y = r.uniform(0.95, 1.0)
    end_x = r.uniform(0.52, 0.64) * w
    if r.random() < 0.62:  # the school loop at the bottom
        ls = r.uniform(0.75, 1.15)
        crossing = np.array([0.17, 0.9])
        rel = np.array(
            [[-0.06, 0.085], [-0.14, 0.06], [-0.17, -0.03], [-0.13, -0.12], [-0.05, -0.12], [-0.01, -0.06]]
        )
        loop = [crossing + v * [ls, ls * r.uniform(0.85, 1.1)] for v in rel]
        tail = [
            [crossing[0] + 0.03, crossing[1] + 0.04],
            [crossing[0] + 0.1, base_y - 0.01],
            [0.36, base_y + 0.005],
            [end_x, base_y - r.uniform(0.0, 0.04)],
        ]
        return [[pts + [list(crossing)] + [list(v) for v in loop] + tail]]
    corner = [r.uniform(0.0, 0.05), base_y]
    return [
        [
            pts + [corner],
            [corner, [0.3, base_y + r.uniform(-0.01, 0.02)], [end_x, base_y - r.uniform(0.0, 0.04)]],
        ]
    ]


def _d3(r, s):
    w = s["wide"]
    mx = r.uniform(0.17, 0.28)
    my = r.uniform(0.42, 0.5)
    upper = [
        [0.04, 0.16 + r.uniform(-0.03, 0.05)],
        [0.16, 0.03],
        [0.32, 0.0],
        [0.46 * w + 0.02, 0.1],
        [0.44 * w + 0.02, 0.28],
        [mx + 0.06, my - 0.05],
        [mx, my],
    ]
    lower = [
        [mx, my],
        [0.38, my + 0.04],
        [0.52 * w + 0.01, 0.66],
        [0.5 * w, 0.86],
        [0.33, 0.99],
        [0.14, 0.98],
        [0.02, 0.87 + r.uniform(-0.04, 0.03)],
    ]
    if r.random() < 0.3:  # smoother, rounded middle
        return [[upper[:-1] + lower[1:]]]
    return [[upper, lower]]


def _d4(r, s):
    w = s["wide"]
    bar_y = r.uniform(0.58, 0.7)
    stem_x = r.uniform(0.4, 0.47)
    right = stem_x + r.uniform(0.12, 0.22) * w
    if r.random() < 0.8:  # open French 4
        tx = r.uniform(0.14, 0.26)
        ty = r.uniform(0.0, 0.08)
        lx = r.uniform(-0.02, 0.05)
        s1 = [
            [[tx, ty], [(tx + lx) / 2 - 0.005, (ty + bar_y) / 2], [lx, bar_y]],
            [[lx, bar_y], [right, bar_y - r.uniform(0.0, 0.04)]],
        ]
        stem_top = [stem_x + r.uniform(0.0, 0.03), r.uniform(-0.02, 0.14)]
    else:  # closed, triangular 4
        stem_top = [stem_x, 0.0]
        lx = r.uniform(-0.02, 0.04)
        s1 = [[stem_top, [lx, bar_y]], [[lx, bar_y], [right, bar_y - r.uniform(0.0, 0.03)]]]
    stem_bot = [stem_top[0] - r.uniform(0.0, 0.03), 1.0]
    s2 = [[stem_top, [(stem_top[0] + stem_bot[0]) / 2 + r.uniform(-0.01, 0.01), 0.5], stem_bot]]
    return [s1, s2]


def _d5(r, s):
    w = s["wide"]
    sx, sy = r.uniform(0.1, 0.16), r.uniform(0.0, 0.04)
    kx, ky = sx - r.uniform(0.0, 0.05), r.uniform(0.4, 0.5)
    belly = [
        [kx, ky],
        [kx + 0.14, ky - 0.06],
        [0.38 * w + 0.06, ky - 0.03],
        [0.52 * w + 0.02, ky + 0.17],
        [0.5 * w + 0.01, 0.84],
        [0.32, 0.99],
        [0.13, 0.98],
        [0.01, 0.88 + r.uniform(-0.04, 0.04)],
    ]
    bar_end = [r.uniform(0.48, 0.6) * w, sy - r.uniform(0.0, 0.05)]
    if r.random() < 0.2:  # one stroke: flag first, right to left
        return [[[bar_end, [sx, sy]], [[sx, sy], [kx, ky]], belly]]
    stem = [[sx, sy], [kx, ky]]
    bar_start = [sx + r.uniform(-0.02, 0.03), sy + r.uniform(-0.01, 0.02)]
    return [
        [stem, belly],
        [[bar_start, [(bar_start[0] + bar_end[0]) / 2, min(bar_start[1], bar_end[1]) - 0.008], bar_end]],
    ]


def _d6(r, s):
    w = s["wide"]
    ly = r.uniform(0.5, 0.6)  # top of the small loop
    pts = [
        [0.46 * w + 0.02, 0.03 + r.uniform(0.0, 0.05)],
        [0.3, 0.06],
        [0.14, 0.3],
        [0.05, 0.6],
        [0.09, 0.86],
        [0.26, 0.99],
        [0.44 * w + 0.03, 0.92],
        [0.5 * w + 0.01, 0.74 + (ly - 0.55) * 0.5],
        [0.38, ly],
        [0.2, ly + 0.01],
        [0.08, 0.68 + (ly - 0.55)],
        [r.uniform(0.05, 0.1), 0.78],
    ]
    if r.random() < 0.4:
        pts = pts[:-1]
    return [[pts]]


def _d7(r, s):
    w = s["wide"]
    tr = np.array([r.uniform(0.52, 0.62) * w + 0.02, r.uniform(-0.02, 0.02)])
    tl = np.array([r.uniform(0.0, 0.06), r.uniform(0.0, 0.05)])
    bot = np.array([r.uniform(0.14, 0.27), 1.0])
    bend = r.uniform(-0.01, 0.05)  # diagonal slightly concave
    mid = (tr + bot) / 2 + [-bend, 0.0]
    pieces = []
    if r.random() < 0.45:  # small upward entry tick
        pieces.append([tl + [r.uniform(-0.02, 0.01), r.uniform(0.06, 0.13)], tl])
    pieces.append([tl, (tl + tr) / 2 + [0.0, r.uniform(-0.015, 0.015)], tr])
    pieces.append([tr, mid, bot])
    strokes = [pieces]
    if r.random() < 0.95:  # the French crossed 7
        by = r.uniform(0.44, 0.56)
        tt = by  # diagonal x at height by (approx, quadratic through tr, mid, bot)
        xd = (1 - tt) ** 2 * tr[0] + 2 * tt * (1 - tt) * (2 * mid[0] - (tr[0] + bot[0]) / 2) + tt**2 * bot[0]
        x0 = xd - r.uniform(0.13, 0.21)
        x1 = xd + r.uniform(0.1, 0.18)
        strokes.append([[[x0, by + r.uniform(-0.01, 0.02)], [x1, by - r.uniform(0.0, 0.04)]]])
    return strokes


def _d8(r, s):
    w = s["wide"]
    cx = r.uniform(0.22, 0.3)
    cy = r.uniform(0.42, 0.5)
    tw = r.uniform(0.17, 0.22) * w  # half-width of the upper loop
    bw = r.uniform(0.2, 0.26) * w  # half-width of the lower loop
    if r.random() < 0.1:  # two stacked rings, now and then
        up = _ellipse(cx + 0.02, cy / 2, tw, cy / 2, r.uniform(200, 250), r.uniform(200, 250) + 360)
        lo = _ellipse(cx, (1 + cy) / 2, bw, (1 - cy) / 2, 90, 450)
        return [[up[::-1]], [lo]]
    pts = [
        [cx + tw, 0.12],
        [cx + 0.03, 0.0],
        [cx - tw + 0.02, 0.06],
        [cx - tw, 0.22],
        [cx - 0.02, cy - 0.04],
        [cx + bw * 0.8, cy + 0.12],
        [cx + bw, 0.8],
        [cx + 0.03, 0.99],
        [cx - bw, 0.9],
        [cx - bw * 0.85, 0.68],
        [cx + 0.02, cy + 0.02],
        [cx + tw * 0.9, 0.27],
        [cx + tw + 0.005, 0.1],
        [cx + tw - 0.04, 0.02 + r.uniform(0.0, 0.04)],
    ]
    return [[pts]]


def _d9(r, s):
    w = s["wide"]
    hb = r.uniform(0.4, 0.5)  # bottom of the head
    rx = r.uniform(0.2, 0.25) * w
    cx = 0.27
    sx = cx + rx  # where the stem leaves the head
    head = [
        [sx + 0.01, 0.12],
        [cx + 0.04, 0.0],
        [cx - rx + 0.03, 0.05],
        [cx - rx, hb * 0.55],
        [cx - 0.04, hb],
        [cx + rx * 0.7, hb - 0.04],
        [sx, hb * 0.5],
        [sx + 0.005, 0.08 + r.uniform(0.0, 0.05)],
    ]
    top = head[-1]
    bot_x = sx - r.uniform(0.0, 0.05)
    if r.random() < 0.35:  # stem hooked to the left at the bottom
        stem = [
            top,
            [sx, 0.5],
            [bot_x + 0.01, 0.86],
            [bot_x - 0.07, 0.99],
            [bot_x - r.uniform(0.16, 0.24), 0.95],
        ]
    else:
        stem = [top, [(sx + bot_x) / 2 + r.uniform(-0.01, 0.01), 0.55], [bot_x, 1.0]]
    if r.random() < 0.5:  # stem retraces the head's right side (no corner)
        return [[head[:-1] + stem[1:]]]
    return [[head, stem]]


_DIGITS = [_d0, _d1, _d2, _d3, _d4, _d5, _d6, _d7, _d8, _d9]


# ----------------------------------------------------------------------------- the writer
def _warp(pts, coef):
    """Small smooth random deformation of the plane (same field for all strokes of a digit)."""
    x, y = pts[:, 0], pts[:, 1]
    dx = np.zeros_like(x)
    dy = np.zeros_like(y)
    for a, fx, fy, ph, axis in coef:
        v = a * np.sin(fx * x + fy * y + ph)
        if axis == 0:
            dx += v
        else:
            dy += v
    return np.column_stack([x + dx, y + dy])


def strokes(digit: int, rng: np.random.Generator) -> list:
    """Pen strokes of one drawing of ``digit`` (0-9) by this person: each an (N, 2) float array of
    (x, y) points along the pen's path, y pointing DOWN, the digit roughly 1 unit tall; the pen is
    lifted between strokes. Each call varies as one person's writing does. All randomness from rng."""
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be an integer 0-9, got {digit!r}")
    r = rng
    # Per-occasion state of the hand.
    speed = r.beta(2.5, 2.0)  # 0 careful .. 1 hurried
    style = {"wide": float(np.clip(r.normal(1.0, 0.07) + 0.06 * (speed - 0.5), 0.82, 1.2))}
    slant = np.radians(r.normal(12.0, 3.5) + 3.0 * (speed - 0.5))
    xscale = float(np.clip(r.normal(1.0, 0.06), 0.85, 1.15))
    coef = [
        (
            r.normal(0.0, 0.012 + 0.008 * speed),
            r.normal(0, 3.0),
            r.normal(0, 3.0),
            r.uniform(0, 2 * np.pi),
            k % 2,
        )
        for k in range(4)
    ]
    tremor = r.uniform(0.0015, 0.005)
    win = int(round(1 + 4 * speed + r.uniform(0, 1.5)))  # corner rounding (dense points)

    out = []
    for pieces in _DIGITS[int(digit)](r, style):
        p = _stroke(pieces)
        p = _warp(p, coef)
        p[:, 0] = (p[:, 0] - 0.3) * xscale + 0.3 + (0.5 - p[:, 1]) * np.tan(slant)
        p = _resample(p, _SPACING)
        p = _smooth(p, win)
        # tremor: low-amplitude, band-limited wobble along the path
        s = _arclen(p)
        length = max(s[-1], 1e-6)
        k = max(2, int(length / 0.05) + 2)
        knots = np.linspace(0.0, length, k)
        noise = r.normal(0.0, tremor, (k, 2))
        p = p + np.column_stack([np.interp(s, knots, noise[:, 0]), np.interp(s, knots, noise[:, 1])])
        p = _resample(p, 0.02)
        out.append(p.astype(float))
    return out
