"""Samples collected on the device: pictures people corrected, kept to train a better model.

``serve --collect DIR`` and ``predict --collect DIR --label L`` store each sample as a folder::

    DIR/<id>/picture.<ext>   the picture as received, byte for byte (``.json`` for JSON pixels)
    DIR/<id>/mnist.png       its 28x28 MNIST form: what the model saw, and what training uses
    DIR/<id>/sample.json     one JSON line: label, the model's answer and confidence, the model
                             file's SHA-256, the time, where it came from

A sample is written into ``DIR/.partial-<id>/`` (every file fsynced), then that folder is renamed
to ``DIR/<id>`` and ``DIR`` fsynced. The rename is atomic, so a power cut leaves a whole sample or
a ``.partial-<id>`` folder, which is not a sample; one older than ``STALE_PARTIAL_SECONDS`` (never
one another process is still writing) is removed when a store is next opened. Ids are new random
names: nothing is ever overwritten, and nothing of another name is ever removed.

``read_samples`` reads a collection folder or the single file ``samples --export`` writes (an
``.npz``: the 28x28 pictures, the labels and the JSON lines), and ``Samples.sha256`` names a set
by its content (the same for a folder and its export), which the toolchain's manifest records.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import struct
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_edge_runtime.errors import RuntimeInputError

LABELS = tuple("0123456789") + ("n",)  # "n": not a digit
NOT_A_DIGIT = "n"
DEFAULT_MAX_SAMPLES = 10_000
# Collection stops while the disk has less free space than this, so that the device's system,
# its logs and the server itself never run out of space because of samples.
DEFAULT_MIN_FREE_BYTES = 256 * 1024 * 1024
PARTIAL_PREFIX = ".partial-"
SAMPLE_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}")  # the name of every sample folder this tool writes
STALE_PARTIAL_SECONDS = 600  # a sample takes milliseconds to write: an older partial one was cut short
MAX_READ_SAMPLES = 1_000_000  # an export declaring more is refused before anything is allocated
# An export's label or record longer than this many characters is refused before anything is
# allocated (a record is about 300): numpy stores every one as long as the longest.
MAX_TEXT_CHARS = 4096
SAMPLE_FILE = "sample.json"
MNIST_FILE = "mnist.png"
SIDE = 28
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_SIGNATURES = (  # the picture file's extension, from its first bytes
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF8", ".gif"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"P5", ".pgm"),
    (b"P6", ".ppm"),
)


class CollectionFullError(Exception):
    """The store takes no more samples (its cap, or the disk's free-space floor): HTTP 507."""


def parse_label(text: object) -> str:
    """'0'-'9' or 'n' (not a digit); anything else is an input error."""
    if isinstance(text, float) and text.is_integer() and 0 <= text <= 9:
        text = int(text)  # JSON numbers arrive as floats (the server parses them so)
    label = str(text).strip().lower() if isinstance(text, (str, int)) and not isinstance(text, bool) else ""
    if label in ("not a digit", "none"):
        label = NOT_A_DIGIT
    if label not in LABELS:
        raise RuntimeInputError(f"label {str(text)[:20]!r} is not a digit 0-9 or n (not a digit)")
    return label


def picture_suffix(picture: bytes) -> str:
    if picture[:4] == b"RIFF" and picture[8:12] == b"WEBP":
        return ".webp"
    return next((suffix for signature, suffix in _SIGNATURES if picture.startswith(signature)), ".bin")


class SampleStore:
    """A collection folder that samples are added to, safely from several threads."""

    def __init__(
        self,
        folder: Path,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
    ):
        self.folder, self.max_samples, self.min_free_bytes = folder, max_samples, min_free_bytes
        if not str(folder).strip() or str(folder) == ".":
            raise RuntimeInputError("the collection needs a folder of its own: name one (--collect DIR)")
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._remove_stale_partials()
            self.count = self._count_on_disk()
        except (NotADirectoryError, FileExistsError):
            raise RuntimeInputError(f"{folder}: not a folder (--collect needs a folder)") from None
        except OSError as exc:
            raise RuntimeInputError(
                f"{folder}: cannot collect samples there ({exc.strerror or exc})"
            ) from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise RuntimeInputError(f"{folder}: cannot collect samples there (not writable)")
        self._lock = threading.Lock()
        self._reserved = 0

    def _remove_stale_partials(self) -> None:
        """Samples cut short (a power cut, a killed server): only names this tool writes, and only
        old ones, never one that another process is writing now."""
        now = time.time()
        for leftover in self.folder.glob(f"{PARTIAL_PREFIX}*"):
            if leftover.is_symlink() or not SAMPLE_ID.fullmatch(leftover.name[len(PARTIAL_PREFIX) :]):
                continue
            with contextlib.suppress(OSError):
                if now - leftover.stat().st_mtime > STALE_PARTIAL_SECONDS:
                    shutil.rmtree(leftover, ignore_errors=True)

    def _count_on_disk(self) -> int:
        return sum(1 for entry in self.folder.iterdir() if SAMPLE_ID.fullmatch(entry.name))

    def status(self) -> dict:
        full = self.full_because()
        return {
            "on": True,
            "stored": self.count,
            "max": self.max_samples,
            "full": full is not None,
            "why": full,
        }

    def full_because(self) -> str | None:
        try:
            if self.count + self._reserved >= self.max_samples:
                self.count = self._count_on_disk()  # samples moved away since (exported, cleared)
            if self.count + self._reserved >= self.max_samples:
                return f"the collection holds its maximum of {self.max_samples:,} samples (--collect-max)"
            free = shutil.disk_usage(self.folder).free
        except OSError as exc:  # the folder was moved, removed or unmounted while serving
            return f"cannot use {self.folder} ({exc.strerror or exc})"
        if free < self.min_free_bytes:
            return f"under {self.min_free_bytes // 2**20:,} MiB free on the disk of {self.folder}"
        return None

    def add(
        self,
        picture: bytes,
        picture_suffix_: str,
        mnist: np.ndarray,
        label: str,
        answer: dict,
        model_sha256: str,
        source: str,
    ) -> str:
        """Store one sample; returns its id. Raises ``CollectionFullError`` when it cannot be kept."""
        label = parse_label(label)
        with self._lock:  # the cap holds with several worker threads writing at once
            full = self.full_because()  # (a recount on disk happens under the lock too)
            if full is not None:
                raise CollectionFullError(f"collection full: {full}")
            self._reserved += 1
        try:
            sample_id = self._write(picture, picture_suffix_, mnist, label, answer, model_sha256, source)
        finally:
            with self._lock:
                self._reserved -= 1
        with self._lock:
            self.count += 1
        return sample_id

    def add_files(
        self, files: list[Path], images: dict, answers: dict, label: str, model: Path
    ) -> dict[int, str]:
        """``predict --collect``: keep every answered file (``images`` and ``answers`` by index in
        ``files``) as a sample labelled ``label``; returns why each file that was not kept was not."""
        model_sha256 = hashlib.sha256(model.read_bytes()).hexdigest()
        not_kept = {}
        for i in sorted(answers):
            if answers[i].digit is None:
                not_kept[i] = f"not collected: {answers[i].doubt}"
                continue
            try:
                picture = files[i].read_bytes()
                self.add(
                    picture,
                    picture_suffix(picture),
                    images[i],
                    label,
                    answers[i].as_dict(),
                    model_sha256,
                    "predict",
                )
            except (CollectionFullError, OSError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                not_kept[i] = f"not collected: {why}"
        return not_kept

    def _write(self, picture, suffix, mnist, label, answer, model_sha256, source) -> str:
        now = dt.datetime.now(dt.timezone.utc)
        sample_id = f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
        record = {
            "id": sample_id,
            "label": label,
            "answer": answer.get("digit"),
            "confidence": answer.get("confidence"),
            "sure": answer.get("sure"),
            "doubt": answer.get("doubt"),
            "model_sha256": model_sha256,
            "time": now.isoformat(timespec="seconds"),
            "source": source,
            "picture": f"picture{suffix}",
            "picture_bytes": len(picture),
        }
        partial = self.folder / f"{PARTIAL_PREFIX}{sample_id}"
        try:
            partial.mkdir(mode=0o700)
            _write_synced(partial / record["picture"], picture)
            _write_synced(partial / MNIST_FILE, png_bytes(mnist))
            _write_synced(partial / SAMPLE_FILE, (json.dumps(record) + "\n").encode())
            final = self.folder / sample_id
            if final.exists():  # a clash of two random names: never replace what is there
                raise FileExistsError(errno.EEXIST, "sample id already taken", str(final))
            os.rename(partial, final)
            _fsync_folder(self.folder)
        except OSError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            if exc.errno in _FULL_ERRNOS:
                raise CollectionFullError(f"collection full: the disk of {self.folder} is full") from None
            raise
        return sample_id


def _write_synced(path: Path, content: bytes) -> None:
    # O_EXCL: a file that exists is an error, never overwritten. People's handwriting: only the
    # server's own user reads it (0600).
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- the 28x28 picture as PNG, without Pillow (the runtime's core needs numpy only) -------------


def png_bytes(image: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG of a 2-D uint8 array."""
    height, width = image.shape
    rows = np.zeros((height, width + 1), np.uint8)  # each row: filter type 0, then its pixels
    rows[:, 1:] = image

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes()))
        + chunk(b"IEND", b"")
    )


def read_png_28(content: bytes, where: str) -> np.ndarray:
    """The 28x28 array of a PNG that ``png_bytes`` wrote (8-bit gray, no filters, no interlace)."""
    try:
        if not content.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValueError("not a PNG")
        position, idat, header = 8, b"", None
        while position < len(content):
            (length,) = struct.unpack(">I", content[position : position + 4])
            kind, data = content[position + 4 : position + 8], content[position + 8 : position + 8 + length]
            if kind == b"IHDR":
                header = struct.unpack(">IIBBBBB", data)
            elif kind == b"IDAT":
                idat += data
            position += 12 + length
        if header != (SIDE, SIDE, 8, 0, 0, 0, 0):
            raise ValueError("not a 28x28 8-bit gray PNG")
        rows = np.frombuffer(zlib.decompressobj().decompress(idat, SIDE * (SIDE + 1) + 1), np.uint8)
        rows = rows.reshape(SIDE, SIDE + 1)
        if rows[:, 0].any():
            raise ValueError("filtered rows")
    except (ValueError, struct.error, zlib.error) as exc:
        raise RuntimeInputError(f"{where}: not a 28x28 sample picture ({exc})") from None
    return rows[:, 1:].copy()


# --- reading a collection: a folder, or the file `samples --export` wrote --------------------


@dataclass
class Samples:
    """A set of collected samples: 28x28 MNIST forms, labels ('0'-'9', 'n') and their records."""

    images: np.ndarray  # (N, 28, 28) uint8
    labels: list[str]
    records: list[dict]
    source: str
    skipped: list[str] = field(default_factory=list)  # unreadable sample folders, and why

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def sha256(self) -> str:
        """The set's content (pictures and labels, in id order): the same for a folder and its export."""
        digest = hashlib.sha256()
        for image, label in zip(self.images, self.labels):
            digest.update(label.encode() + image.tobytes())
        return digest.hexdigest()

    def summary(self) -> dict:
        """Counts per label, how often the model that answered was right, and what it answered
        when it was wrong (what a teacher wants to know: which digit is read as which)."""
        per_label = Counter(self.labels)
        right: Counter = Counter()
        wrong: dict[str, Counter] = {label: Counter() for label in LABELS}
        for label, record in zip(self.labels, self.records, strict=True):
            if answered_right(label, record):
                right[label] += 1
            else:
                answer = record.get("answer")
                wrong[label]["doubted" if answer is None or not record.get("sure") else str(answer)] += 1
        return {
            "samples": len(self),
            "sha256": self.sha256,
            "labels": {
                label: {
                    "samples": per_label[label],
                    "model_right": right[label],
                    "wrong_answers": dict(wrong[label].most_common()),
                }
                for label in LABELS
                if per_label[label]
            },
            "model_right": sum(right.values()),
            "models": dict(Counter(str(r.get("model_sha256", ""))[:12] for r in self.records)),
        }


def answered_right(label: str, record: dict) -> bool:
    """Whether the model's answer stored with a sample was right: the digit for a digit, and a
    doubt (no sure answer) for a picture that is not one."""
    if label == NOT_A_DIGIT:
        return not record.get("sure")
    return record.get("answer") is not None and str(record.get("answer")) == label


def read_samples(path: Path) -> Samples:
    """The samples of a collection folder, or of a ``samples --export`` file (``.npz``)."""
    if path.is_dir():
        return _read_folder(path)
    if path.is_file():
        return _read_export(path)
    raise RuntimeInputError(f"{path}: no such collection folder or samples file")


def _read_folder(folder: Path) -> Samples:
    """Every sample folder (named as this tool names them); one that cannot be read, or a copy
    of one under another name, is skipped and said in ``Samples.skipped``, not fatal."""
    images, labels, records, skipped = [], [], [], []
    try:
        entries = sorted(entry for entry in folder.iterdir() if SAMPLE_ID.fullmatch(entry.name))
    except OSError as exc:
        raise RuntimeInputError(f"{folder}: cannot list the folder ({exc.strerror})") from None
    for entry in entries:
        try:
            record = json.loads((entry / SAMPLE_FILE).read_text())
            if not isinstance(record, dict) or record.get("id") != entry.name:
                raise ValueError("its record is not this folder's")
            label = parse_label(record.get("label"))
            image = read_png_28((entry / MNIST_FILE).read_bytes(), str(entry / MNIST_FILE))
        except (OSError, ValueError, RecursionError, RuntimeInputError) as exc:
            skipped.append(
                f"{entry.name}: {str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}"
            )
            continue
        images.append(image)
        labels.append(label)
        records.append(record)
    if not labels:
        raise RuntimeInputError(
            f"{folder}: no samples in this folder" + (f" ({len(skipped)} unreadable)" if skipped else "")
        )
    return Samples(np.stack(images), labels, records, str(folder), skipped)


def _declared_shapes(path: Path) -> dict[str, tuple]:
    """The shape each array of an .npz declares, read from its header without loading it."""
    import zipfile

    shapes = {}
    with zipfile.ZipFile(path) as archive:
        for name in ("images", "labels", "records"):
            with archive.open(f"{name}.npy") as member:
                version = np.lib.format.read_magic(member)
                if version not in ((1, 0), (2, 0)):
                    raise ValueError(f"{name}: .npy version {version}")
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read_header(member)
                shapes[name] = (shape, dtype)
    return shapes


def _read_export(path: Path) -> Samples:
    import zipfile

    try:
        shapes = _declared_shapes(path)
        for name, (shape, dtype) in shapes.items():
            if len(shape) != (3 if name == "images" else 1) or shape[0] > MAX_READ_SAMPLES or dtype.hasobject:
                raise ValueError(f"its {name} are not a samples file's")
            # What each array declares is checked whole before any of it is allocated.
            if name == "images" and (shape[1:] != (SIDE, SIDE) or dtype != np.uint8):
                raise ValueError("its images are not 28x28 uint8 pictures")
            if name != "images" and (dtype.kind not in "US" or dtype.itemsize > 4 * MAX_TEXT_CHARS):
                raise ValueError(f"its {name} are not a samples file's")
        with np.load(path, allow_pickle=False) as data:
            images = np.asarray(data["images"])
            labels = [parse_label(str(label)) for label in data["labels"]]
            records = [json.loads(str(line)) for line in data["records"]]
        if not all(isinstance(record, dict) for record in records):
            raise ValueError("its records are not JSON objects")
    except (
        OSError,
        ValueError,
        KeyError,
        EOFError,
        zlib.error,
        zipfile.BadZipFile,
        RecursionError,
        RuntimeInputError,
    ) as exc:
        # numpy takes any file that is not an .npz for a pickle, which it refuses to load.
        why = (
            ""
            if "pickle" in str(exc) or isinstance(exc, zipfile.BadZipFile)
            else f" ({str(exc).splitlines()[0][:120]})"
        )
        raise RuntimeInputError(
            f"{path}: not a samples file written by mnist-edge-runtime samples --export{why}"
        ) from None
    if images.dtype != np.uint8 or images.shape[1:] != (SIDE, SIDE):
        raise RuntimeInputError(f"{path}: its images are not 28x28 uint8 pictures")
    if not len(labels) == len(records) == len(images):
        raise RuntimeInputError(f"{path}: images, labels and records differ in number")
    if not labels:
        raise RuntimeInputError(f"{path}: no samples in this file")
    return Samples(images, labels, records, str(path))


def export_samples(samples: Samples, out: Path) -> None:
    """One portable ``.npz`` file of ``samples``, written to a temporary file and renamed."""
    if out.suffix != ".npz":
        raise RuntimeInputError(f"{out}: the export is an .npz file; name it so")
    if out.exists():  # an earlier export, or anything else: never replaced
        raise RuntimeInputError(f"{out}: already exists; choose a new name")
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
    try:
        with open(tmp, "xb") as file:
            np.savez_compressed(
                file,
                images=samples.images,
                labels=np.array(samples.labels, dtype="<U1"),
                records=np.array([json.dumps(r) for r in samples.records], dtype=str),
            )
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        with contextlib.suppress(OSError):  # a read-only disk cannot have it either
            tmp.unlink(missing_ok=True)
        raise RuntimeInputError(f"{out}: cannot write the export ({exc.strerror or exc})") from None
