"""Export trained models to TFLite and ONNX, validate every artifact, write the bundle.

The export formats are data: ``FORMATS`` is a table of (format, precision,
function), and each function turns one model into the bytes of one file.
Every artifact is validated on all 10,000 test images (``validate.py``) before
anything in the output folder changes; if any gate fails, the previous bundle
stays exactly as it was.

The bundle folder holds ``<model>.<precision>.<ext>`` files and
``manifest.json``. It is built in a staging folder beside the output and
swapped in atomically (``swap_in``), so an interrupted export leaves either the
old bundle or the new one, never a manifest that points at a half-written file.
Export never deletes what it did not write: a non-empty folder that is not a
bundle is refused, and files in a bundle that the manifest does not list are
kept as they are.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mnist_edge_runtime.backends import apply_activation, open_model, predict_scores
from mnist_edge_runtime.bundle import read_manifest, sha256_file
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.idx import content_sha256
from mnist_edge_runtime.machine import describe_machine
from mnist_edge_runtime.metadata import OUTPUT_METADATA
from mnist_edge_runtime.quiet import native_stderr_silenced

from mnist_edge.data import Mnist
from mnist_edge.errors import GateFailedError, UserError
from mnist_edge.files import ensure_writable_dir, read_json, write_json_atomically
from mnist_edge.models import OUTPUT_ACTIVATION, load_model, model_input
from mnist_edge.tensorflow_quiet import keras, tf
from mnist_edge.validate import Gates, Validation, judge_scores, validate_artifact
from mnist_edge.versions import package_versions

ONNX_OPSET = 17  # within tf2onnx's tested range (13-18) and onnxruntime's full support
LABELS = list(range(10))


# --- what an export works from -------------------------------------------------------


@dataclass
class ExportJob:
    """One model being exported: its float model, data, and what was built so far."""

    model_name: str
    float_model: keras.Model
    run_record: dict
    data: Mnist
    calibration_size: int
    qat_provider: Callable[[], keras.Model]
    built: dict[str, bytes] = field(default_factory=dict)
    micro: dict[str, object] = field(default_factory=dict)  # what --format tflm measured
    float_accuracy: float | None = None
    _qat: keras.Model | None = None

    @property
    def qat_model(self) -> keras.Model:
        if self._qat is None:
            self._qat = self.qat_provider()
        return self._qat

    def calibration_images(self) -> np.ndarray:
        """A fixed random sample of *training* images (never test images)."""
        rng = np.random.default_rng(1234)
        n = min(self.calibration_size, len(self.data.train))
        return self.data.train.images[rng.choice(len(self.data.train), n, replace=False)]

    def input_signature(self) -> tf.TensorSpec:
        shape = (None, 784) if self.model_name == "flat" else (None, 28, 28, 1)
        return tf.TensorSpec(shape, tf.float32, name=self.float_model.input_names[0])


# --- one small function per format ---------------------------------------------------


def export_tflite_float32(job: ExportJob) -> bytes:
    return tf.lite.TFLiteConverter.from_keras_model(job.float_model).convert()


def export_tflite_dynamic(job: ExportJob) -> bytes:
    """int8 weights, float activations: no calibration data needed."""
    converter = tf.lite.TFLiteConverter.from_keras_model(job.float_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def export_tflite_int8(job: ExportJob) -> bytes:
    """Full-integer model from the QAT model: uint8 pixels in, int8 logits out (see OUTPUT_ACTIVATION)."""
    if "tflite-int8" not in job.built:  # TFLM's C source embeds the same model
        converter = tf.lite.TFLiteConverter.from_keras_model(job.qat_model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.int8
        calibration = model_input(job.model_name, job.calibration_images()).numpy()
        converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
        content = converter.convert()
        assert_full_integer(content)
        job.built["tflite-int8"] = content
    return job.built["tflite-int8"]


def export_tflm_int8(job: ExportJob) -> bytes:
    """The int8 .tflite as C source for TensorFlow Lite for Microcontrollers (mnist_edge/tflm.py)."""
    from mnist_edge import tflm

    # Byte for byte the bundle's .int8.tflite: the same conversion, the same metadata.
    model = with_output_metadata("tflite", export_tflite_int8(job), job.model_name, outputs_logits=True)
    sample = job.calibration_images()[:1].reshape((1, 784) if job.model_name == "flat" else (1, 28, 28, 1))
    micro = tflm.describe(job.model_name, model, OUTPUT_ACTIVATION[job.model_name], sample)
    job.micro["description"] = micro
    job.micro["header"] = tflm.c_header(micro).encode()
    return tflm.c_source(micro).encode()


def export_onnx_float32(job: ExportJob) -> bytes:
    if "onnx-float32" not in job.built:
        import onnx
        import tf2onnx

        proto, _ = tf2onnx.convert.from_keras(
            job.float_model, input_signature=[job.input_signature()], opset=ONNX_OPSET
        )
        onnx.checker.check_model(proto, full_check=True)
        proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
        job.built["onnx-float32"] = proto.SerializeToString()
    return job.built["onnx-float32"]


def export_onnx_int8(job: ExportJob) -> bytes:
    """Static int8 quantization (QDQ, signed 8-bit, per-channel 7-bit weights) of the float ONNX model.

    tf2onnx turns tfmot's fake-quantization into partial QDQ only (the
    convolutions stay float), so onnxruntime's own quantizer, calibrated on
    training images, makes the int8 model instead (README, "Export").

    ``reduce_range`` keeps every weight within 7 bits. onnxruntime's x86 kernels
    without VNNI (AVX2, AVX-512 without VNNI) multiply 8-bit pairs and add two
    products in 16 bits, which saturates for full-range weights: predictions
    then depended on the CPU (99.40% against 99.30% for conv2d on AVX2 and
    SSE4.2). With 7-bit weights no sum can overflow, so every CPU computes the
    same integers (tests/emulation/cpu_matrix.py checks it).
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    name = job.input_signature().name
    calibration = model_input(job.model_name, job.calibration_images()).numpy()

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration[i : i + 64] for i in range(0, len(calibration), 64))

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {name: batch}

    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "float.onnx"), Path(tmp, "int8.onnx")
        # Quantize the graph up to the logits, as the int8 TFLite model does: a quantized sigmoid
        # or softmax output rounds every runner-up below 1/256 to 0.
        logits = without_final_activation(onnx.load_from_string(export_onnx_float32(job)))
        source.write_bytes(logits.SerializeToString())
        quantize_static(
            str(source),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            reduce_range=True,
        )
        return target.read_bytes()


