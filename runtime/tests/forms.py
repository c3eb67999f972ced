"""The forms in which people hand the runtime a digit, and pictures that are not digits.

Each digit form turns one MNIST digit (28x28 uint8, bright ink on black) into the encoded file a
person would have: the same digit saved dark on white, in colour, as a canvas export with
transparency, as JPEG, BMP, PGM, 1-bit or 16-bit, drawn big on the page's 280x280 canvas, or
photographed on paper. Each non-digit is an encoded picture of something that is not a digit:
letters from a system font, shapes, blots, noise, blank paper. ``benchmarks/input_forms.py`` and the
runtime's tests use both, on validation digits only (the last 5,000 training images).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from synthetic import fine_pen_on_ruled_paper, paper_photo

CANVAS = 280  # the page's canvas
FONTS = sorted(Path("/usr/share/fonts/truetype/dejavu").glob("DejaVu*.ttf"))


def encode(array: np.ndarray, format: str = "PNG", mode: str | None = None, **options) -> bytes:
    """An array as the bytes of an image file."""
    from PIL import Image

    image = Image.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG (grayscale (H, W) or RGB (H, W, 3)), written by hand: Pillow writes only 16-bit gray."""
    import struct

    array = np.asarray(array, dtype=">u2")
    h, w = array.shape[:2]
    color_type = 2 if array.ndim == 3 else 0
    raw = b"".join(b"\x00" + row.tobytes() for row in array.reshape(h, -1))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def on_canvas(digit: np.ndarray, margin: int) -> np.ndarray:
    """The digit drawn dark on the white canvas, as large as fits inside ``margin`` pixels (RGB)."""
    from PIL import Image

    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    crop = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    room = CANVAS - 2 * margin
    scale = room / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    ink = np.asarray(Image.fromarray(crop).resize(size, Image.BICUBIC))
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    top, left = (CANVAS - size[1]) // 2, (CANVAS - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = ink
    return np.repeat((255 - canvas)[..., None], 3, axis=2)


def _rgba_canvas(digit: np.ndarray) -> np.ndarray:
    """Black ink on a transparent background, as a canvas or a drawing app exports it."""
    rgba = np.zeros((*digit.shape, 4), np.uint8)
    rgba[..., 3] = digit
    return rgba


def _photo(digit: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(60, 300)), int(rng.integers(60, 300))
    side = int(rng.integers(40, min(h, w) + 1))
    box = (int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1)), side, side)
    return paper_photo(digit, (h, w), box, seed=seed)


def _on_a_desk(digit: np.ndarray, seed: int) -> np.ndarray:
    """``_photo``'s sheet with a darker desk around it: on each side 5-35% of the sheet's size."""
    photo = _photo(digit, seed)
    rng = np.random.default_rng(seed + 1_000_000)
    h, w = photo.shape
    top, bottom = (int(m) for m in rng.uniform(0.05, 0.35, 2) * h)
    left, right = (int(m) for m in rng.uniform(0.05, 0.35, 2) * w)
    framed = rng.normal(rng.uniform(25, 110), 6, (h + top + bottom, w + left + right))
    framed[top : top + h, left : left + w] = photo
    return np.clip(framed, 0, 255).astype(np.uint8)


# Warm paper under indoor light: each colour channel is the gray level times this.
_WARM = {"R": 1.02, "G": 0.99, "B": 0.93}


