"""Publishing a bundle: the staging folder, the manifest, carrying over what the user keeps there,
and the one atomic exchange that makes the new bundle the bundle (with its recovery).

The bundle folder holds ``<model>.<precision>.<ext>`` files and ``manifest.json``. It is built in
a staging folder beside the output and swapped in atomically (``swap_in``), so an interrupted
export leaves either the old bundle or the new one, never a manifest that points at a
half-written file. Nothing here deletes what this tool did not write: a non-empty folder that is
not a bundle is refused, and files in a bundle that the manifest does not list are kept.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mnist_edge_runtime.bundle import read_manifest, sha256_file
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.idx import content_sha256
from mnist_edge_runtime.machine import describe_machine

from mnist_edge.converters import ExportFormat, ExportJob, tflm_header_name
from mnist_edge.errors import UserError
from mnist_edge.files import write_json_atomically
from mnist_edge.models import OUTPUT_ACTIVATION
from mnist_edge.validate import Gates, Validation
from mnist_edge.versions import package_versions

if TYPE_CHECKING:
    from mnist_edge.tflm import MicroModel


def new_staging(bundle: Path) -> Path:
    """An empty folder beside ``bundle`` to build the new bundle in."""
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle.name}.staging-", dir=bundle.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the bundle is for everyone to read
    return staging


def publish(staging: Path, bundle: Path) -> None:
    """Make ``staging`` (manifest written) the bundle, keeping what the old one had and this did not remake."""
    if bundle.exists():
        carry_over(bundle, staging)  # old artifacts not remade, and whatever else the user keeps there
    swap_in(staging, bundle)


LABELS = list(range(10))


def input_spec(model: str, path: Path) -> dict:
    from mnist_edge_runtime.backends import open_model

    spec = open_model(path).input
    quantized = spec.quantized
    return {
        "shape": [None, *spec.shape],
        "dtype": spec.dtype.name,
        "layout": "N x 784, row-major 28x28" if model == "flat" else "NHWC, N x 28 x 28 x 1",
        "pixel_range": "0..255 raw pixels" if quantized else "0..1 (pixel / 255)",
        "polarity": "MNIST: ink is bright (255), background is black (0)",
        "quantization": {"scale": spec.scale, "zero_point": spec.zero_point} if quantized else None,
    }


def output_spec(model: str, path: Path, outputs_logits: bool) -> dict:
    from mnist_edge_runtime.backends import open_model

    spec = open_model(path).output
    return {
        "shape": [None, 10],
        "dtype": spec.dtype.name,
        "quantization": {"scale": spec.scale, "zero_point": spec.zero_point} if spec.quantized else None,
        # Outputs are logits: scores = this activation of the dequantized output (None: outputs are scores).
        "activation": OUTPUT_ACTIVATION[model] if outputs_logits else None,
        "confidence": (
            "sigmoid score of each digit, independent per class (the original's); "
            "prediction = argmax, runner-up = argmax of the rest"
            if model == "conv2d"
            else "softmax probability of each digit; prediction = argmax, runner-up = argmax of the rest"
        ),
    }


def read_existing_manifest(bundle: Path) -> dict:
    """The bundle's current manifest, or an empty one for a new (missing or empty) folder.

    A folder that holds anything but is not one of our bundles is refused: export would
    otherwise replace a user's folder.
    """
    if bundle.exists() and not bundle.is_dir():
        raise UserError(f"{bundle}: exists and is not a folder")
    if not (bundle / "manifest.json").exists():
        if bundle.exists() and any(bundle.iterdir()):
            raise UserError(
                f"{bundle}: folder is not empty and holds no manifest.json: not an export bundle "
                "(choose a new or empty folder for --bundle)"
            )
        return {"artifacts": {}}
    try:
        return read_manifest(bundle)
    except RuntimeInputError as exc:
        raise UserError(str(exc)) from None


def carry_over(bundle: Path, staging: Path) -> None:
    """Put everything of the old bundle that this export did not make into ``staging``, unchanged.

    Files are hard-linked, not copied: after the swap they are the very same files (same inode,
    contents and times), so nothing the user had is lost when the old folder's names are removed.
    """
    for source in sorted(bundle.rglob("*")):
        target = staging / source.relative_to(bundle)
        if target.exists() or target.is_symlink():
            continue  # remade by this export (or a folder already created)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_dir():
            target.mkdir()
            shutil.copystat(source, target)
        else:
            try:
                os.link(source, target)
            except OSError as exc:
                raise UserError(
                    f"{source}: cannot keep this file through the export ({exc.strerror}); "
                    "move it out of the bundle or export to a new folder"
                ) from None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return done == 0


def swap_in(staging: Path, bundle: Path) -> None:
    """Publish ``staging`` as ``bundle``: a kill at any moment leaves the old bundle or the new one.

    A new bundle is one rename. An existing one is exchanged with the staging folder in one
    atomic step where the system can (Linux); elsewhere two renames, the old bundle kept
    aside until the second, and put back by ``recover_interrupted_swap`` if a kill comes between.
    Only then is the old folder removed: it holds nothing but what this tool wrote before
    and second names of the files ``carry_over`` linked into the new bundle.
    """
    if not bundle.exists():
        os.replace(staging, bundle)
        return
    if not any(bundle.iterdir()):  # the user's empty folder: fill it, the manifest last
        for path in sorted(staging.iterdir(), key=lambda p: p.name == "manifest.json"):
            os.replace(path, bundle / path.name)
        return
    if _exchange(staging, bundle):
        shutil.rmtree(staging)
        return
    previous = bundle.with_name(bundle.name + ".previous")
    os.replace(bundle, previous)
    os.replace(staging, bundle)
    shutil.rmtree(previous)


def recover_interrupted_swap(bundle: Path) -> None:
    """If an export died between the two renames of ``swap_in``, put the old bundle back."""
    previous = bundle.with_name(bundle.name + ".previous")
    if (previous / "manifest.json").exists() and not bundle.exists():  # ours, not a user's folder
        os.replace(previous, bundle)


@dataclass
class ExportedArtifact:
    filename: str
    fmt: ExportFormat
    validation: Validation
    bytes: int
    collected: dict | None = None  # held-out collected samples, before and after (learn.py)


def write_manifest(
    manifest: dict,
    jobs: list[ExportJob],
    exported: list[ExportedArtifact],
    staging: Path,
    gates: Gates,
) -> None:
    # Artifacts of the old bundle that this export did not remake stay listed (carry_over keeps the files).
    artifacts = dict(manifest.get("artifacts", {}))
    by_model = {job.model_name: job for job in jobs}
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    machine = describe_machine()  # int8 figures depend on the CPU's instruction set: say which one
    for artifact in exported:
        job, path = by_model[artifact.validation.model], staging / artifact.filename
        validation = artifact.validation.as_dict()
        validation["test_images"] = len(job.data.test)
        validation["test_data_sha256"] = content_sha256(job.data.test.images, job.data.test.labels)
        validation["float_model_accuracy"] = round(job.float_accuracy, 6)
        validation["original_accuracy"] = gates.original_accuracy[job.model_name]
        validation["measured_on"] = machine
        with _model_file_of(artifact, path) as model_file:
            entry = {
                "file": artifact.filename,
                "model": job.model_name,
                "format": artifact.fmt.format,
                "precision": artifact.fmt.precision,
                "sha256": sha256_file(path),
                "bytes": artifact.bytes,
                "input": input_spec(job.model_name, model_file),
                "output": output_spec(job.model_name, model_file, artifact.fmt.outputs_logits),
                "labels": LABELS,
                "validation": validation,
                "source": _source_summary(job),
                "tools": package_versions(),
                "created": created,
            }
        if artifact.fmt.format == "tflm":
            entry["tflm"] = micro_summary(job.micro["description"], path, staging)
        if artifact.collected is not None:
            entry["collected_samples"] = {"sets": job.run_record["collected"]["sets"], **artifact.collected}
        artifacts[artifact.filename] = entry
    write_json_atomically(
        staging / "manifest.json",
        {"format_version": 1, "artifacts": dict(sorted(artifacts.items()))},
    )


@contextlib.contextmanager
def _model_file_of(artifact: ExportedArtifact, path: Path) -> Iterator[Path]:
    """A model file to read input and output specs from: the artifact, or the model in its C source."""
    if artifact.fmt.format != "tflm":
        yield path
        return
    from mnist_edge import tflm

    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / "model.tflite"
        model_file.write_bytes(tflm.bytes_of_c_source(path.read_text()))
        yield model_file


def micro_summary(micro: MicroModel, path: Path, staging: Path) -> dict:
    """The microcontroller figures of a TFLM artifact (``micro``: its ``tflm.MicroModel``), for the manifest."""
    from mnist_edge import tflm

    header = staging / tflm_header_name(micro.name)
    return {
        "header": {"file": header.name, "sha256": sha256_file(header), "bytes": header.stat().st_size},
        "model_bytes": len(micro.model),
        "arena_bytes_measured": micro.arena_measured,
        "arena_bytes": micro.arena,
        "arena_margin": tflm.ARENA_MARGIN,
        "arena_measured_with": "tflite-micro on x86_64 (reference kernels)",
        "operators": micro.operators,
        "rodata_bytes_cortex_m0plus": tflm.rodata_bytes(path),  # None where arm-none-eabi-gcc is missing
    }


def _source_summary(job: ExportJob) -> dict:
    record = job.run_record
    keep = (
        "model",
        "config",
        "seed",
        "parameters",
        "data",
        "validation_accuracy",
        "test_accuracy",
        "wall_seconds",
        "cpu",
        "versions",
        "collected",
    )
    summary = {k: record[k] for k in keep if k in record}
    if job._qat is not None and "qat" in record:
        summary["qat"] = record["qat"]
    return summary
