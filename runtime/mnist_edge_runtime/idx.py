"""Read MNIST's IDX files (raw or gzip), checking magic number, dimensions and size."""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from pathlib import Path

import numpy as np

from mnist_edge_runtime.errors import RuntimeInputError

IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
IMAGE_SIDE = 28
# The largest genuine file (training images) is 47,040,016 bytes; anything that
# inflates far beyond it is not MNIST and must not fill the memory.
MAX_IDX_BYTES = 64 * 1024 * 1024


def parse_idx(raw: bytes, expected_magic: int, name: str) -> np.ndarray:
    """Parse an IDX file (raw or gzip-compressed bytes) into a uint8 array."""
    if raw[:2] == b"\x1f\x8b":
        raw = _gunzip(raw, name)
    if len(raw) < 4:
        raise RuntimeInputError(f"{name}: file is empty or truncated (no IDX header)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise RuntimeInputError(
            f"{name}: wrong IDX magic number 0x{magic:08x} (expected 0x{expected_magic:08x})"
        )
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise RuntimeInputError(f"{name}: truncated IDX header")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if ndim == 3 and dims[1:] != [IMAGE_SIDE, IMAGE_SIDE]:
        raise RuntimeInputError(f"{name}: images are {dims[1]}x{dims[2]}, expected 28x28")
    payload = len(raw) - header_size
    expected = int(np.prod(dims))
    if payload != expected:
        kind = "truncated" if payload < expected else "longer than its header says"
        raise RuntimeInputError(f"{name}: {kind} ({payload} data bytes, header says {expected})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims)


def _gunzip(raw: bytes, name: str) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise RuntimeInputError(f"{name}: corrupt or truncated gzip data ({exc})") from None
    if len(data) > MAX_IDX_BYTES:
        raise RuntimeInputError(f"{name}: decompresses to more than {MAX_IDX_BYTES} bytes; not MNIST")
    return data


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RuntimeInputError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_idx(raw, expected_magic, str(path))


def read_images_and_labels(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx(images, IMAGES_MAGIC), read_idx(labels, LABELS_MAGIC)
    if len(x) != len(y):
        raise RuntimeInputError(f"{images}: {len(x)} images but {labels} has {len(y)} labels")
    if len(y) and int(y.max()) > 9:
        raise RuntimeInputError(f"{labels}: label {int(y.max())} is not a digit 0..9")
    return x, y


def content_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """A checksum of the decoded pixels and labels: the same for gzip and raw files of one test set."""
    digest = hashlib.sha256(np.ascontiguousarray(images, np.uint8).tobytes())
    digest.update(np.ascontiguousarray(labels, np.uint8).tobytes())
    return digest.hexdigest()
