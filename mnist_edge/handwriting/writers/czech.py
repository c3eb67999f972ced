"""One person's handwritten digits: a Czech mechanical engineer in his 50s.

He fills in a technical logbook and measurement sheets with a 0.5 mm mechanical
pencil, using the upright block digits of Czech technical lettering (ČSN
"technické písmo") mixed with everyday Central-European habits:

* 1  - long, steep up-stroke flag into a straight stem, no base (rarely a base).
* 7  - straight top bar, sharp corner, straight diagonal, usually crossed in the
       middle; sometimes a small serif dropping from the left end of the bar.
* 4  - usually the open, two-stroke form (left arm down, across, then a separate
       long vertical), sometimes the closed "technical" triangle form.
* 9  - loop with a straight stem most of the time, the lettering-book form with
       a tail curving to the left otherwise.
* 2  - curved head, straight diagonal, sharp corner into a flat base (rarely a
       small loop at the corner).
* 3  - rounded double bowl, or a flat-topped ("Z-like") 3.
* 5  - down-stroke and bowl, then the top bar added after lifting the pen.
* 0, 6, 8 - slightly squarish ovals, as in lettering with a template in mind.

Only numpy is used; all randomness comes from the supplied Generator.
"""

import numpy as np

DESCRIPTION = (
    "A Czech mechanical engineer in his 50s filling in a technical logbook "
    "with a mechanical pencil in careful, upright, slightly angular Czech "
    "technical-lettering digits (flagged 1 without base, crossed 7, "
    "open-top 4, straight-stemmed 9)."
)

_STEP = 0.02


# ----------------------------------------------------------------- primitives
def _line(p0, p1):
    p0 = np.asarray(p0, float)
    p1 = np.asarray(p1, float)
    n = max(2, int(np.ceil(np.linalg.norm(p1 - p0) / _STEP)) + 1)
    t = np.linspace(0.0, 1.0, n)[:, None]
    return p0 + (p1 - p0) * t


def _poly(*pts):
    parts = [_line(pts[i], pts[i + 1]) for i in range(len(pts) - 1)]
    return _join(*parts)


def _join(*parts):
    out = [parts[0]]
    for p in parts[1:]:
        if np.linalg.norm(p[0] - out[-1][-1]) < 1e-9:
            p = p[1:]
        out.append(p)
    return np.vstack(out)


def _arc(cx, cy, rx, ry, a0, a1, sq=2.0):
    """Elliptic (super-elliptic when sq > 2) arc. Angles in degrees, 90 = top,
    increasing angle runs counter-clockwise on the page (y points down)."""
    span = np.radians(abs(a1 - a0))
    n = max(3, int(np.ceil(span * 0.5 * (rx + ry) / _STEP)) + 1)
    a = np.radians(np.linspace(a0, a1, n))
    c, s = np.cos(a), np.sin(a)
    e = 2.0 / sq
    x = cx + rx * np.sign(c) * np.abs(c) ** e
    y = cy - ry * np.sign(s) * np.abs(s) ** e
    return np.stack([x, y], axis=1)


def _spline(pts):
    """Centripetal Catmull-Rom spline through the points."""
    points = np.asarray(pts, float)
    points = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    out = []
    nseg = len(points) - 3
    for i in range(nseg):
        p0, p1, p2, p3 = points[i], points[i + 1], points[i + 2], points[i + 3]
        t0 = 0.0
        t1 = t0 + max(np.linalg.norm(p1 - p0), 1e-6) ** 0.5
        t2 = t1 + max(np.linalg.norm(p2 - p1), 1e-6) ** 0.5
        t3 = t2 + max(np.linalg.norm(p3 - p2), 1e-6) ** 0.5
        seg_len = np.linalg.norm(p2 - p1)
        n = max(3, int(np.ceil(1.3 * seg_len / _STEP)) + 1)
        t = np.linspace(t1, t2, n, endpoint=(i == nseg - 1))[:, None]
        a1 = (t1 - t) / (t1 - t0) * p0 + (t - t0) / (t1 - t0) * p1
        a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
        a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
        b1 = (t2 - t) / (t2 - t0) * a1 + (t - t0) / (t2 - t0) * a2
        b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
        out.append((t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2)
    return np.vstack(out)


def _tremor(stroke, rng, amp):
    """Small, smooth hand tremor plus a touch of point jitter."""
    d = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(d)])
    out = stroke.copy()
    for _ in range(2):
        f = rng.uniform(2.5, 7.0, size=2)
        ph = rng.uniform(0, 2 * np.pi, size=2)
        a = amp * rng.uniform(0.4, 1.0, size=2)
        out[:, 0] += a[0] * np.sin(2 * np.pi * f[0] * s + ph[0])
        out[:, 1] += a[1] * np.sin(2 * np.pi * f[1] * s + ph[1])
    out += rng.normal(0.0, amp * 0.15, size=out.shape)
    return out


# --------------------------------------------------------------------- digits
def _d0(rng, width, j):
    cx, cy = width / 2, 0.5
    rx, ry = width / 2 * (1 + j(0.04)), 0.5
    a0 = 100 + j(12)
    sq = rng.uniform(2.2, 3.0)
    over = rng.uniform(5, 30)
    return [_arc(cx, cy, rx, ry, a0, a0 + 360 + over, sq)]


