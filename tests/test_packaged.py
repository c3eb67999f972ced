"""The runtime package's bundle is export/'s int8 models, their manifest entries and the MNIST
test set, byte for byte (``python -m mnist_edge.packaged --write`` refreshes it, and nothing else
does: ``--help``, typos and no option at all write nothing)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from mnist_edge import packaged


def test_the_runtime_carries_exactly_what_export_makes_of_it():
    assert packaged.differences() == []


def test_a_changed_byte_or_a_stray_file_is_found(tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(packaged.RUNTIME_BUNDLE, copy)
    model = copy / "flat.int8.tflite"
    content = bytearray(model.read_bytes())
    content[1000] ^= 1
    model.write_bytes(bytes(content))
    (copy / "notes.txt").write_text("x")
    (copy / "t10k-labels-idx1-ubyte.gz").unlink()
    assert packaged.differences(copy) == [
        "t10k-labels-idx1-ubyte.gz: missing",
        "notes.txt: not part of the bundle",
        "flat.int8.tflite: differs from export/",
    ]
    packaged.write(copy)
    (copy / "notes.txt").unlink()
    assert packaged.differences(copy) == []


def _bundle_state() -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(packaged.RUNTIME_BUNDLE.iterdir())}


@pytest.mark.parametrize(
    "arguments", [["--help"], [], ["--chek"], ["--w"], ["--check", "--write"], ["extra"]]
)
def test_only_write_writes(arguments):
    before = _bundle_state()
    done = subprocess.run(
        [sys.executable, "-m", "mnist_edge.packaged", *arguments], capture_output=True, text=True, timeout=120
    )
    assert _bundle_state() == before
    if arguments == ["--help"]:
        assert done.returncode == 0 and "--write" in done.stdout
    else:
        assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr


def test_the_runtime_runs_a_model_on_tensorflow_when_asked():
    # --backend tensorflow: TensorFlow's tf.lite, where the toolchain has it (its tensorflow.lite
    # package holds no Interpreter).
    import numpy as np
    from mnist_edge_runtime.backends import open_model
    from mnist_edge_runtime.idx import read_images_and_labels

    from mnist_edge.data import BUNDLED_DIR

    images, labels = read_images_and_labels(
        BUNDLED_DIR / "t10k-images-idx3-ubyte.gz", BUNDLED_DIR / "t10k-labels-idx1-ubyte.gz"
    )
    model = open_model(packaged.ROOT / "export" / "conv2d.int8.tflite", backend="tensorflow")
    assert model.backend == "tensorflow"
    predicted = model.scores(images[:200]).argmax(axis=1)
    assert np.mean(predicted == labels[:200]) >= 0.95
