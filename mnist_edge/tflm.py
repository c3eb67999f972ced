"""TensorFlow Lite for Microcontrollers: the int8 model as C source, sized and run with tflite-micro.

A microcontroller has no file system: the model is compiled into flash as a ``const`` byte array,
and TFLM works in one ``tensor arena`` the application allocates. For each model this writes

* ``<model>.int8.tflm.c``: the int8 TFLite flatbuffer (byte for byte the ``.int8.tflite`` file)
  as a 16-byte aligned ``const unsigned char`` array, and its length;
* ``<model>.int8.tflm.h``: the declarations, the arena size, the operators to register, the
  input and output quantization and the activation the caller applies to the output logits.

The arena size is measured, not guessed: the smallest that lets tflite-micro (TFLM's own
interpreter, the reference kernels) allocate and run the model, plus ``ARENA_MARGIN``. It is
measured on x86_64, whose 64-bit pointers make TFLM's bookkeeping larger than on a 32-bit
Cortex-M; optimized kernels (CMSIS-NN) may ask for scratch memory of their own, which the margin
is there for. tflite-micro has wheels for x86_64 Linux only, so the device runtime cannot run it:
the toolchain validates these artifacts when it writes them (``export``) and the tests re-run
them on all 10,000 test images.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mnist_edge_runtime.backends import apply_activation
from mnist_edge_runtime.quiet import native_stderr_silenced

from mnist_edge.errors import UserError

ARENA_MARGIN = 0.25  # added to the measured arena, then rounded up to whole KiB
# TFLite builtin operator -> the MicroMutableOpResolver method that registers it.
RESOLVER_METHODS = {
    "CONV_2D": "AddConv2D",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "FULLY_CONNECTED": "AddFullyConnected",
    "MAX_POOL_2D": "AddMaxPool2D",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "PAD": "AddPad",
    "RESHAPE": "AddReshape",
    "QUANTIZE": "AddQuantize",
    "DEQUANTIZE": "AddDequantize",
    "REDUCE_MAX": "AddReduceMax",
    "MAXIMUM": "AddMaximum",
    "RSQRT": "AddRsqrt",
    "MUL": "AddMul",
    "ADD": "AddAdd",
    "LOGISTIC": "AddLogistic",
    "SOFTMAX": "AddSoftmax",
    "RELU": "AddRelu",
}


def _micro():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise UserError(
            "--format tflm needs tflite-micro (x86_64 Linux only): pip install tflite-micro"
        ) from None
    return runtime


# --- what the model needs --------------------------------------------------------------------


def operators(model: bytes) -> list[str]:
    """The builtin operators the model uses, in the order they first appear."""
    from tensorflow.lite.python import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(model, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = []
    for i in range(root.OperatorCodesLength()):
        code = root.OperatorCodes(i)
        codes.append(names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])
    used = []
    graph = root.Subgraphs(0)
    for i in range(graph.OperatorsLength()):
        name = codes[graph.Operators(i).OpcodeIndex()]
        if name not in used:
            used.append(name)
    unknown = [name for name in used if name not in RESOLVER_METHODS]
    if unknown:
        raise UserError(f"no MicroMutableOpResolver method known for {', '.join(unknown)}")
    return used


def runs_in_arena(model: bytes, arena: int, image: np.ndarray) -> bool:
    """Whether tflite-micro can allocate and run ``model`` on ``image`` in ``arena`` bytes."""
    runtime = _micro()
    try:
        with native_stderr_silenced():  # TFLM prints what it is missing on each failed try
            interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena)
            interpreter.set_input(image, 0)
            interpreter.invoke()
        return True
    except RuntimeError:
        return False


def smallest_arena(model: bytes, image: np.ndarray) -> int:
    """The fewest arena bytes (to 16) with which tflite-micro allocates and runs the model."""
    low, high = 0, 1 << 16
    while not runs_in_arena(model, high, image):
        high *= 2
        if high > 1 << 24:
            raise UserError("the model does not run in tflite-micro even with a 16 MiB arena")
    while high - low > 16:
        middle = (low + high) // 2 // 16 * 16
        low, high = (low, middle) if runs_in_arena(model, middle, image) else (middle, high)
    return high


def arena_with_margin(measured: int) -> int:
    return int(np.ceil(measured * (1 + ARENA_MARGIN) / 1024)) * 1024


def micro_scores(model: bytes, images: np.ndarray, arena: int, activation: str | None) -> np.ndarray:
    """Scores of (N, 28, 28) uint8 images through tflite-micro, one image per invoke, as on a device."""
    runtime = _micro()
    with native_stderr_silenced():
        interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena)
    spec_in, spec_out = interpreter.get_input_details(0), interpreter.get_output_details(0)
    shape = tuple(int(d) for d in spec_in["shape"])
    scale = float(spec_out["quantization_parameters"]["scales"][0])
    zero = int(spec_out["quantization_parameters"]["zero_points"][0])
    logits = np.empty((len(images), 10), np.float32)
    for i, image in enumerate(images):
        interpreter.set_input(image.reshape(shape).astype(spec_in["dtype"]), 0)
        interpreter.invoke()
        logits[i] = (interpreter.get_output(0).reshape(-1).astype(np.float32) - zero) * scale
    return apply_activation(logits, activation)


# --- the C files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MicroModel:
    name: str  # conv2d | flat
    model: bytes  # the int8 TFLite flatbuffer
    arena_measured: int
    operators: list[str]
    input_quantization: tuple[float, int]
    output_quantization: tuple[float, int]
    activation: str

    @property
    def symbol(self) -> str:
        return f"mnist_edge_{self.name}_int8"

    @property
    def arena(self) -> int:
        return arena_with_margin(self.arena_measured)


def describe(name: str, model: bytes, activation: str, sample: np.ndarray) -> MicroModel:
    """Everything the C files say about ``model``, measured with tflite-micro."""
    runtime = _micro()
    arena = smallest_arena(model, sample)
    with native_stderr_silenced():
        interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena)
    q_in = interpreter.get_input_details(0)["quantization_parameters"]
    q_out = interpreter.get_output_details(0)["quantization_parameters"]
    return MicroModel(
        name,
        model,
        arena,
        operators(model),
        (float(q_in["scales"][0]), int(q_in["zero_points"][0])),
        (float(q_out["scales"][0]), int(q_out["zero_points"][0])),
        activation,
    )


def c_source(m: MicroModel) -> str:
    # Decimal, 40 bytes a line: a third smaller than 0x.. hex, and the bundle stays small.
    rows = [",".join(str(b) for b in m.model[i : i + 40]) for i in range(0, len(m.model), 40)]
    body = ",\n  ".join(rows)
    return (
        f"/* {m.name} int8 model for TensorFlow Lite for Microcontrollers, written by mnist-edge.\n"
        f"   Byte for byte the bundle's {m.name}.int8.tflite, in decimal. See {m.name}.int8.tflm.h. */\n"
        f'#include "{m.name}.int8.tflm.h"\n\n'
        f"/* TFLM reads the flatbuffer in place: it must be 16-byte aligned. */\n"
        f"const unsigned char {m.symbol}_model[] __attribute__((aligned(16))) = {{\n  {body}\n}};\n"
        f"const unsigned int {m.symbol}_model_len = {len(m.model)};\n"
    )


def c_header(m: MicroModel) -> str:
    guard = f"{m.symbol.upper()}_TFLM_H"
    in_scale, in_zero = m.input_quantization
    out_scale, out_zero = m.output_quantization
    registrations = "".join(f"  resolver.{RESOLVER_METHODS[op]}();\n" for op in m.operators)
    activation = {
        "sigmoid": "score[i] = 1 / (1 + exp(-logit[i])), each digit on its own",
        "softmax": "score = softmax(logit) over the ten digits",
    }[m.activation]
    return f"""/* {m.name} int8 MNIST classifier for TensorFlow Lite for Microcontrollers (written by mnist-edge).

   Input:  28x28x1 uint8 pixels, MNIST form (bright ink on black, 0..255), scale {in_scale:.9g}, zero point {in_zero}.
   Output: 10 int8 logits, scale {out_scale:.9g}, zero point {out_zero}:
           logit[i] = {out_scale:.9g} * (output[i] - ({out_zero})); then {activation}.
           The digit is the index of the largest output (no need to dequantize for that).
   Arena:  {m.arena_measured} bytes measured with tflite-micro (x86_64, reference kernels);
           {m.symbol.upper()}_ARENA_BYTES adds {ARENA_MARGIN:.0%} (rounded up to KiB) for 32-bit targets and
           optimized kernels' scratch buffers.
   Operators: {", ".join(m.operators)}. */
