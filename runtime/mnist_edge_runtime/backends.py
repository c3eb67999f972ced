"""Run a .tflite or .onnx model on batches of 28x28 uint8 images.

The interpreter is whichever is installed: ai-edge-litert (LiteRT), else
tflite-runtime, else TensorFlow's own ``tf.lite`` (imported lazily, and only
when nothing smaller is present); ``.onnx`` files run on onnxruntime.

A model's input may be float32 (pixels / 255) or quantized uint8/int8; the
quantization parameters stored in the model say how raw pixels map to it, so
callers always hand over plain uint8 images and get float scores back.

A model file that carries its own digest (every file mnist-edge exports) is checked against it
before any interpreter sees it (``read_model_file``); a mismatch is refused.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.metadata import (
    OUTPUT_METADATA,
    digest_problem,
    parse_output_metadata,
    tflite_metadata,
)
from mnist_edge_runtime.quiet import native_stderr_silenced

TFLITE_BACKENDS = ("litert", "tflite-runtime", "tensorflow")
ONNX_BACKENDS = ("onnxruntime",)
BACKENDS = TFLITE_BACKENDS + ONNX_BACKENDS

# Each backend's module and where its Interpreter class sits in it. TensorFlow's is its public
# ``tf.lite`` (the ``tensorflow.lite`` package itself has none).
_TFLITE_MODULES = {
    "litert": ("ai_edge_litert.interpreter", "Interpreter"),
    "tflite-runtime": ("tflite_runtime.interpreter", "Interpreter"),
    "tensorflow": ("tensorflow", "lite.Interpreter"),
}


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]  # per sample, without the batch axis
    dtype: np.dtype
    scale: float = 0.0  # 0 means not quantized
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0

    @property
    def takes_raw_pixels(self) -> bool:
        """uint8 with scale 1/255 and zero point 0: pixel values are the quantized input."""
        return self.dtype == np.uint8 and self.zero_point == 0 and abs(self.scale * 255 - 1) < 1e-6


def pixels_to_input(images: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """(N, 28, 28) uint8 pixels -> the model's input tensor (float [0, 1] or quantized)."""
    x = images.reshape((len(images), *spec.shape))
    if not spec.quantized:
        return (x.astype(np.float32) / np.float32(255.0)).astype(spec.dtype)
    if spec.takes_raw_pixels:
        return x if x.dtype == np.uint8 else x.astype(np.uint8)  # the usual case: no arithmetic at all
    info = np.iinfo(spec.dtype)
    q = np.round(x.astype(np.float32) / np.float32(255.0) / np.float32(spec.scale)) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def apply_activation(values: np.ndarray, activation: str | None) -> np.ndarray:
    """Turn logits into scores: the models that output logits say which activation in their manifest."""
    if activation is None:
        return values
    # In float64, then rounded to float32: numpy's float32 exp differs between instruction sets
    # in the last bits, and the scores should be the same on every CPU, as the logits are.
    values = np.asarray(values, np.float64)
    if activation == "sigmoid":
        return (1.0 / (1.0 + np.exp(-values))).astype(np.float32)
    if activation == "softmax":
        shifted = np.exp(values - values.max(axis=-1, keepdims=True))
        return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)
    raise RuntimeInputError(f"unknown output activation {activation!r} in the manifest")


def output_to_scores(raw: np.ndarray, spec: TensorSpec, activation: str | None = None) -> np.ndarray:
    """Dequantize the model's output and apply its activation, if the model leaves that to us."""
    values = raw.astype(np.float32)
    if spec.quantized:
        values = ((values - spec.zero_point) * np.float32(spec.scale)).astype(np.float32)
    return apply_activation(values, activation)


def score_converter(spec: TensorSpec, activation: str | None):
    """A fast ``raw output -> scores`` function for one model.

    A quantized output has only 256 possible values, so dequantization and an
    element-wise activation become one table look-up (this is the hot path of a
    one-image call, where numpy's per-operation cost dominates).
    """
    if not spec.quantized or activation not in (None, "sigmoid"):
        return lambda raw: output_to_scores(raw, spec, activation)
    info = np.iinfo(spec.dtype)
    levels = np.arange(info.min, info.max + 1)
    table = output_to_scores(levels, spec, activation)
    return lambda raw: table[raw.astype(np.int64) - info.min]


