"""The committed bundle and the CI parity gate: a worse model cannot slip in."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mnist_edge_runtime.bundle import sha256_file

from mnist_edge.data import BUNDLED_DIR

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "export"
EVAL = [
    sys.executable, "-m", "mnist_edge_runtime", "eval",
    "--images", str(BUNDLED_DIR / "t10k-images-idx3-ubyte.gz"),
    "--labels", str(BUNDLED_DIR / "t10k-labels-idx1-ubyte.gz"),
]  # fmt: skip


def test_committed_manifest_matches_its_files():
    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    names = set(manifest["artifacts"])
    assert {"conv2d.int8.tflite", "flat.int8.tflite", "conv2d.float32.onnx", "flat.float32.tflite"} <= names
    for name, entry in manifest["artifacts"].items():
        path = BUNDLE / name
        assert entry["sha256"] == sha256_file(path) and entry["bytes"] == path.stat().st_size
        assert entry["validation"]["passed"] and entry["validation"]["test_images"] == 10000
        # Where the figure was measured: int8 results and speed depend on the CPU's instruction set.
        measured_on = entry["validation"]["measured_on"]
        assert measured_on["cpu"]["model"] and measured_on["cpu"]["machine"]
        assert isinstance(measured_on["cpu"]["features"], list)
        backend = "onnxruntime" if name.endswith(".onnx") else "ai-edge-litert"
        assert measured_on["interpreters"][backend]
    headers = {e["tflm"]["header"]["file"] for e in manifest["artifacts"].values() if e["format"] == "tflm"}
    files = {p.name for p in BUNDLE.iterdir()} - {"manifest.json"}
    assert files == names | headers  # nothing unlisted
    # The microcontroller C sources (about 3.3 MB of decimal arrays) took the bundle past 10 MB.
    assert sum(p.stat().st_size for p in BUNDLE.iterdir()) <= 14 * 1000 * 1000


def test_committed_int8_models_beat_the_original():
    manifest = json.loads((BUNDLE / "manifest.json").read_text())["artifacts"]
    assert manifest["conv2d.int8.tflite"]["validation"]["accuracy"] >= 0.9932
    assert manifest["flat.int8.tflite"]["validation"]["accuracy"] >= 0.9746


@pytest.fixture()
def worse_bundle(tmp_path, mnist):
    """The bundle with conv2d.int8.tflite swapped for a barely trained model, manifest hashes updated."""
    from mnist_edge.converters import ExportJob, export_tflite_int8
    from mnist_edge.data import Mnist
    from mnist_edge.models import model_input
    from mnist_edge.quantize import build_qat_model, calibrate_activation_ranges
    from mnist_edge.train import default_config, train

    small = Mnist(mnist.train.take(1024), mnist.validation.take(128), mnist.test.take(128), "subset")
    weak = train(default_config("conv2d", epochs=1, batch_size=64), small, tmp_path / "runs").model
    qat = build_qat_model(weak)
    calibrate_activation_ranges(qat, model_input("conv2d", small.train.images[:256]), rounds=1)
    job = ExportJob("conv2d", weak, {}, small, 64, lambda: qat)
    bundle = tmp_path / "export"
    shutil.copytree(BUNDLE, bundle)
    target = bundle / "conv2d.int8.tflite"
    target.write_bytes(export_tflite_int8(job))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["artifacts"][target.name].update(sha256=sha256_file(target), bytes=target.stat().st_size)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return bundle


def test_ci_gate_fails_when_an_artifact_is_swapped_for_a_worse_one(worse_bundle):
    done = subprocess.run(
        [*EVAL, "--model", str(worse_bundle / "conv2d.int8.tflite")], capture_output=True, text=True
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL" in done.stdout and "below the original 99.32%" in done.stdout


def test_ci_gate_refuses_a_swapped_artifact_with_a_stale_manifest(worse_bundle):
    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    (worse_bundle / "manifest.json").write_text(json.dumps(manifest))  # the original hashes again
    done = subprocess.run([*EVAL, "--bundle", str(worse_bundle)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "does not match the manifest" in done.stderr or "the manifest says" in done.stderr