def _page_photo(digit: np.ndarray, seed: int) -> bytes:
    """A phone photo as the page sends it: 1024x768 colour JPEG (quality 90), warm paper growing
    brighter to the right with grain, the digit anywhere in it from a tenth to most of its height.
    Built in 8-bit and colour look-up tables: float noise and colour planes took 20 ms a picture."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    side = int(rng.integers(77, 673))
    top, left = int(rng.integers(0, 768 - side + 1)), int(rng.integers(0, 1024 - side + 1))
    gray = np.linspace(200, 230, 1024, dtype=np.float32) + rng.integers(-7, 8, (768, 1024), dtype=np.int8)
    ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.BICUBIC), dtype=np.float32) / 255
    gray[top : top + side, left : left + side] *= 1 - 0.8 * np.clip(ink, 0, 1)
    paper = Image.fromarray(gray.astype(np.uint8))  # 38..237: no clipping needed
    planes = [paper.point([min(255, round(v * k)) for v in range(256)]) for k in _WARM.values()]
    buffer = io.BytesIO()
    Image.merge("RGB", planes).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _photo_16bit(digit: np.ndarray, seed: int) -> bytes:
    """A 16-bit photo: ink at about 8,000 on paper at about 60,000."""
    photo = paper_photo(digit, (200, 200), (30, 30, 140, 140), seed=seed).astype(np.float64)
    low, high = photo.min(), photo.max()
    return encode(np.round(8000 + (photo - low) / max(high - low, 1) * 52000).astype(np.uint16), "PNG")


# name -> (digit, seed) -> bytes of an image file
DIGIT_FORMS: dict[str, Callable[[np.ndarray, int], bytes]] = {
    "28x28 MNIST form, PNG": lambda d, s: encode(d),
    "28x28 dark on white, PNG": lambda d, s: encode(255 - d),
    "28x28 dark on white, RGB PNG": lambda d, s: encode(255 - d, mode="RGB"),
    "28x28 canvas export, RGBA PNG": lambda d, s: encode(_rgba_canvas(d)),
    "28x28 dark on white, JPEG": lambda d, s: encode(255 - d, "JPEG", quality=75),
    "28x28 MNIST form, JPEG": lambda d, s: encode(d, "JPEG", quality=75),
    "28x28 dark on white, BMP": lambda d, s: encode(255 - d, "BMP"),
    "28x28 dark on white, PGM": lambda d, s: encode(255 - d, "PPM"),
    "28x28 dark on white, 1-bit PNG": lambda d, s: encode(((d < 128) * 255).astype(np.uint8), mode="1"),
    "28x28 dark on white, 16-bit PNG": lambda d, s: encode((255 - d).astype(np.uint16) * 257),
    "28x28 dark on white, 16-bit RGB PNG": lambda d, s: png16(
        np.repeat((255 - d)[..., None], 3, 2).astype(np.uint16) * 257
    ),
    "canvas 280x280, small (margin 70)": lambda d, s: encode(on_canvas(d, 70)),
    "canvas 280x280, margin 10": lambda d, s: encode(on_canvas(d, 10)),
    "canvas 280x280, touching the edges": lambda d, s: encode(on_canvas(d, 0)),
    "photo on uneven paper, PNG": lambda d, s: encode(_photo(d, s)),
    "photo on uneven paper, JPEG": lambda d, s: encode(_photo(d, s), "JPEG", quality=85),
    "photo from the page, 1024x768 colour JPEG": _page_photo,
    "photo of a sheet on a darker desk, JPEG": lambda d, s: encode(_on_a_desk(d, s), "JPEG", quality=85),
    "photo on ruled paper, fine pen": lambda d, s: encode(fine_pen_on_ruled_paper(d, seed=s)),
    "photo, 16-bit PNG": _photo_16bit,
}


def letter(seed: int) -> bytes:
    """An upper-case letter from a DejaVu font, dark on white, at a random size."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    char = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[seed % 26]
    size = int(rng.integers(60, 140))
    # Pillow's own font where Debian's DejaVu fonts are not installed.
    font = (
        ImageFont.truetype(str(FONTS[int(rng.integers(len(FONTS)))]), size)
        if FONTS
        else ImageFont.load_default(size)
    )
    image = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(image).text((100, 100), char, fill=0, font=font, anchor="mm")
    return encode(np.asarray(image))


def shape(seed: int) -> bytes:
    """A smiley, a triangle, a star, a square, a cross, a heart-ish blob or a zigzag, drawn with a pen."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    image = Image.new("L", (CANVAS, CANVAS), 255)
    draw = ImageDraw.Draw(image)
    width = int(rng.integers(8, 20))
    c, r = CANVAS / 2 + rng.uniform(-20, 20, 2), rng.uniform(70, 120)
    kind = seed % 6
    if kind == 0:  # smiley
        draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], outline=0, width=width)
        for dx in (-0.4, 0.4):
            draw.ellipse(
                [c[0] + dx * r - 8, c[1] - 0.35 * r - 8, c[0] + dx * r + 8, c[1] - 0.35 * r + 8], fill=0
            )
        draw.arc(
            [c[0] - 0.55 * r, c[1] - 0.4 * r, c[0] + 0.55 * r, c[1] + 0.6 * r], 20, 160, fill=0, width=width
        )
    elif kind in (1, 2):  # triangle or star
        points = 3 if kind == 1 else 10
        angles = np.linspace(-np.pi / 2, 1.5 * np.pi, points, endpoint=False)
        radii = np.where(np.arange(points) % 2, r * 0.45, r) if kind == 2 else np.full(points, r)
        corners = [(c[0] + q * np.cos(a), c[1] + q * np.sin(a)) for q, a in zip(radii, angles)]
        draw.line([*corners, corners[0]], fill=0, width=width, joint="curve")
    elif kind == 3:  # square
        draw.rectangle([c[0] - r, c[1] - r, c[0] + r, c[1] + r], outline=0, width=width)
    elif kind == 4:  # a cross (an x)
        draw.line([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=0, width=width)
        draw.line([c[0] - r, c[1] + r, c[0] + r, c[1] - r], fill=0, width=width)
    else:  # a zigzag
        xs = np.linspace(c[0] - r, c[0] + r, 6)
        draw.line([(x, c[1] + (r / 2 if i % 2 else -r / 2)) for i, x in enumerate(xs)], fill=0, width=width)
    return encode(np.asarray(image))


def blot(seed: int) -> bytes:
    """A blot of ink or a filled shape (disc, ellipse up to 2:1, ragged splat), 20-95% of the
    picture's height: drawn on the page's canvas (PNG) or photographed on uneven paper (JPEG)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    side = 256
    mask = Image.new("L", (side, side), 0)
    size = rng.uniform(0.2, 0.95) * side
    sizes = sorted((size, size / rng.uniform(1, 2)))[:: 1 if rng.random() < 0.5 else -1]
    c = side / 2 + rng.uniform(-1, 1, 2) * (side - max(sizes)) / 2
    if seed % 3 < 2:  # a disc or an ellipse
        ImageDraw.Draw(mask).ellipse(
            [c[0] - sizes[0] / 2, c[1] - sizes[1] / 2, c[0] + sizes[0] / 2, c[1] + sizes[1] / 2], fill=255
        )
    else:  # a splat: a ragged outline
        angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        radii = size / 2 * (1 + 0.3 * rng.standard_normal(40).clip(-1, 2)) / (1 + 0.3 * 2)
        ImageDraw.Draw(mask).polygon(
            [(c[0] + r * np.cos(a), c[1] + r * np.sin(a)) for r, a in zip(radii, angles)], fill=255
        )
    ink = np.asarray(mask)
    if seed % 2:
        return encode(paper_photo(ink, (side, side), (0, 0, side, side), seed=seed), "JPEG", quality=85)
    canvas = Image.fromarray(255 - ink).resize((CANVAS, CANVAS), Image.BILINEAR)
    return encode(np.asarray(canvas))


