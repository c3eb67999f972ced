"""The export bundle: ``manifest.json`` beside the model files, and the checks made before loading.

A model file is never handed to an interpreter unchecked: tflite-runtime 2.14
can crash the whole process on a truncated or corrupted ``.tflite``. With a
manifest entry the file's size and SHA-256 must match it. Without one, the
file must carry the ``TFL3`` identifier and a sane flatbuffer header, and it is
then loaded once in a child process, so that a crash kills the child, not us.
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

from mnist_edge_runtime.errors import RuntimeInputError, not_a_file

MANIFEST = "manifest.json"
# Published test accuracy of the original mnist-digit-classification project.
ORIGINAL_ACCURACY = {"conv2d": 0.9932, "flat": 0.9746}
# How far a device's accuracy may fall below the manifest's before parity fails, by interpreter and
# precision. The manifest is measured with ai-edge-litert and onnxruntime. With ai-edge-litert the
# int8 models give bit-identical outputs, so the same top-1 prediction on every one of the 10,000
# test images, on every CPU class tried (SSE4.2, AVX2, AVX-512 VNNI, Cortex-A72 and A76:
# tests/emulation/cpu_matrix.py, in CI), so an int8 model must reproduce its figure exactly there.
# Everything else gets 0.05 percentage points: onnxruntime's aarch64 int8 kernels can give other
# logits than its x86 ones (an earlier bundle's flat int8 scores up to 0.033 apart, and one test
# image of 10,000 with another top-1 on Cortex-A72 and A76); tflite-runtime 2.14 has other int8
# kernels (its accuracy differs from ai-edge-litert's by one test image of 10,000 per model, and
# it differs from itself on SSE4.2-only x86 on 1 or 2 images); float
# kernels round differently with FMA and vector width (scores within 1.1e-6 of an SSE4.2-only
# CPU's; no top-1 flipped on the 10,000 images, but a near-tie could).
# tflite-micro (TFLM's reference kernels, for the microcontroller C sources, run by the toolchain
# only) gives bit-identical int8 outputs on SSE4.2, AVX2 and AVX-512 VNNI x86 too (same matrix).
EXACT_INT8_BACKENDS = ("litert", "tflite-micro")
PARITY_TOLERANCE = 0.0005  # 0.05 percentage points


def parity_tolerance(backend: str | None, precision: str | None) -> float:
    return 0.0 if precision == "int8" and backend in EXACT_INT8_BACKENDS else PARITY_TOLERANCE


DEFAULT_MODEL = "conv2d.int8.tflite"
# The bundle this package carries (mnist_edge/packaged.py writes it from export/): the int8 TFLite
# models, their manifest entries and the MNIST test set, so a plain install works in any folder.
PACKAGED_BUNDLE = Path(__file__).parent / "bundle"
PACKAGED_IMAGES = PACKAGED_BUNDLE / "t10k-images-idx3-ubyte.gz"
PACKAGED_LABELS = PACKAGED_BUNDLE / "t10k-labels-idx1-ubyte.gz"


def packaged_bundle_id() -> str:
    """The packaged bundle in a few words: its models and the SHA-256 of its manifest (short)."""
    try:
        manifest = (PACKAGED_BUNDLE / MANIFEST).read_bytes()
    except OSError:
        return "no packaged bundle"
    artifacts = json.loads(manifest).get("artifacts", {})
    names = ", ".join(artifacts)
    # A bundle fine-tuned on samples collected on devices says which (mnist-edge train --extra-data).
    sets = {
        s["sha256"][:12]
        for a in artifacts.values()
        for s in (a.get("collected_samples") or {}).get("sets", [])
    }
    learned = f"; learned from collected samples {', '.join(sorted(sets))}" if sets else ""
    return f"bundle {hashlib.sha256(manifest).hexdigest()[:12]} ({names}{learned})"


def read_manifest(bundle: Path) -> dict:
    path = Path(bundle) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise RuntimeInputError(f"{path}: no manifest (is {bundle} an mnist-edge export bundle?)") from None
    except (OSError, ValueError) as exc:
        raise RuntimeInputError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("artifacts"), dict):
        raise RuntimeInputError(f"{path}: not an mnist-edge manifest (no 'artifacts' table)")
    for name in manifest["artifacts"]:
        # Each key names a file in the bundle folder itself: nothing may reach outside it.
        if name in ("", ".", "..") or "/" in name or "\\" in name or name != Path(name).name:
            raise RuntimeInputError(f"{path}: artifact name {name!r} is not a plain file name")
        _check_entry(path, name, manifest["artifacts"][name])
    return manifest


def _check_entry(path: Path, name: str, entry: object) -> None:
    """An entry is a table, and an accuracy it records is a fraction (a nan would pass parity)."""
    if not isinstance(entry, dict):
        raise RuntimeInputError(f"{path}: the entry of {name} is not a table")
    validation = entry.get("validation", {})
    if not isinstance(validation, dict):
        raise RuntimeInputError(f"{path}: the validation of {name} is not a table")
    accuracy = validation.get("accuracy", 0.0)
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not 0 <= accuracy <= 1:
        raise RuntimeInputError(
            f"{path}: the validation accuracy of {name} is {accuracy!r}, not a fraction 0-1"
        )


def manifest_entry(model: Path) -> dict | None:
    """The manifest entry of ``model`` if a manifest sits beside it, else None."""
    if not (model.parent / MANIFEST).exists():
        return None
    entry = read_manifest(model.parent)["artifacts"].get(model.name)
    if entry is None:
        raise RuntimeInputError(f"{model}: not listed in {model.parent / MANIFEST}")
    return entry


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_against_manifest(path: Path, entry: dict) -> None:
    size = path.stat().st_size
    if size != entry.get("bytes"):
        raise RuntimeInputError(
            f"{path}: {size} bytes, the manifest says {entry.get('bytes')} (damaged or replaced)"
        )
    if sha256_file(path) != entry.get("sha256"):
        raise RuntimeInputError(f"{path}: SHA-256 does not match the manifest (damaged or replaced)")


def check_tflite_header(path: Path) -> None:
    """The cheap structural checks: flatbuffer root offset and the ``TFL3`` identifier."""
    with open(path, "rb") as f:
        head = f.read(8)
    size = path.stat().st_size
    if size == 0:
        raise RuntimeInputError(f"{path}: empty file")
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise RuntimeInputError(f"{path}: not a TFLite model (no TFL3 identifier)")
    (root,) = struct.unpack("<I", head[:4])
    if not 8 <= root < size:
        raise RuntimeInputError(f"{path}: corrupt TFLite flatbuffer (root offset {root} outside the file)")


# Run with ``python -I`` (no PYTHONPATH, no user site, not the current folder): a file lying in the
# folder where the command runs cannot take the place of a module. The parent's own import path
# (without the current folder) is handed over explicitly.
_PROBE = """
import json, sys
sys.path[:0] = json.loads(sys.argv[3])
from mnist_edge_runtime.backends import open_model
model = open_model(sys.argv[1], sys.argv[2] or None)
model.run(__import__("numpy").zeros((1, *model.input.shape), model.input.dtype))
"""


def probe_in_child(path: Path, backend: str | None, timeout: float = 60.0) -> None:
    """Load and run ``path`` once in a child process; a crash there becomes a clean error here."""
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-I",
                "-c",
                _PROBE,
                str(path),
                backend or "",
                json.dumps([p for p in sys.path if p]),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeInputError(f"{path}: loading the model hung for {timeout:.0f}s") from None
    if done.returncode < 0:
        raise RuntimeInputError(
            f"{path}: corrupt model (the interpreter crashed with signal {-done.returncode})"
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise RuntimeInputError(f"{path}: not a loadable model ({last[:200]})")


def check_model_file(path: Path, backend: str | None = None) -> dict | None:
    """Everything that must hold before ``path`` is loaded; returns its manifest entry, if any."""
    path = Path(path)
    if not path.is_file():
        raise not_a_file(path, "model file")
    entry = manifest_entry(path)
    if entry is not None:
        verify_against_manifest(path, entry)
        return entry
    if path.suffix == ".tflite":
        check_tflite_header(path)
        probe_in_child(path, backend)
    elif path.stat().st_size == 0:
        raise RuntimeInputError(f"{path}: empty file")
    return None


def parity_verdict(
    model: str, accuracy: float, manifest_accuracy: float | None, tolerance: float = PARITY_TOLERANCE
) -> tuple[bool, list[str]]:
    """Pass when at least the manifest's accuracy (minus ``tolerance``) and the original's figure."""
    problems = []
    if manifest_accuracy is not None and accuracy < manifest_accuracy - tolerance - 1e-9:
        allowed = f" - {tolerance:.2%}" if tolerance else " exactly"
        problems.append(f"below its manifest accuracy {manifest_accuracy:.2%}{allowed}")
    original = ORIGINAL_ACCURACY.get(model)
    if original is not None and accuracy < original:
        problems.append(f"below the original {original:.2%}")
    return not problems, problems
