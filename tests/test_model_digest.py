"""The digest every exported model carries: written by export, stamped into older files by
``python -m mnist_edge.digest``, and checked by the runtime (runtime/tests/test_model_digest.py)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mnist_edge_runtime.backends import open_model, predict_scores
from mnist_edge_runtime.bundle import sha256_file
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.metadata import DIGEST_METADATA, OUTPUT_METADATA, digest_problem

from mnist_edge import tflm
from mnist_edge.converters import select_formats, with_digest, with_metadata, with_output_metadata
from mnist_edge.data import Mnist
from mnist_edge.digest import stamp_bundle, stamp_model
from mnist_edge.errors import UserError
from mnist_edge.export import export_models
from mnist_edge.quantize import QatConfig, load_or_train_qat
from mnist_edge.train import default_config, train
from mnist_edge.validate import Gates

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "export"
MANIFEST = json.loads((BUNDLE / "manifest.json").read_text())["artifacts"]
MODELS = sorted(name for name, entry in MANIFEST.items() if entry["format"] in ("tflite", "onnx"))


def format_of(name: str) -> str:
    return name.rsplit(".", 1)[1]


def metadata_of(fmt: str, content: bytes) -> dict[str, str]:
    """The file's metadata entries as the format's own library reads them (not the runtime's reader)."""
    if fmt == "onnx":
        import onnx

        return {entry.key: entry.value for entry in onnx.load_from_string(content).metadata_props}
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    return {
        (m.name.decode() if isinstance(m.name, bytes) else m.name): bytes(
            model.buffers[m.buffer].data
        ).decode(errors="replace")
        for m in model.metadata or []
    }


def without_digest(fmt: str, content: bytes) -> bytes:
    """The file as exports wrote it before models carried a digest: the digest entry removed."""
    if fmt == "onnx":
        import onnx

        proto = onnx.load_from_string(content)
        kept = [entry for entry in proto.metadata_props if entry.key != DIGEST_METADATA]
        del proto.metadata_props[:]
        proto.metadata_props.extend(kept)
        return proto.SerializeToString()
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    (entry,) = [m for m in model.metadata if m.name in (DIGEST_METADATA, DIGEST_METADATA.encode())]
    assert entry.buffer == len(model.buffers) - 1  # added last, so removing it restores the old layout
    model.metadata.remove(entry)
    model.buffers.pop()
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def assert_sealed(fmt: str, content: bytes) -> None:
    """The digest entry, read by the format's own library, is the SHA-256 of the file with its 64
    digits read as zeros: recomputed here without the runtime's code."""
    value = metadata_of(fmt, content)[DIGEST_METADATA]
    prefix, digits = value.split(":")
    assert prefix == DIGEST_METADATA and len(digits) == 64
    start = content.index(value.encode()) + len(prefix) + 1
    assert hashlib.sha256(content[:start] + b"0" * 64 + content[start + 64 :]).hexdigest() == digits
    assert digest_problem(content) is None


# --- the committed files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_committed_models_carry_their_digest_beside_the_output_entry(name):
    content = (BUNDLE / name).read_bytes()
    assert_sealed(format_of(name), content)
    assert OUTPUT_METADATA in metadata_of(format_of(name), content)


@pytest.mark.parametrize("name", sorted(n for n, e in MANIFEST.items() if e["format"] == "tflm"))
def test_the_microcontroller_sources_embed_the_sealed_int8_model(name):
    embedded = tflm.bytes_of_c_source((BUNDLE / name).read_text())
    assert embedded == (BUNDLE / name.replace(".tflm.c", ".tflite")).read_bytes()
    assert_sealed("tflite", embedded)
    assert MANIFEST[name]["tflm"]["model_bytes"] == len(embedded)


@pytest.mark.parametrize("name", ["conv2d.int8.tflite", "flat.float32.tflite", "conv2d.int8.onnx"])
def test_stamping_an_older_export_gives_the_bytes_an_export_writes_now(name):
    """An older file (no digest) stamped in place equals the committed one, and the committed one
    is what with_output_metadata (export's step) makes of the converter's model."""
    fmt, committed = format_of(name), (BUNDLE / name).read_bytes()
    older = without_digest(fmt, committed)
    assert DIGEST_METADATA.encode() not in older
    assert with_digest(fmt, older) == committed
    assert with_digest(fmt, committed) == committed  # stamping again changes nothing
    value = metadata_of(fmt, committed)[OUTPUT_METADATA]
    entry = MANIFEST[name]
    outputs_logits = entry["output"]["activation"] is not None
    assert json.loads(value)["outputs"] == ("logits" if outputs_logits else "scores")


def test_stamping_changes_no_prediction(tmp_path, mnist):
    """The digest is metadata only: the stamped file computes exactly what the older one did."""
    images = mnist.test.images[:500]
    for name in ("conv2d.int8.tflite", "flat.int8.onnx"):
        fmt, committed = format_of(name), (BUNDLE / name).read_bytes()
        activation = MANIFEST[name]["output"]["activation"]
        scores = {}
        for kind, content in (("older", without_digest(fmt, committed)), ("stamped", committed)):
            path = tmp_path / kind / name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(content)
            scores[kind] = predict_scores(open_model(path, activation=activation), images)
        np.testing.assert_array_equal(scores["older"], scores["stamped"])


# --- stamping a file or a bundle in place ----------------------------------------------------------


def test_stamp_model_writes_the_digest_in_place_once(tmp_path):
    committed = (BUNDLE / "flat.int8.tflite").read_bytes()
    lone = tmp_path / "flat.int8.tflite"
    lone.write_bytes(without_digest("tflite", committed))
    assert stamp_model(lone) is True
    assert lone.read_bytes() == committed
    assert stamp_model(lone) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.int8.tflite"]  # no temporary left


def test_stamp_model_refuses_damage_a_bundle_member_and_other_files(tmp_path):
    damaged = bytearray((BUNDLE / "conv2d.int8.onnx").read_bytes())
    damaged[1000] ^= 0x01
    lone = tmp_path / "conv2d.int8.onnx"
    lone.write_bytes(bytes(damaged))
    with pytest.raises(UserError, match="damaged model file"):
        stamp_model(lone)
    assert lone.read_bytes() == bytes(damaged)  # damage is not blessed with a new digest
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle, ignore=shutil.ignore_patterns("*.onnx", "*.tflm.*"))
    with pytest.raises(UserError, match="stamp the bundle folder instead"):
        stamp_model(bundle / "conv2d.int8.tflite")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match="not a model file"):
        stamp_model(tmp_path / "notes.txt")


