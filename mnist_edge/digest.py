"""Write the digest into model files exported before models carried one, without re-training.

Every model ``mnist-edge export`` writes carries its own SHA-256 in its metadata
(``mnist_edge_runtime.metadata``), and the runtime refuses a file that does not match it. This
adds that entry to existing files: nothing else in them changes (weights, graph and the other
metadata stay byte for byte, as an export writes them), so their predictions do not either. A
bundle gets its TFLM C sources remade from the stamped int8 models (they embed them byte for
byte) and its manifest entries updated (``sha256``, ``bytes``, the microcontroller figures), and is
published as an export publishes it: built in a staging folder, swapped in in one atomic step.

    python -m mnist_edge.digest                  # the committed bundle, export/
    python -m mnist_edge.digest BUNDLE           # another bundle folder
    python -m mnist_edge.digest MODEL.tflite     # one model copied alone (.tflite or .onnx)

Then ``python -m mnist_edge.packaged --write`` refreshes the runtime's copy of export/. A file whose
digest or manifest entry it does not match is refused: stamping must not bless damage.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from mnist_edge_runtime.bundle import MANIFEST, read_manifest, sha256_file
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.metadata import digest_problem

from mnist_edge import packaged
from mnist_edge.converters import tflm_header_name, with_digest
from mnist_edge.errors import OneLineParser, UserError
from mnist_edge.files import write_bytes_atomically, write_json_atomically

MODEL_FORMATS = {".tflite": "tflite", ".onnx": "onnx"}


def stamped(path: Path) -> bytes:
    """The bytes of model file ``path`` with its digest written (the same bytes if it has it already)."""
    fmt = MODEL_FORMATS.get(path.suffix)
    if fmt is None:
        raise UserError(f"{path}: not a model file (expected .tflite or .onnx)")
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    problem = digest_problem(content)
    if problem:
        raise UserError(f"{path}: damaged model file ({problem}); restore it or export it again")
    try:
        return with_digest(fmt, content)
    except Exception as exc:  # the format's own parser: any failure means "not a model we can stamp"
        raise UserError(f"{path}: cannot read it as {fmt} ({str(exc).splitlines()[0][:200]})") from None


def stamp_model(path: Path) -> bool:
    """Write the digest into one model file, in place (a temporary file renamed over it); True if it changed.

    A file listed in a manifest beside it is refused: the manifest's SHA-256 would no longer match
    it (``stamp_bundle`` updates both).
    """
    path = Path(path)
    if path.name in _listed(path.parent):
        raise UserError(f"{path}: listed in {path.parent / MANIFEST}: stamp the bundle folder instead")
    content = stamped(path)
    if content == path.read_bytes():
        return False
    write_bytes_atomically(path, content)
    return True


def stamp_bundle(bundle: Path) -> list[str]:
    """Write the digest into every model of ``bundle``, remake its TFLM sources, update its manifest,
    and publish the result in one atomic exchange. Returns the names of the files that changed."""
    from mnist_edge import tflm
    from mnist_edge.publish import (
        micro_summary,
        new_staging,
        publish,
        read_existing_manifest,
        recover_interrupted_swap,
    )

    bundle = Path(bundle).resolve()
    recover_interrupted_swap(bundle)
    if not (bundle / MANIFEST).is_file():
        raise UserError(f"{bundle}: no {MANIFEST} (not an export bundle)")
    manifest = read_existing_manifest(bundle)
    artifacts = manifest["artifacts"]
    changed: dict[str, bytes] = {}
    for name, entry in artifacts.items():
        if entry.get("format") in MODEL_FORMATS.values():
            _check_against_manifest(bundle / name, entry)
            content = stamped(bundle / name)
            if content != (bundle / name).read_bytes():
                changed[name] = content
    micro = {}
    for name, entry in artifacts.items():
        if entry.get("format") != "tflm":
            continue
        _check_against_manifest(bundle / name, entry)
        model_name = entry["model"]
        embedded = tflm.bytes_of_c_source((bundle / name).read_text())
        int8 = f"{model_name}.int8.tflite"
        model = changed.get(int8) or (
            (bundle / int8).read_bytes() if int8 in artifacts else with_digest("tflite", embedded)
        )
        if model == embedded:
            continue
        micro[name] = tflm.describe(model_name, model, entry["output"]["activation"], _sample(model_name))
        changed[name] = tflm.c_source(micro[name]).encode()
        changed[tflm_header_name(model_name)] = tflm.c_header(micro[name]).encode()
    if not changed:
        return []
    # A remade header is written even when it comes out the same: the manifest's figures are read from it.
    differing = [name for name in changed if _read(bundle / name) != changed[name]]
    staging = new_staging(bundle)
    try:
        for name, content in changed.items():
            (staging / name).write_bytes(content)
        for name in changed:
            if name in artifacts:
                artifacts[name]["sha256"] = sha256_file(staging / name)
                artifacts[name]["bytes"] = len(changed[name])
            if name in micro:
                artifacts[name]["tflm"] = micro_summary(micro[name], staging / name, staging)
        write_json_atomically(staging / MANIFEST, manifest)
        publish(staging, bundle)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted([*differing, MANIFEST])


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _listed(folder: Path) -> dict:
    """The artifacts the manifest in ``folder`` lists ({} where there is none, or none readable)."""
    try:
        return read_manifest(folder)["artifacts"]
    except RuntimeInputError:
        return {}


def _check_against_manifest(path: Path, entry: dict) -> None:
    if not path.is_file():
        raise UserError(f"{path}: listed in the manifest but missing")
    if path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
        raise UserError(f"{path}: does not match its manifest entry (damaged or replaced); restore it first")


def _sample(model_name: str):
    """One training image in the model's input shape, for tflite-micro's arena measurement.

    The arena tflite-micro needs depends on the model alone, not on the pixels (its memory plan is
    made when tensors are allocated), so any image gives the figure the export measured.
    """
    from mnist_edge.data import load_mnist

    image = load_mnist(None).train.images[:1]
    return image.reshape((1, 784) if model_name == "flat" else (1, 28, 28, 1))


def main(argv: list[str] | None = None) -> int:
    """``python -m mnist_edge.digest``: write the digest into existing model files and bundles."""

    parser = OneLineParser(
        prog="python -m mnist_edge.digest",
        description="Write the digest into model files exported before models carried one "
        "(exit codes: 0 done, 2 bad input or a damaged file).",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[packaged.EXPORT],
        help="bundle folders (models, TFLM sources and manifest) or lone .tflite/.onnx files (default: export/)",
    )
    args = parser.parse_args(argv)
    try:
        for path in args.paths:
            if path.is_dir():
                changed = stamp_bundle(path)
                print(
                    f"{path}: {', '.join(changed) if changed else 'every model carries its digest already'}"
                )
            elif path.is_file():
                print(f"{path}: {'digest written' if stamp_model(path) else 'carries its digest already'}")
            else:
                raise UserError(f"{path}: no such file or folder")
    except UserError as exc:
        print(f"mnist_edge.digest: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
