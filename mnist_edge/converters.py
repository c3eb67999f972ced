"""The export formats, as data: ``FORMATS`` is a table of (format, precision, function), and each
function turns one trained model (an ``ExportJob``) into the bytes of one file.

Adding a format is one function and one row. Nothing here touches the bundle folder: the export
run (``export.py``) validates what these functions make, and ``publish.py`` writes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mnist_edge_runtime.metadata import DIGEST_METADATA, DIGEST_PLACEHOLDER, OUTPUT_METADATA, seal_digest
from mnist_edge_runtime.quiet import native_stderr_silenced

from mnist_edge.data import Mnist
from mnist_edge.errors import GateFailedError
from mnist_edge.models import OUTPUT_ACTIVATION, model_input
from mnist_edge.tensorflow_quiet import keras, tf

ONNX_OPSET = 17  # within tf2onnx's tested range (13-18) and onnxruntime's full support


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
    training images, makes the int8 model instead (docs/export.md).

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
    """Write into the model file what its output is, and then its digest (see mnist_edge_runtime.metadata)."""
    value = json.dumps(
        {"outputs": "logits", "activation": OUTPUT_ACTIVATION[model]}
        if outputs_logits
        else {"outputs": "scores", "activation": None}
    )
    return seal_digest(
        with_metadata(fmt, content, {OUTPUT_METADATA: value, DIGEST_METADATA: DIGEST_PLACEHOLDER})
    )


def with_digest(fmt: str, content: bytes) -> bytes:
    """The model file with its digest written (or rewritten), everything else as it was.

    For a file exported before models carried a digest, this gives the bytes an export makes
    now: the digest entry is added last, as ``with_output_metadata`` adds it.
    """
    return seal_digest(with_metadata(fmt, content, {DIGEST_METADATA: DIGEST_PLACEHOLDER}))


def with_metadata(fmt: str, content: bytes, entries: dict[str, str]) -> bytes:
    """The model file with these metadata entries set: an existing one of the same name gets the
    new value, the others are added in order (a TFLite ``Metadata`` buffer, an ONNX ``metadata_props`` key)."""
    if fmt == "onnx":
        import onnx

        proto = onnx.load_from_string(content)
        existing = {entry.key: entry for entry in proto.metadata_props}
        for key, value in entries.items():
            entry = existing.get(key) or proto.metadata_props.add()
            entry.key, entry.value = key, value
        return proto.SerializeToString()
    if fmt != "tflite":
        raise ValueError(f"no metadata for format {fmt!r}")
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model_object = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    model_object.metadata = list(model_object.metadata or [])
    existing = {_text(entry.name): entry for entry in model_object.metadata}
    for name, value in entries.items():
        buffer = schema.BufferT()
        buffer.data = list(value.encode())
        if name in existing:
            model_object.buffers[existing[name].buffer] = buffer
            continue
        model_object.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = name, len(model_object.buffers) - 1
        model_object.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model_object))


def _text(name: str | bytes | None) -> str | None:
    return name.decode() if isinstance(name, bytes) else name


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


def tflm_header_name(model: str) -> str:
    return f"{model}.int8.tflm.h"


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
