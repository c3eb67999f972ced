"""MNIST data: the copy bundled with the package, a folder of IDX files, or a Keras ``mnist.npz``.

Everything is checked before it is trusted: IDX magic numbers, dimensions and
sizes, label range, image/label counts and, where a ``SHA256SUMS`` file sits
beside the data (as it does for the bundled copy), every file's SHA-256.

The last ``VALIDATION_SIZE`` training images are held out as the validation
split. Every choice made while training (epochs, schedule, calibration data)
looks at that split only; the 10,000 test images are for final figures.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mnist_edge_runtime import idx as runtime_idx
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.idx import IMAGES_MAGIC, LABELS_MAGIC

from mnist_edge.errors import UserError

BUNDLED_DIR = Path(__file__).parent / "datasets" / "mnist"
VALIDATION_SIZE = 5000
IMAGE_SIDE = 28
NUM_CLASSES = 10

# Logical name -> (file stem, expected magic). Stems follow LeCun's naming;
# the dotted variant (``train-images.idx3-ubyte``) is accepted too.
IDX_FILES = {
    "train_images": ("train-images-idx3-ubyte", IMAGES_MAGIC),
    "train_labels": ("train-labels-idx1-ubyte", LABELS_MAGIC),
    "test_images": ("t10k-images-idx3-ubyte", IMAGES_MAGIC),
    "test_labels": ("t10k-labels-idx1-ubyte", LABELS_MAGIC),
}
# Logical name -> array name in a Keras ``mnist.npz``.
NPZ_KEYS = {
    "train_images": "x_train",
    "train_labels": "y_train",
    "test_images": "x_test",
    "test_labels": "y_test",
}


# The label of a training picture that is not a digit (mnist_edge/handwriting/): the models keep
# their ten outputs, and learn to give none of them to such a picture.
NO_DIGIT = 10


@dataclass(frozen=True)
class Split:
    """Images (N, 28, 28) uint8, 0 = background, 255 = ink; labels (N,) uint8 (0-9, or ``NO_DIGIT``)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, n: int) -> Split:
        return Split(self.images[:n], self.labels[:n])


@dataclass(frozen=True)
class Mnist:
    train: Split
    validation: Split
    test: Split
    source: str
    checksums: dict[str, str] = field(default_factory=dict)


def parse_idx(raw: bytes, expected_magic: int, name: str) -> np.ndarray:
    """Parse IDX bytes (raw or gzip); the parser is the runtime's, so device and toolchain agree."""
    try:
        return runtime_idx.parse_idx(raw, expected_magic, name)
    except RuntimeInputError as exc:
        raise UserError(str(exc)) from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_sha256sums(path: Path) -> dict[str, str]:
    """``SHA256SUMS`` as {file name: hex digest}; an absent file gives {}."""
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def _find_idx_file(directory: Path, stem: str) -> Path:
    dotted = stem[::-1].replace("-", ".", 1)[::-1]  # train-images-idx3-ubyte -> train-images.idx3-ubyte
    for name in (stem, dotted):
        for candidate in (directory / f"{name}.gz", directory / name):
            if candidate.is_file():
                return candidate
    raise UserError(f"{directory}: missing {stem} (or {stem}.gz, {dotted})")


def _check_split(images: np.ndarray, labels: np.ndarray, what: str) -> Split:
    if len(images) != len(labels):
        raise UserError(f"{what}: {len(images)} images but {len(labels)} labels")
    if len(labels) and labels.max() >= NUM_CLASSES:
        raise UserError(f"{what}: label {int(labels.max())} is not a digit 0..9")
    return Split(images, labels)


def _load_idx_dir(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    known = read_sha256sums(directory / "SHA256SUMS")
    arrays, checksums = {}, {}
    for key, (stem, magic) in IDX_FILES.items():
        path = _find_idx_file(directory, stem)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UserError(f"{path}: cannot read ({exc.strerror})") from None
        digest = sha256_hex(raw)
        if path.name in known and known[path.name] != digest:
            raise UserError(f"{path}: SHA-256 mismatch (file is corrupt or not the genuine MNIST)")
        checksums[path.name] = digest
        arrays[key] = parse_idx(raw, magic, str(path))
    return arrays, checksums


def _load_npz(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    try:
        raw = path.read_bytes()
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in NPZ_KEYS.values() if key not in npz.files]
            if missing:
                raise UserError(f"{path}: not a Keras mnist.npz (no array {missing[0]!r})")
            arrays = {name: npz[key] for name, key in NPZ_KEYS.items()}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: cannot read as .npz ({exc})") from None
    for key, array in arrays.items():
        expected_ndim = 3 if key.endswith("images") else 1
        if array.ndim != expected_ndim or (expected_ndim == 3 and array.shape[1:] != (28, 28)):
            raise UserError(f"{path}: {key} has shape {array.shape}, not MNIST's")
        if array.dtype != np.uint8:
            raise UserError(f"{path}: {key} has dtype {array.dtype}, expected uint8")
    return arrays, {path.name: sha256_hex(raw)}


def load_mnist(data_dir: Path | None = None, validation_size: int = VALIDATION_SIZE) -> Mnist:
    """Load MNIST and split it into train / validation / test.

    ``data_dir`` may be a folder of the four IDX files (gzip or raw), a folder
    holding ``mnist.npz``, or the ``.npz`` file itself; ``None`` means the
    copy bundled with this package.
    """
    source = Path(data_dir) if data_dir is not None else BUNDLED_DIR
    if not source.exists():
        raise UserError(f"{source}: no such file or directory")
    if source.is_file() or (source / "mnist.npz").is_file():
        npz = source if source.is_file() else source / "mnist.npz"
        arrays, checksums = _load_npz(npz)
    else:
        arrays, checksums = _load_idx_dir(source)

    train = _check_split(arrays["train_images"], arrays["train_labels"], "training set")
    test = _check_split(arrays["test_images"], arrays["test_labels"], "test set")
    if not 0 < validation_size < len(train):
        raise UserError(f"validation size {validation_size} must be between 1 and {len(train) - 1}")
    cut = len(train) - validation_size
    return Mnist(
        train=Split(train.images[:cut], train.labels[:cut]),
        validation=Split(train.images[cut:], train.labels[cut:]),
        test=test,
        source=str(source),
        checksums=checksums,
    )
