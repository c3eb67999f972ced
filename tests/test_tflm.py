"""The committed microcontroller artifacts: parity through tflite-micro, and a Cortex-M0+ compile.

The parity test is CI's gate for these files (the device runtime cannot run tflite-micro: it has
x86_64 wheels only). The compile test needs Debian's gcc-arm-none-eabi; CI installs it and sets
MNIST_EDGE_REQUIRE_ARM_GCC=1 so that it cannot quietly skip there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mnist_edge_runtime.bundle import parity_tolerance
from mnist_edge_runtime.idx import read_images_and_labels

from mnist_edge import tflm
from mnist_edge.data import BUNDLED_DIR

BUNDLE = Path(__file__).resolve().parents[1] / "export"
MANIFEST = json.loads((BUNDLE / "manifest.json").read_text())["artifacts"]
MICRO = sorted(name for name, entry in MANIFEST.items() if entry["format"] == "tflm")


def test_the_bundle_has_a_microcontroller_artifact_per_model():
    assert MICRO == ["conv2d.int8.tflm.c", "flat.int8.tflm.c"]


@pytest.mark.parametrize("name", MICRO)
def test_tflm_artifact_reproduces_its_manifest_figures_on_all_test_images(name):
    entry = MANIFEST[name]
    model = tflm.bytes_of_c_source((BUNDLE / name).read_text())
    # The array is the int8 model the other interpreters run, byte for byte.
    assert model == (BUNDLE / name.replace(".tflm.c", ".tflite")).read_bytes()
    images, labels = read_images_and_labels(
        BUNDLED_DIR / "t10k-images-idx3-ubyte.gz", BUNDLED_DIR / "t10k-labels-idx1-ubyte.gz"
    )
    activation = entry["output"]["activation"]
    scores = tflm.micro_scores(model, images, entry["tflm"]["arena_bytes"], activation)
    accuracy = float(np.mean(scores.argmax(axis=1) == labels))
    # Exact: tflite-micro's int8 outputs are bit-identical on SSE4.2, AVX2 and AVX-512 VNNI x86
    # (tests/emulation/cpu_matrix.py --tflm-python, in CI), so its parity tolerance is 0.
    assert abs(accuracy - entry["validation"]["accuracy"]) <= parity_tolerance("tflite-micro", "int8") + 1e-12
    assert accuracy >= entry["validation"]["original_accuracy"]
    # The measured arena is enough, and a bit less is not: the figure is the smallest that runs.
    sample = images[:1].reshape((1, 784) if entry["model"] == "flat" else (1, 28, 28, 1))
    measured = entry["tflm"]["arena_bytes_measured"]
    assert tflm.runs_in_arena(model, measured, sample) and not tflm.runs_in_arena(
        model, measured - 64, sample
    )


@pytest.mark.parametrize("name", MICRO)
def test_tflm_source_compiles_for_cortex_m0plus(name, tmp_path):
    gcc, gxx = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-g++")
    if not (gcc and gxx):
        if os.environ.get("MNIST_EDGE_REQUIRE_ARM_GCC") == "1":
            pytest.fail("arm-none-eabi-gcc is required here (apt-get install gcc-arm-none-eabi)")
        pytest.skip("no arm-none-eabi-gcc (apt-get install gcc-arm-none-eabi)")
    entry = MANIFEST[name]
    rodata = tflm.rodata_bytes(BUNDLE / name)
    assert rodata >= entry["tflm"]["model_bytes"]  # the whole model lands in flash, read-only
    if entry["tflm"]["rodata_bytes_cortex_m0plus"] is not None:
        assert rodata == entry["tflm"]["rodata_bytes_cortex_m0plus"]
    # The header's C++ part (the op registration) compiles against a resolver with TFLM's method names.
    symbol = f"mnist_edge_{entry['model']}_int8"
    methods = "".join(f"  void {m}() {{}}\n" for m in tflm.RESOLVER_METHODS.values())
    unit = tmp_path / "use.cc"
    unit.write_text(
        f'#include "{entry["tflm"]["header"]["file"]}"\n'
        f"struct Resolver {{\n{methods}}};\n"
        f"int main() {{ Resolver r; {symbol}_register_ops(r); return {symbol}_model[0] + {symbol}_model_len; }}\n"
    )
    done = subprocess.run(
        [gxx, "-mcpu=cortex-m0plus", "-mthumb", "-fsyntax-only", "-I", str(BUNDLE), str(unit)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