def older_bundle(target: Path) -> Path:
    """conv2d's int8 .tflite, its TFLM C source and header, and flat's int8 .onnx, as a bundle
    exported before models carried a digest (the same models, the entry removed)."""
    names = ["conv2d.int8.tflite", "conv2d.int8.tflm.c", "flat.int8.onnx"]
    target.mkdir()
    int8 = without_digest("tflite", (BUNDLE / "conv2d.int8.tflite").read_bytes())
    micro_entry = MANIFEST["conv2d.int8.tflm.c"]
    micro = tflm.MicroModel(
        "conv2d",
        int8,
        micro_entry["tflm"]["arena_bytes_measured"],
        micro_entry["tflm"]["operators"],
        tuple(micro_entry["input"]["quantization"].values()),
        tuple(micro_entry["output"]["quantization"].values()),
        micro_entry["output"]["activation"],
    )
    header = tflm.c_header(micro)
    assert header == (BUNDLE / "conv2d.int8.tflm.h").read_text()  # the figures were read back right
    files = {
        "conv2d.int8.tflite": int8,
        "conv2d.int8.tflm.c": tflm.c_source(micro).encode(),
        "conv2d.int8.tflm.h": header.encode(),
        "flat.int8.onnx": without_digest("onnx", (BUNDLE / "flat.int8.onnx").read_bytes()),
    }
    for name, content in files.items():
        (target / name).write_bytes(content)
    artifacts = {name: json.loads(json.dumps(MANIFEST[name])) for name in names}
    for name in names:
        artifacts[name].update(sha256=sha256_file(target / name), bytes=len(files[name]))
    artifacts["conv2d.int8.tflm.c"]["tflm"]["model_bytes"] = len(int8)
    (target / "manifest.json").write_text(json.dumps({"format_version": 1, "artifacts": artifacts}, indent=2))
    return target


