"""The runtime package's bundle is export/'s int8 models, their manifest entries and the MNIST
test set, byte for byte (``python -m mnist_edge.packaged`` refreshes it)."""

from __future__ import annotations

import shutil

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