#ifndef {guard}
#define {guard}

#define {m.symbol.upper()}_ARENA_BYTES {m.arena}
#define {m.symbol.upper()}_OPERATOR_COUNT {len(m.operators)}
#define {m.symbol.upper()}_INPUT_SCALE {in_scale:.9g}f
#define {m.symbol.upper()}_INPUT_ZERO_POINT {in_zero}
#define {m.symbol.upper()}_OUTPUT_SCALE {out_scale:.9g}f
#define {m.symbol.upper()}_OUTPUT_ZERO_POINT {out_zero}

#ifdef __cplusplus
extern "C" {{
#endif
extern const unsigned char {m.symbol}_model[];
extern const unsigned int {m.symbol}_model_len;
#ifdef __cplusplus
}}

/* Register exactly the operators this model uses, e.g.
   tflite::MicroMutableOpResolver<{m.symbol.upper()}_OPERATOR_COUNT> resolver;
   {m.symbol}_register_ops(resolver); */
template <typename Resolver>
inline void {m.symbol}_register_ops(Resolver& resolver) {{
{registrations}}}
#endif

#endif /* {guard} */
"""


def bytes_of_c_source(text: str) -> bytes:
    """The bytes of the array in a C source written by ``c_source`` (validation runs these)."""
    match = re.search(r"_model\[\][^=]*=\s*\{(.*?)\};", text, re.S)
    if match is None:
        raise UserError("no model array in the C source")
    return bytes(int(number) for number in re.findall(r"\d+", match.group(1)))


# --- the compiler's word on flash ---------------------------------------------------------------


ARM_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size")  # Debian's gcc-arm-none-eabi


def missing_arm_tools() -> list[str]:
    """Which of ``ARM_TOOLS`` are not on PATH (``rodata_bytes`` needs both)."""
    return [tool for tool in ARM_TOOLS if shutil.which(tool) is None]


def rodata_bytes(source: Path, cpu: str = "cortex-m0plus") -> int | None:
    """``.rodata`` bytes of ``source`` compiled for ``cpu`` by arm-none-eabi-gcc; None without it."""
    if missing_arm_tools():
        return None
    gcc, size = (shutil.which(tool) for tool in ARM_TOOLS)
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / "model.o"
        subprocess.run(
            [
                gcc,
                f"-mcpu={cpu}",
                "-mthumb",
                "-Os",
                "-I",
                str(source.parent),
                "-c",
                str(source),
                "-o",
                str(obj),
            ],
            check=True,
            capture_output=True,
        )
        listing = subprocess.run([size, "-A", str(obj)], check=True, capture_output=True, text=True).stdout
    sections = dict(re.findall(r"^(\.\S+)\s+(\d+)", listing, re.M))
    return int(sections.get(".rodata", 0))