def test_stamp_bundle_reproduces_the_committed_files_and_manifest_entries(tmp_path):
    bundle = older_bundle(tmp_path / "older")
    (bundle / "notes.txt").write_text("kept")
    changed = stamp_bundle(bundle)
    assert changed == ["conv2d.int8.tflite", "conv2d.int8.tflm.c", "flat.int8.onnx", "manifest.json"]
    for name in ("conv2d.int8.tflite", "conv2d.int8.tflm.c", "conv2d.int8.tflm.h", "flat.int8.onnx"):
        assert (bundle / name).read_bytes() == (BUNDLE / name).read_bytes(), name
    assert (bundle / "notes.txt").read_text() == "kept"
    stamped = json.loads((bundle / "manifest.json").read_text())["artifacts"]
    for name, entry in stamped.items():
        expected = json.loads(json.dumps(MANIFEST[name]))
        if entry.get("tflm", {}).get("rodata_bytes_cortex_m0plus", 0) is None:  # no arm-none-eabi-gcc here
            expected["tflm"]["rodata_bytes_cortex_m0plus"] = None
        assert entry == expected, name
    assert stamp_bundle(bundle) == []  # every model carries its digest already


def test_stamp_bundle_refuses_a_file_its_manifest_does_not_vouch_for_and_changes_nothing(tmp_path):
    bundle = older_bundle(tmp_path / "older")
    content = bytearray((bundle / "flat.int8.onnx").read_bytes())
    content[5000] ^= 0x20
    (bundle / "flat.int8.onnx").write_bytes(bytes(content))
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    with pytest.raises(UserError, match="does not match its manifest entry"):
        stamp_bundle(bundle)
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["older"]  # no staging folder left


def test_the_digest_command_errors_are_one_line_exit_2(tmp_path):
    for args in (["--bogus"], [str(tmp_path / "missing")]):
        done = subprocess.run(
            [sys.executable, "-m", "mnist_edge.digest", *args], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr


# --- the export writes it --------------------------------------------------------------------------


def test_every_file_an_export_writes_carries_its_digest(tmp_path, mnist):
    """flat, smoke-trained, exported in every format (TFLite, ONNX, TFLM; float32 and int8)."""
    small = Mnist(mnist.train.take(2048), mnist.validation.take(256), mnist.test.take(500), "subset")
    runs = tmp_path / "runs"
    train(default_config("flat", epochs=1, batch_size=64), small, runs)

    def provide(name, float_model, record):
        return load_or_train_qat(
            name, float_model, record, small, runs, QatConfig(epochs=1, calibration_size=256)
        )

    gates = Gates(original_accuracy={"conv2d": 0.0, "flat": 0.0}, max_quantization_loss=1.0)
    bundle = tmp_path / "bundle"
    formats = select_formats("all", int8=True)
    export_models(["flat"], formats, small, runs, bundle, 200, provide, None, gates)
    manifest = json.loads((bundle / "manifest.json").read_text())["artifacts"]
    assert sorted(manifest) == sorted(f.filename("flat") for f in formats)
    for name, entry in manifest.items():
        if entry["format"] == "tflm":
            assert_sealed("tflite", tflm.bytes_of_c_source((bundle / name).read_text()))
            continue
        content = (bundle / name).read_bytes()
        assert_sealed(entry["format"], content)
        assert entry["sha256"] == sha256_file(bundle / name) and entry["bytes"] == len(content)
        damaged = bytearray(content)
        damaged[len(content) // 2] ^= 0x08
        lone = tmp_path / "lone" / name
        lone.parent.mkdir(exist_ok=True)
        lone.write_bytes(bytes(damaged))
        with pytest.raises(RuntimeInputError, match="damaged model file"):
            open_model(lone)


def test_with_output_metadata_seals_what_it_writes():
    """The export's metadata step on a converter's output (an untrained model: the bytes are what matter)."""
    from mnist_edge.models import build_model
    from mnist_edge.tensorflow_quiet import tf

    converted = tf.lite.TFLiteConverter.from_keras_model(build_model("flat")).convert()
    content = with_output_metadata("tflite", converted, "flat", outputs_logits=False)
    assert_sealed("tflite", content)
    assert json.loads(metadata_of("tflite", content)[OUTPUT_METADATA]) == {
        "outputs": "scores",
        "activation": None,
    }
    # The same entries written in two steps (an older export, then the stamp) give the same bytes.
    older = with_metadata(
        "tflite", converted, {OUTPUT_METADATA: metadata_of("tflite", content)[OUTPUT_METADATA]}
    )
    assert with_digest("tflite", older) == content