def without_final_activation(proto):
    """The ONNX graph with its last node, the output's Sigmoid or Softmax, removed: it outputs logits."""
    graph = proto.graph
    last = next(node for node in graph.node if graph.output[0].name in node.output)
    if last.op_type not in ("Sigmoid", "Softmax"):
        raise GateFailedError(f"ONNX graph ends in {last.op_type}, not the expected Sigmoid or Softmax")
    graph.node.remove(last)
    for node in graph.node:  # whatever fed the activation now feeds the graph's output
        node.output[:] = [graph.output[0].name if name == last.input[0] else name for name in node.output]
    return proto


def with_output_metadata(fmt: str, content: bytes, model: str, outputs_logits: bool) -> bytes:
    """Write into the model file what its output is (see mnist_edge_runtime.metadata)."""
    value = json.dumps(
        {"outputs": "logits", "activation": OUTPUT_ACTIVATION[model]}
        if outputs_logits
        else {"outputs": "scores", "activation": None}
    )
    if fmt == "onnx":
        import onnx

        proto = onnx.load_from_string(content)
        entry = proto.metadata_props.add()
        entry.key, entry.value = OUTPUT_METADATA, value
        return proto.SerializeToString()
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model_object = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    buffer = schema.BufferT()
    buffer.data = list(value.encode())
    model_object.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = OUTPUT_METADATA, len(model_object.buffers) - 1
    model_object.metadata = [*(model_object.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model_object))


@dataclass(frozen=True)
class ExportFormat:
    format: str  # tflite | onnx
    precision: str  # float32 | dynamic | int8
    build: Callable[[ExportJob], bytes]
    option: str | None  # made only when this CLI option is given (--int8, --dynamic)
    outputs_logits: bool = False  # the runtime applies the model's activation to its output
    extension: str | None = None  # the file's extension where it is not the format's name

    def filename(self, model: str) -> str:
        return f"{model}.{self.precision}.{self.extension or self.format}"


FORMATS = [
    ExportFormat("tflite", "float32", export_tflite_float32, option=None),
    ExportFormat("tflite", "dynamic", export_tflite_dynamic, option="dynamic"),
    ExportFormat("tflite", "int8", export_tflite_int8, option="int8", outputs_logits=True),
    ExportFormat("onnx", "float32", export_onnx_float32, option=None),
    ExportFormat("onnx", "int8", export_onnx_int8, option="int8", outputs_logits=True),
    ExportFormat("tflm", "int8", export_tflm_int8, option="int8", outputs_logits=True, extension="tflm.c"),
]


