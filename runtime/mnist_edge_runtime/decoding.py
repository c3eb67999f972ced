"""Decode a picture file (or its bytes, or a Pillow image) into a gray array for ``reading``.

Only ``FORMATS`` are opened, with memory bounded by ``decode_cost`` (estimated from the header,
before decoding); a JPEG is decoded in gray and, when big, at reduced size. The picture is made
upright (EXIF), 16-bit gray is scaled to 0..255, transparency is composited over a background
that contrasts with the ink, and a big picture is shrunk by a whole factor on the way.

The result is a 2-D array, 0..255: uint8 for an 8-bit picture (no float copy of the full-size
picture is made here; ``reading`` widens it once, at working size), float32 otherwise.

This module imports ``reading`` (the working size pictures are shrunk toward, and the rule that
composites transparency), never the reverse: reading a digit needs no decoder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_edge_runtime.errors import RuntimeInputError, not_a_file, permission_problem
from mnist_edge_runtime.reading import WORKING_SIDE, flatten_alpha

# Decoding a picture may take at most this much memory (see decode_cost): a 40-megapixel RGB photo
# in a lossless format; more is likely a decompression bomb.
MAX_DECODE_BYTES = 200_000_000
MAX_FILE_BYTES = 50 * 1024 * 1024


def _pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise RuntimeInputError(
            'reading image files needs Pillow: pip install "./runtime[images]" in a checkout of mnist-edge'
        ) from None
    return Image, ImageOps


def image_suffixes() -> set[str]:
    """The file extensions of the formats read (``FORMATS``; lower case, with the dot)."""
    pil, _ = _pillow()
    return {suffix.lower() for suffix, fmt in pil.registered_extensions().items() if fmt in FORMATS}


def load_image_file(path: Path, max_decode_bytes: int = MAX_DECODE_BYTES) -> np.ndarray:
    """Read a PNG, JPEG, GIF, BMP, WebP, TIFF or PGM/PPM file (``FORMATS``) as a 2-D gray array,
    0..255 (``pil_to_gray``).

    Changes no process-wide state (Pillow's limits, warning filters), so threads can share it.
    Memory is bounded by ``max_decode_bytes`` as far as ``decode_cost`` estimates it from the
    header; only ``FORMATS`` are read; a JPEG is decoded at reduced size and in gray (``draft``):
    a 48-megapixel baseline photo costs a few megabytes.
    """
    path = Path(path)
    try:
        if not path.is_file():
            raise not_a_file(path)
        size = path.stat().st_size
    except PermissionError as exc:  # this picture's own error, not the batch's
        raise RuntimeInputError(permission_problem(exc)) from None
    if size > MAX_FILE_BYTES:
        raise RuntimeInputError(
            f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; not a digit picture"
        )
    return _decode(path, str(path), max_decode_bytes)


def load_image_bytes(
    data: bytes, what: str = "image", max_decode_bytes: int = MAX_DECODE_BYTES
) -> np.ndarray:
    """``load_image_file`` for an encoded picture in memory (an upload, say)."""
    import io

    if not data:
        raise RuntimeInputError(f"{what}: empty")
    return _decode(io.BytesIO(data), what, max_decode_bytes)


DECODE_OVERHEAD = 8_000_000  # a decoder's tables and buffers (libjpeg at 1/8 scale of 48 megapixels: 5 MB)
# Bytes Pillow stores per pixel, by mode (every mode not named here takes 4, RGB included).
_STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# Decoders that hold their own full-size buffer besides Pillow's image: the peak, measured, is
# this many times the image itself (a lossless 16-megapixel RGBA WebP: 249 MB for 64 MB).
_DECODER_COPIES = {"WEBP": 4}


# The formats read: what a digit picture comes as. Pillow's others are refused unread: ICO and ICNS
# decode an embedded PNG of any size inside open(), before its size can be checked, and EPS runs
# Ghostscript.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "PPM")  # JPEG includes MPO (multi-picture JPEG)
MAX_EXIF_BYTES = 64 * 1024  # a larger EXIF block is not read (Pillow 9 copies tag data unbounded)
# A progressive JPEG's decoder passes over every coefficient of the picture once per scan, and a
# scan may be a dozen bytes: 600,000 of them in 7 MB kept a core busy for a minute. Encoders write
# 10 or so (libjpeg's progression: 10 for colour, 6 for gray).
MAX_JPEG_SCANS = 100


def decode_cost(image, full_size: tuple[int, int] | None = None, full_bands: int = 3) -> int:
    """Bytes that reading an opened (not yet loaded) Pillow image takes at its peak, estimated
    from its header (``benchmarks/serve_hostile.py`` measures it against this): the pixels as
    Pillow stores them with a pointer per row (a 1x16,000,000 picture holds 128 MB of row
    pointers), the decoder's own buffers, the full-size 8-bit copies made before shrinking, and
    the float working copies of the shrunk picture. A progressive JPEG is decoded at reduced
    size (``draft``) but libjpeg keeps every coefficient of the full-size picture: 2 bytes per
    sample of ``full_size`` x ``full_bands``."""
    width, height = image.size
    pixels = width * height
    stored = height * (width * _STORED_BYTES.get(image.mode, 4) + 8)
    transparent = _is_transparent(image)
    wide = image.mode.startswith("I") or image.mode == "F"
    if transparent:  # gray, alpha and 1-alpha planes (through 4-byte gray+alpha unless RGBA/LA)
        copy_bytes = 3 if image.mode in ("RGBA", "LA") else 7
    elif image.mode in ("L", "I", "F"):
        copy_bytes = 0  # shrunk as it is
    elif image.mode.startswith("I;16"):
        copy_bytes = 4  # 32-bit gray
    elif image.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        copy_bytes = 5  # to gray through a full-size RGB copy
    else:
        copy_bytes = 1  # 8-bit gray
    # float32 working copies of the shrunk picture; 16-bit and wider gray is scaled in float64
    working = min(pixels, (4 * WORKING_SIDE) ** 2) * (28 if wide else 24 if transparent else 12)
    coefficients = 0
    if image.format in ("JPEG", "MPO") and ("progressive" in image.info or "progression" in image.info):
        full_width, full_height = full_size or image.size
        coefficients = 2 * full_width * full_height * full_bands
    return (
        stored * _DECODER_COPIES.get(image.format or "", 1)
        + (height * (width * copy_bytes + 8) if copy_bytes else 0)
        + 2 * width * _STORED_BYTES.get(image.mode, 4)  # the decoder's previous and current row
        + working
        + coefficients
        + DECODE_OVERHEAD
    )


def _decode(source: object, what: str, max_decode_bytes: int) -> np.ndarray:
    pil, _ = _pillow()
    try:
        with pil.open(source, formats=FORMATS) as image:
            full_size, full_bands = image.size, len(image.getbands())
            if image.format in ("JPEG", "MPO"):
                image.draft("L", draft_size(image.size))  # decode at 1/2, 1/4 or 1/8 size, in gray
            if image.format in ("JPEG", "MPO") and _jpeg_scans(source) > MAX_JPEG_SCANS:
                raise RuntimeInputError(f"{what}: a JPEG of more than {MAX_JPEG_SCANS} scans; not a photo")
            cost = decode_cost(image, full_size, full_bands)  # from the header, before decoding
            if cost > max_decode_bytes:
                raise RuntimeInputError(
                    f"{what}: too large to read: a {image.width}x{image.height} {image.mode} image takes"
                    f" {_mb(cost)} to decode, over the {_mb(max_decode_bytes)} limit"
                )
            return pil_to_gray(image)
    except RuntimeInputError:
        raise
    except pil.DecompressionBombError:
        raise RuntimeInputError(f"{what}: image is too large (decompression bomb?)") from None
    except pil.UnidentifiedImageError:
        raise RuntimeInputError(
            f"{what}: not a readable image (formats read: {', '.join(FORMATS)})"
        ) from None
    except MemoryError:
        raise RuntimeInputError(f"{what}: too large to read") from None
    except Exception as exc:  # a damaged file makes Pillow's decoders raise all kinds of errors
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise RuntimeInputError(f"{what}: not a readable image ({reason})") from None


def _jpeg_scans(source: object) -> int:
    """The start-of-scan markers of a JPEG file or in-memory file's first picture, up to one more
    than ``MAX_JPEG_SCANS``: its segments are walked from the start, so metadata and whatever
    follows the picture (a phone's motion-photo video) are never counted."""
    import io
    import mmap

    if isinstance(source, io.BytesIO):
        return _scans_in(source.getvalue())
    with open(source, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _scans_in(data)


def _scans_in(data) -> int:
    scans, position, size = 0, 2, len(data)  # after the start-of-image marker
    while position + 4 <= size and scans <= MAX_JPEG_SCANS:
        if data[position] != 0xFF:
            break  # not a marker where one must be: Pillow's decoder says what is wrong
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xD9:  # end of the picture
            break
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD8):  # markers without a length
            position += 2
            continue
        position += 2 + (data[position + 2] << 8 | data[position + 3])
        if marker == 0xDA:  # a scan: its entropy-coded data runs to the next marker but a restart
            scans += 1
            while True:
                position = data.find(b"\xff", position)
                if position < 0 or position + 1 >= size:
                    return scans
                following = data[position + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    position += 2
                    continue
                break
    return scans


def draft_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size to ask a JPEG decoder for: the picture's shape with its longest side at the working
    size. The decoder picks the smallest of its scales that covers it in both directions, so a
    1024x768 photo is decoded at 512x384 (asking for a square would keep it at full size)."""
    longest = max(size)
    return tuple(max(1, -(-side * WORKING_SIDE // longest)) for side in size)


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB" if size >= 1e6 else f"{size / 1e6:.1f} MB"


def _is_transparent(image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


# EXIF orientation -> the Pillow transpose that makes the picture upright (as ImageOps.exif_transpose).
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
            6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}  # fmt: skip


def pil_to_gray(image) -> np.ndarray:
    """A Pillow image -> 2-D gray, 0..255 (uint8 from an 8-bit picture, float32 otherwise):
    upright (EXIF), 16-bit scaled, transparency as a background that contrasts with the ink.

    Memory: one full-size 8-bit gray (or gray+alpha) copy of the decoded picture, shrunk at once
    by a whole factor to under four times the working size (1,600 pixels); the upright turn and any
    float copy are made of the shrunk picture.
    """
    pil, _ = _pillow()
    # Pillow turns a TIFF upright as it loads it (a JPEG's orientation it leaves to the caller).
    # Pillow 10.4 and 13 then drop the tag, so it is read after loading; Pillow 9.5 keeps it and
    # records the turn in ``_tile_orientation`` (Debian bookworm's Pillow is 9.4).
    image.load()
    orientation = None
    if image.format == "TIFF" and getattr(image, "_tile_orientation", None):
        pass  # turned upright already
    elif len(image.info.get("exif") or b"") <= MAX_EXIF_BYTES:
        try:
            orientation = image.getexif().get(0x0112)
        except Exception:  # a damaged EXIF block is no reason to refuse the picture
            orientation = None
    if image.mode.startswith("I") or image.mode == "F":  # 16-bit, 32-bit integer or float gray
        wide = image if image.mode in ("I", "F") else image.convert("I")
        gray = _shrunk(wide)
    elif not _is_transparent(image):
        gray = _shrunk(image if image.mode == "L" else image.convert("L"))
    else:
        if image.mode not in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")  # a colour key ("transparency" of RGB or L) becomes alpha
        if image.mode == "P":
            image = image.convert("LA")  # keeps the palette's transparency
        if max(image.size) >= 4 * WORKING_SIDE:
            # A big one is flattened in 8-bit at full size, then shrunk: no full-size float copy.
            gray = _shrunk(_flattened(image))
        elif image.width * image.height > 64 * 64 and np.asarray(image.getchannel("A")).min() == 255:
            # Opaque throughout (the page's canvas): compositing changes nothing, and gray alone is
            # converted. A small picture is not checked: the check costs more than it saves.
            gray = image.convert("L")
        else:
            gray = image.convert("LA")
    if orientation in _UPRIGHT:
        gray = gray.transpose(getattr(pil.Transpose, _UPRIGHT[orientation]))
    if gray.mode in ("I", "F"):
        return _wide_to_8bit(np.asarray(gray))
    if gray.mode == "LA":
        array = np.asarray(gray, dtype=np.float32)
        return flatten_alpha(array[..., 0], array[..., 1] / 255.0)
    array = np.array(gray)  # a copy the caller may write to (Pillow's own is read-only)
    # Gray levels 0 and 1 alone are read as a float picture in [0, 1] (``check_array``), as they
    # always were: such a picture is handed on as float.
    return array.astype(np.float32) if array.max() <= 1 else array


def _flattened(image):
    """A big RGBA or LA image -> 8-bit gray composited like ``flatten_alpha``, in two 8-bit
    planes rather than Pillow's 4-byte gray+alpha (whose ``reduce`` makes two more copies)."""
    pil, _ = _pillow()
    alpha = image.getchannel("A")
    gray = image.convert("L")
    del image
    opaque = alpha.point([0] * 128 + [255] * 128)
    counts = gray.histogram(mask=opaque)
    total = sum(counts)
    del opaque
    ink_is_dark = (
        total in (0, alpha.width * alpha.height)
        or sum(level * n for level, n in enumerate(counts)) < 128 * total
    )
    # paste(colour, mask=1-alpha) is gray*alpha + background*(1-alpha), in place.
    gray.paste(255 if ink_is_dark else 0, None, alpha.point([255 - v for v in range(256)]))
    return gray


def _shrunk(image):
    """Shrink by a whole factor to under four times the working size; ``_working_size`` does the rest."""
    factor = max(image.size) // (2 * WORKING_SIDE)
    return image.reduce(factor) if factor > 1 else image


def _wide_to_8bit(values: np.ndarray) -> np.ndarray:
    """16-bit (or wider) gray values -> 0..255 by the type's range, never clipped."""
    kind, values = values.dtype.kind, values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if low >= 0 and high <= 1 and kind == "f":  # a float image in [0, 1]
        return (values * 255.0).astype(np.float32)
    if low >= 0 and high <= 255:  # 8-bit values in a wide container
        return values.astype(np.float32)
    if low >= 0 and high <= 65535:
        return (values / 257.0).astype(np.float32)
    return ((values - low) * (255.0 / max(high - low, 1e-12))).astype(np.float32)