def _d1(rng, width, j):
    xt = 0.6 * width + j(0.02)
    fl = rng.uniform(0.26, 0.42)  # flag length
    ang = np.radians(rng.uniform(36, 52))  # below horizontal
    p_flag = (xt - fl * np.cos(ang), fl * np.sin(ang))
    x_bot = xt + j(0.02)
    s = [_poly(p_flag, (xt, 0.0), (x_bot, 1.0))]
    if rng.random() < 0.08:  # occasional base serif
        hw = rng.uniform(0.16, 0.24)
        s.append(_poly((x_bot - hw, 1.0 + j(0.01)), (x_bot + hw, 1.0 + j(0.01))))
    return s


def _d2(rng, width, j):
    hy = rng.uniform(0.24, 0.32)  # head radius (vertical)
    head = _arc(width / 2, hy, width / 2 * (1 + j(0.04)), hy, 155 + j(10), -25 + j(8), rng.uniform(2.0, 2.5))
    bl = np.array([0.0 + j(0.02), 1.0])
    br = np.array([width * rng.uniform(1.0, 1.12), 1.0 + j(0.015)])
    if rng.random() < 0.15:  # small loop at the lower-left corner
        loop = _spline(
            [
                head[-1],
                (0.25 * width, 0.82),
                (0.02 * width, 1.0),
                (0.0, 0.9),
                (0.12 * width, 0.96),
                (0.3 * width, 1.0),
            ]
        )
        return [_join(head, loop, _line(loop[-1], br))]
    return [_join(head, _line(head[-1], bl), _line(bl, br))]


def _d3(rng, width, j):
    mid = np.array([0.35 * width + j(0.03), 0.46 + j(0.02)])
    ry2 = 1.0 - mid[1]
    lower_ry = ry2 / 2 + 0.01
    lower = _arc(
        width / 2 + 0.02, 1.0 - lower_ry, width / 2 + 0.02, lower_ry, 95, -145 + j(10), rng.uniform(2.0, 2.4)
    )
    if rng.random() < 0.3:  # flat-topped 3
        tl = (0.02 * width + j(0.02), 0.0 + j(0.01))
        tr = (width * rng.uniform(0.95, 1.05), 0.0)
        first = _poly(tl, tr, mid)
        return [_join(first, _line(mid, lower[0]), lower)]
    ury = mid[1] / 2
    upper = _arc(width / 2, ury, width / 2 * 0.92, ury, 160 + j(10), -80, rng.uniform(2.0, 2.4))
    return [_join(upper, _line(upper[-1], mid), _line(mid, lower[0]), lower)]


def _d4(rng, width, j):
    ybar = rng.uniform(0.58, 0.7)
    xv = width * rng.uniform(0.62, 0.75)
    right = width * rng.uniform(1.0, 1.12)
    if rng.random() < 0.62:  # open-top everyday 4
        top = (width * rng.uniform(0.05, 0.3), 0.0 + abs(j(0.03)))
        s1 = _poly(top, (0.0 + j(0.015), ybar), (right, ybar + j(0.015)))
        s2 = _poly((xv, 0.0 + rng.uniform(-0.02, 0.15)), (xv + j(0.02), 1.0))
    else:  # closed technical-lettering 4
        top = (xv + j(0.015), 0.0)
        s1 = _poly(top, (0.0, ybar), (right, ybar + j(0.015)))
        s2 = _poly((xv + j(0.015), 0.0 + abs(j(0.02))), (xv + j(0.02), 1.0))
    return [s1, s2]


def _d5(rng, width, j):
    tl = np.array([0.14 * width + j(0.02), 0.0])
    knee = np.array([0.08 * width + j(0.02), rng.uniform(0.38, 0.47)])
    sq = rng.uniform(2.0, 2.6)
    a_start = rng.uniform(140, 160)
    unit = _arc(0.0, 0.0, 1.0, 1.0, a_start, -140 + j(8), sq)
    ry = (1.0 - knee[1]) / (unit[:, 1].max() - unit[0, 1])
    rx = 0.52 * width * (1 + j(0.05))
    bowl = unit * (rx, ry)
    bowl += knee - bowl[0]
    tr = np.array([width * rng.uniform(0.9, 1.05), 0.0 + j(0.015)])
    body = _join(_line(tl, knee), bowl)
    if rng.random() < 0.25:  # one stroke: bar right-to-left, then down
        return [_join(_line(tr, tl), body)]
    return [body, _poly(tl + (j(0.01), j(0.01)), tr)]


def _d6(rng, width, j):
    lry = rng.uniform(0.28, 0.33)
    lcy = 1.0 - lry
    start = (width * rng.uniform(0.75, 0.95), 0.0 + abs(j(0.02)))
    desc = _spline([start, (0.35 * width, 0.08), (0.04 * width, 0.4), (0.0, lcy)])
    loop = _arc(width / 2, lcy, width / 2, lry, 180, 180 + 360 - rng.uniform(45, 80), rng.uniform(2.0, 2.6))
    return [_join(desc, loop)]