def select_formats(fmt: str, int8: bool = False, dynamic: bool = False) -> list[ExportFormat]:
    """The rows of ``FORMATS`` that ``--format``, ``--int8`` and ``--dynamic`` ask for."""
    int8 = int8 or fmt == "tflm"  # microcontrollers get the int8 model only
    options = {None, *(["int8"] if int8 else []), *(["dynamic"] if dynamic else [])}
    return [f for f in FORMATS if fmt in ("all", f.format) and f.option in options]


# --- checks on the produced files ----------------------------------------------------


def assert_full_integer(content: bytes) -> None:
    """Raise unless every tensor is integer and there is no DEQUANTIZE op inside."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    floats = [t["name"] for t in interpreter.get_tensor_details() if np.dtype(t["dtype"]).kind == "f"]
    if "DEQUANTIZE" in ops or floats:
        raise GateFailedError(
            "int8 TFLite model is not full-integer: "
            + ("DEQUANTIZE op present; " if "DEQUANTIZE" in ops else "")
            + (f"float tensors {floats[:3]}" if floats else "")
        )


# --- the bundle ------------------------------------------------------------------------


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


# --- the whole step ---------------------------------------------------------------------


@dataclass
class ExportedArtifact:
    filename: str
    fmt: ExportFormat
    validation: Validation
    bytes: int


class ExportProgress:
    """What the export reports; the CLI draws it."""

    def step(self, message: str) -> None: ...

    def artifact_done(self, artifact: ExportedArtifact) -> None: ...


def load_trained(model: str, runs: Path) -> tuple[keras.Model, dict]:
    path, record_path = runs / model / "model.keras", runs / model / "run.json"
    if not path.is_file():
        raise UserError(f"{path}: no trained model (run `mnist-edge train --model {model}` first)")
    try:
        float_model = load_model(str(path))
    except Exception as exc:  # a damaged zip, wrong config, foreign file: all mean "not our model"
        raise UserError(f"{path}: cannot load the model ({str(exc).splitlines()[0][:200]})") from None
    record = read_json(record_path) if record_path.is_file() else {}
    return float_model, record


def export_models(
    models: list[str],
    formats: list[ExportFormat],
    data: Mnist,
    runs: Path,
    bundle: Path,
    calibration_size: int,
    qat_provider: Callable[[str, keras.Model, dict], keras.Model],
    progress: ExportProgress | None = None,
    gates: Gates | None = None,
) -> list[ExportedArtifact]:
    """Export, validate, and (only if every gate passes) replace the bundle."""
    progress = progress or ExportProgress()
    gates = gates or Gates()
    if calibration_size < 1:
        raise UserError("--calibration-size must be at least 1")
    bundle = bundle.resolve()  # `--bundle .` has no name to put a staging folder beside
    recover_interrupted_swap(bundle)
    manifest = read_existing_manifest(bundle)
    ensure_writable_dir(bundle.parent)
    jobs = [_job(name, data, runs, calibration_size, qat_provider) for name in models]
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle.name}.staging-", dir=bundle.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the bundle is for everyone to read
    try:
        plans = {job.model_name: formats_in_step(formats, manifest, job.model_name) for job in jobs}
        exported = list(_export_all(jobs, plans, staging, progress, gates))
        failed = [a for a in exported if not a.validation.passed]
        if failed:
            raise GateFailedError(
                "validation failed, bundle left unchanged: "
                + "; ".join(f"{a.filename}: {', '.join(a.validation.failures())}" for a in failed)
            )
        _write_manifest(manifest, jobs, exported, staging, gates)
        if bundle.exists():
            carry_over(bundle, staging)  # old artifacts not remade, and whatever else the user keeps there
        swap_in(staging, bundle)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return exported


def _job(name: str, data: Mnist, runs: Path, calibration_size: int, qat_provider: Callable) -> ExportJob:
    float_model, record = load_trained(name, runs)
    return ExportJob(
        model_name=name,
        float_model=float_model,
        run_record=record,
        data=data,
        calibration_size=calibration_size,
        qat_provider=lambda: qat_provider(name, float_model, record),
    )


@contextlib.contextmanager
def converter_chatter_silenced() -> Iterator[None]:
    """Keep the converters' notes (C++ stderr, Python warnings, root-logger advice) off the screen.

    Failures still raise; the validation table says what each artifact is worth.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with native_stderr_silenced(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def formats_in_step(formats: list[ExportFormat], manifest: dict, model: str) -> list[ExportFormat]:
    """``formats``, plus the TFLM source where the bundle has one and the int8 .tflite is remade.

    The C array is byte for byte the int8 model; remaking one without the other would leave two
    different int8 models in one bundle.
    """
    kinds = {(f.format, f.precision) for f in formats}
    tflm = next(f for f in FORMATS if f.format == "tflm")
    if (
        ("tflite", "int8") in kinds
        and ("tflm", "int8") not in kinds
        and tflm.filename(model) in manifest["artifacts"]
    ):
        return [*formats, tflm]
    return formats


def _export_all(
    jobs: list[ExportJob],
    plans: dict[str, list[ExportFormat]],
    staging: Path,
    progress: ExportProgress,
    gates: Gates,
) -> Iterator[ExportedArtifact]:
    for job in jobs:
        formats = plans[job.model_name]
        test = job.data.test
        float_scores = job.float_model.predict(
            model_input(job.model_name, test.images), batch_size=1000, verbose=0
        )
        float_accuracy = float(np.mean(float_scores.argmax(axis=1) == test.labels))
        job.float_accuracy = float_accuracy
        for fmt in formats:
            filename = fmt.filename(job.model_name)
            progress.step(f"{filename}: converting")
            path = staging / filename
            with converter_chatter_silenced():
                content = fmt.build(job)
                if fmt.format != "tflm":  # C source says it in its header instead
                    content = with_output_metadata(fmt.format, content, job.model_name, fmt.outputs_logits)
            path.write_bytes(content)
            source_scores, source = float_scores, "float"
            activation = OUTPUT_ACTIVATION[job.model_name] if fmt.outputs_logits else None
            if fmt.format == "tflite" and fmt.precision == "int8":
                logits = job.qat_model.predict(
                    model_input(job.model_name, test.images), batch_size=1000, verbose=0
                )
                source_scores, source = apply_activation(logits, activation), "QAT"
            progress.step(f"{filename}: validating on {len(test)} test images")
            if fmt.format == "tflm":
                (staging / tflm_header_name(job.model_name)).write_bytes(job.micro["header"])
                validation = validate_micro(job, path, float_accuracy, gates, activation)
                artifact = ExportedArtifact(filename, fmt, validation, path.stat().st_size)
                progress.artifact_done(artifact)
                yield artifact
                continue
            validation, _ = validate_artifact(
                str(path),
                job.model_name,
                fmt.format,
                fmt.precision,
                test.images,
                test.labels,
                source_scores,
                source,
                float_accuracy,
                gates,
                activation,
            )
            artifact = ExportedArtifact(filename, fmt, validation, path.stat().st_size)
            progress.artifact_done(artifact)
            yield artifact


def tflm_header_name(model: str) -> str:
    return f"{model}.int8.tflm.h"


def validate_micro(
    job: ExportJob, path: Path, float_accuracy: float, gates: Gates, activation: str
) -> Validation:
    """Run the model *in the C source* through tflite-micro on every test image; compare with LiteRT."""
    from mnist_edge import tflm

    test, micro = job.data.test, job.micro["description"]
    model = tflm.bytes_of_c_source(path.read_text())
    scores = tflm.micro_scores(model, test.images, micro.arena, activation)
    with tempfile.TemporaryDirectory() as tmp:
        same_model = Path(tmp) / "model.tflite"
        same_model.write_bytes(model)
        litert = predict_scores(open_model(same_model, activation=activation), test.images)
    return judge_scores(
        str(path),
        job.model_name,
        "tflm",
        "int8",
        scores,
        test.labels,
        litert,
        "LiteRT",
        float_accuracy,
        gates,
    )


def _write_manifest(
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
            entry["tflm"] = _micro_summary(job, path, staging)
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


def _micro_summary(job: ExportJob, path: Path, staging: Path) -> dict:
    """The microcontroller figures of a TFLM artifact, for the manifest."""
    from mnist_edge import tflm

    micro = job.micro["description"]
    header = staging / tflm_header_name(job.model_name)
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
    )
    summary = {k: record[k] for k in keep if k in record}
    if job._qat is not None and "qat" in record:
        summary["qat"] = record["qat"]
    return summary