class TFLiteModel:
    """One ``.tflite`` model on one interpreter; the batch size follows the input."""

    def __init__(self, path: Path, backend: str | None = None, threads: int | None = None):
        content = read_model_file(path)  # damage is refused whatever the backend
        self.backend, interpreter_class = _tflite_interpreter(backend)
        try:
            with native_stderr_silenced():  # the XNNPACK delegate announces itself at the first allocation
                self.interpreter = interpreter_class(model_path=str(path), num_threads=threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise RuntimeInputError(f"{path}: not a loadable TFLite model ({exc})") from None
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self._input_index, self._output_index = inp["index"], out["index"]
        self.input = _tflite_spec(inp)
        self.output = _tflite_spec(out)
        self.activation = None  # set by the caller from output_metadata (or a manifest)
        self.output_metadata = parse_output_metadata(tflite_metadata(content).get(OUTPUT_METADATA))
        self._batch = int(inp["shape"][0])
        # One interpreter runs one call at a time: its tensors are shared state, so threads
        # sharing this model take turns (results are the same as single-threaded calls).
        self._lock = threading.Lock()

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run one batch already in the model's input form; returns (a copy of) the raw output."""
        with self._lock:
            return self._invoke(x).copy()

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        # The interpreter's own output buffer: valid until the next call, so callers hold the lock.
        if self._batch != len(x):
            self.interpreter.resize_tensor_input(self._input_index, list(x.shape))
            self.interpreter.allocate_tensors()
            self._batch = len(x)
        self.interpreter.set_tensor(self._input_index, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output_index)

    @property
    def activation(self) -> str | None:
        return self._activation

    @activation.setter
    def activation(self, name: str | None) -> None:
        self._activation = name
        self._to_scores = score_converter(self.output, name)

    def scores(self, images: np.ndarray) -> np.ndarray:
        # Both converters build a new array, so the interpreter's buffer is not handed out.
        x = pixels_to_input(images, self.input)
        with self._lock:
            return self._to_scores(self._invoke(x))


def _tflite_spec(detail: dict) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorSpec(
        tuple(int(d) for d in detail["shape"][1:]), np.dtype(detail["dtype"]), float(scale), int(zero_point)
    )


def _tflite_interpreter(backend: str | None) -> tuple[str, type]:
    candidates = [backend] if backend else list(TFLITE_BACKENDS)
    for name in candidates:
        if name not in _TFLITE_MODULES:
            raise RuntimeInputError(
                f"unknown TFLite backend {name!r} (choose from {', '.join(TFLITE_BACKENDS)})"
            )
        module_name, attribute = _TFLITE_MODULES[name]
        try:
            interpreter = importlib.import_module(module_name)
        except ImportError:
            continue
        for part in attribute.split("."):
            interpreter = getattr(interpreter, part, None)
        if interpreter is None:  # a TensorFlow without tf.lite.Interpreter (a future one)
            continue
        return name, interpreter
    if backend:
        raise RuntimeInputError(f"backend {backend!r} is not installed")
    raise RuntimeInputError(
        "no TFLite interpreter installed (this platform has no default one): "
        'pip install "./runtime[litert]" or "./runtime[tflite]" in a checkout of mnist-edge'
    )


class OnnxModel:
    """One ``.onnx`` model on onnxruntime's CPU provider."""

    backend = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None):
        read_model_file(path)  # damage is refused whatever the backend
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeInputError(
                'onnxruntime is not installed: pip install "./runtime[onnx]" in a checkout of mnist-edge'
            ) from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise RuntimeInputError(
                f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0]})"
            ) from None
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self._input_name, self._output_name = inp.name, out.name
        self.input = TensorSpec(tuple(int(d) for d in inp.shape[1:]), np.dtype(np.float32))
        self.output = TensorSpec(tuple(int(d) for d in out.shape[1:]), np.dtype(np.float32))
        self.activation: str | None = None
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.output_metadata = parse_output_metadata(metadata.get(OUTPUT_METADATA))

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self._output_name], {self._input_name: x})[0]

    def scores(self, images: np.ndarray) -> np.ndarray:
        return output_to_scores(self.run(pixels_to_input(images, self.input)), self.output, self.activation)


def read_model_file(path: Path) -> bytes:
    """The file's bytes, refused if it carries a digest (mnist-edge's exports do) that they do not match.

    Bit rot in a model copied without its manifest would otherwise still be answered, and
    tflite-runtime 2.14 can even crash on it: the check comes before any interpreter reads the file.
    """
    try:
        content = Path(path).read_bytes()
    except FileNotFoundError:
        raise RuntimeInputError(f"{path}: no such model file") from None
    except OSError as exc:
        raise RuntimeInputError(f"{path}: cannot read the model file ({exc.strerror})") from None
    problem = digest_problem(content)
    if problem:
        raise RuntimeInputError(f"{path}: damaged model file ({problem})")
    return content


def missing_backend(path: Path) -> str | None:
    """Why ``path`` cannot run here (no backend for its type installed), or None if it can."""
    if Path(path).name.endswith(".tflm.c"):
        return "C source for microcontrollers; `mnist-edge export` validated it with tflite-micro"
    if Path(path).suffix == ".onnx":
        return None if importlib.util.find_spec("onnxruntime") else "onnxruntime is not installed"
    modules = [m.split(".")[0] for m, _ in _TFLITE_MODULES.values()]
    return None if any(importlib.util.find_spec(m) for m in modules) else "no TFLite interpreter installed"


def open_model(
    path: Path, backend: str | None = None, threads: int | None = None, activation: str | None = None
) -> TFLiteModel | OnnxModel:
    """Open a model file by its extension on the chosen (or the best installed) backend.

    ``activation`` is applied to the outputs of a model that outputs logits (its manifest says so).
    """
    apply_activation(np.zeros((1, 2), np.float32), activation)  # an unknown name fails here, not later
    model = _open_model(Path(path), backend, threads)
    model.activation = activation
    return model


def _open_model(path: Path, backend: str | None, threads: int | None) -> TFLiteModel | OnnxModel:
    if path.suffix == ".onnx":
        if backend not in (None, "onnxruntime"):
            raise RuntimeInputError(f"{path}: .onnx models run on onnxruntime, not {backend}")
        return OnnxModel(path, threads)
    if path.suffix == ".tflite":
        if backend == "onnxruntime":
            raise RuntimeInputError(f"{path}: .tflite models need a TFLite backend, not onnxruntime")
        return TFLiteModel(path, backend, threads)
    raise RuntimeInputError(f"{path}: unknown model type (expected .tflite or .onnx)")


def predict_scores(model: TFLiteModel | OnnxModel, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Scores (N, 10) for uint8 images (N, 28, 28), in batches."""
    parts = [model.scores(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, 10), np.float32)