def _d7(rng, width, j):
    tl = np.array([0.0 + j(0.02), 0.02 + j(0.015)])
    tr = np.array([width * rng.uniform(0.98, 1.08), 0.0])
    bot = np.array([width * rng.uniform(0.22, 0.42), 1.0])
    bend = (tr + bot) / 2 + (j(0.015), 0.0)
    diag = _spline([tr, bend, bot])
    first = [tl, tr]
    if rng.random() < 0.2:  # small serif dropping from the bar's left end
        first = [tl + (0, rng.uniform(0.1, 0.16)), tl, tr]
    s = [_join(_poly(*first), diag)]
    if rng.random() < 0.75:  # crossed 7
        yc = rng.uniform(0.47, 0.56)
        xc = tr[0] + (bot[0] - tr[0]) * yc
        hl, hr = rng.uniform(0.15, 0.24), rng.uniform(0.15, 0.24)
        s.append(_poly((xc - hl, yc + j(0.015)), (xc + hr, yc + j(0.015))))
    return s


def _d8(rng, width, j):
    ym = rng.uniform(0.43, 0.48)
    uw, lw = width * rng.uniform(0.78, 0.9), width
    cx = width / 2
    if rng.random() < 0.15:  # two stacked ovals, lettering-book style
        up = _arc(cx, ym / 2, uw / 2, ym / 2, 270, 270 + 365, 2.3)
        lo = _arc(cx, (1 + ym) / 2, lw / 2, (1 - ym) / 2, 90, 90 - 365, 2.3)
        return [up, lo]
    uy, ury = ym / 2, ym / 2
    ly, lry = (1 + ym) / 2, (1 - ym) / 2

    def upper_pt(a):
        a = np.radians(a)
        return (cx + uw / 2 * np.cos(a), uy - ury * np.sin(a))

    def lower_pt(a):
        a = np.radians(a)
        return (cx + lw / 2 * np.cos(a), ly - lry * np.sin(a))

    a0 = rng.uniform(20, 45)
    p = (
        [upper_pt(a0), upper_pt(90), upper_pt(150), upper_pt(205)]
        + [(cx, ym)]
        + [lower_pt(a) for a in (40, 0, -45, -90, -135, -180, -222)]
        + [(cx, ym)]
        + [upper_pt(a) for a in (-35, 10, 60 + rng.uniform(0, 30))]
    )
    p = [(x + j(0.01), y + j(0.01)) for x, y in p]
    return [_spline(p)]


def _d9(rng, width, j):
    ry = rng.uniform(0.22, 0.27)
    cy = ry
    rx = width / 2
    a0 = rng.uniform(0, 25)
    loop = _arc(width / 2, cy, rx, ry, a0, 360 + rng.uniform(-5, 10), rng.uniform(2.1, 2.7))
    jn = np.array([width, cy + rng.uniform(-0.04, 0.03)])
    if rng.random() < 0.65:  # straight stem
        bot = (width * rng.uniform(0.85, 1.0), 1.0)
        stem = _line(jn, bot)
    else:  # tail curving left (technical lettering)
        stem = _spline(
            [jn, (width, 0.62), (0.85 * width, 0.92), (0.5 * width, 1.0), (0.1 * width, 0.9 + j(0.03))]
        )
    return [_join(loop, _line(loop[-1], jn), stem)]


_DIGITS = [_d0, _d1, _d2, _d3, _d4, _d5, _d6, _d7, _d8, _d9]


def strokes(digit, rng):
    """Pen strokes of one drawing of ``digit`` (0-9) by this person: each an (N, 2) float
    array of (x, y) points along the pen's path, y pointing DOWN, the digit roughly 1 unit
    tall; the pen is lifted between strokes. Each call varies as one person's writing
    does. All randomness from rng."""
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be an integer 0-9, got {digit!r}")
    digit = int(digit)

    def j(sd):
        return float(rng.normal(0.0, sd))

    width = 0.56 * float(np.exp(rng.normal(0.0, 0.07)))  # width / height
    out = _DIGITS[digit](rng, width, j)

    # this person's writing: near-upright, a hair of right slant, slight tremor
    slant = np.tan(np.radians(rng.normal(2.0, 2.5)))
    tremor = rng.uniform(0.002, 0.005)
    # gentle, smooth warp of the whole drawing (lines are never quite straight)
    wa, wb = rng.normal(0.0, 0.012, size=2)
    wp = rng.uniform(0, 2 * np.pi, size=2)
    res = []
    for k, s in enumerate(out):
        s = np.asarray(s, float).copy()
        if k > 0:  # re-placement after pen lift
            s += rng.normal(0.0, 0.01, size=2)
        s[:, 0] += slant * (1.0 - s[:, 1])
        s[:, 0] += wa * np.sin(np.pi * s[:, 1] + wp[0])
        s[:, 1] += wb * np.sin(np.pi * s[:, 0] / width + wp[1])
        s = _tremor(s, rng, tremor)
        res.append(s)
    return res