def noise(seed: int) -> bytes:
    """Uniform noise: 28x28 or photo-sized."""
    rng = np.random.default_rng(seed)
    side = 28 if seed % 2 else int(rng.integers(60, 300))
    return encode(rng.integers(0, 256, (side, side), dtype=np.uint8))


def blank_paper(seed: int) -> bytes:
    """A photo of blank paper with a soft shadow across part of it (JPEG, as a phone saves it)."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(200, 480)), int(rng.integers(200, 640))
    ys, xs = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, np.pi)
    across = (xs - w / 2) * np.cos(angle) + (ys - h / 2) * np.sin(angle)
    shadow = rng.uniform(30, 90) / (1 + np.exp(-(across - rng.uniform(-w / 4, w / 4)) / rng.uniform(5, 40)))
    paper = 215 + 20 * xs / w - shadow + rng.normal(0, 3, (h, w))
    return encode(np.clip(paper, 0, 255).astype(np.uint8), "JPEG", quality=85)


# name -> seed -> bytes of an image file
NOT_DIGITS: dict[str, Callable[[int], bytes]] = {
    "letters A-Z (DejaVu fonts)": letter,
    "shapes (smiley, triangle, star, square, x, zigzag)": shape,
    "blots and filled shapes": blot,
    "uniform noise": noise,
    "blank paper with a shadow (photo)": blank_paper,
}


def mnist_forms(make: Callable[..., bytes], *args) -> np.ndarray:
    """Decode encoded pictures the way a file is read, into MNIST form (blank ones all black)."""
    from mnist_edge_runtime.preprocess import load_image_bytes, mnist_or_blank

    return np.stack([mnist_or_blank(load_image_bytes(make(*a)), "picture") for a in zip(*args)])


def digit_form_row(classifier, images: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, confident-wrong count and the rule's doubt among right and wrong answers."""
    from mnist_edge_runtime.classifier import predictions_from_scores

    predictions = predictions_from_scores(classifier.scores(images), images)
    right = np.array([p.digit == label for p, label in zip(predictions, labels)])
    doubted = np.array([not p.sure for p in predictions])
    confident_wrong = sum(1 for p, r in zip(predictions, right) if not r and p.confidence >= 0.9)
    return {
        "pictures": len(labels),
        "accuracy": float(right.mean()),
        "confident_wrong": confident_wrong,
        "confident_wrong_sure": sum(
            1 for p, r in zip(predictions, right) if not r and p.sure and p.confidence >= 0.9
        ),
        "doubted_right": float(doubted[right].mean()) if right.any() else 0.0,
        "doubted_wrong": float(doubted[~right].mean()) if (~right).any() else 0.0,
    }


def not_digit_row(classifier, images: np.ndarray) -> dict:
    """The share of non-digit pictures the rule doubts, and how often each reason is given."""
    from mnist_edge_runtime.classifier import predictions_from_scores

    predictions = predictions_from_scores(classifier.scores(images), images)
    reasons: dict[str, int] = {}
    for p in predictions:
        reasons[str(p.doubt)] = reasons.get(str(p.doubt), 0) + 1
    return {
        "pictures": len(images),
        "doubted": float(np.mean([not p.sure for p in predictions])),
        "reasons": dict(sorted(reasons.items())),
    }
