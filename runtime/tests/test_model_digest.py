"""Model files that check themselves: every exported model carries its own SHA-256 (the
``mnist_edge.sha256`` metadata entry), and damage anywhere in a copy, with or without its
manifest, is refused with one line, never answered."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BUNDLE, TEST_IMAGES, TEST_LABELS

from mnist_edge_runtime.backends import open_model
from mnist_edge_runtime.bundle import PACKAGED_BUNDLE, read_manifest
from mnist_edge_runtime.classifier import Classifier
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.metadata import (
    DIGEST_METADATA,
    OUTPUT_METADATA,
    digest_problem,
    seal_digest,
    tflite_metadata,
)

HAVE_ONNXRUNTIME = importlib.util.find_spec("onnxruntime") is not None
MODELS = sorted(name for name in read_manifest(BUNDLE)["artifacts"] if name.endswith((".tflite", ".onnx")))
INT8 = BUNDLE / "conv2d.int8.tflite"
NAME = DIGEST_METADATA.encode()


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", *args], capture_output=True, text=True, timeout=timeout
    )


def flipped(content: bytes, position: int, rng: np.random.Generator) -> bytes:
    """``content`` with one bit of one byte flipped: bit rot."""
    damaged = bytearray(content)
    damaged[position] ^= 1 << int(rng.integers(0, 8))
    return bytes(damaged)


def around(content: bytes, marker: bytes, after: int = 0) -> list[int]:
    """Every position of each occurrence of ``marker`` and the ``after`` bytes that follow it."""
    positions, at = [], content.find(marker)
    while at >= 0:
        positions += range(at, min(at + len(marker) + after, len(content)))
        at = content.find(marker, at + 1)
    return positions


def positions_to_damage(content: bytes, rng: np.random.Generator) -> list[int]:
    """Every byte of the metadata that matters (the digest entry's name and value, the output
    entry's name and JSON), of the file's first and last 64 bytes (flatbuffer root and vtables,
    ONNX header fields, the last buffers), and 600 more spread over the file: graph and weights."""
    json_start = content.find(b'{"outputs"')
    json_end = content.find(b"}", json_start) + 1
    positions = {
        *around(content, NAME, after=65),  # the name, and in the value ":" and the 64 hex digits
        *around(content, OUTPUT_METADATA.encode()),
        *range(json_start, json_end),
        *range(64),
        *range(len(content) - 64, len(content)),
        *np.linspace(0, len(content) - 1, 400).astype(int).tolist(),
        *rng.integers(0, len(content), 200).tolist(),
    }
    return sorted(positions)


# --- the committed files carry a digest that matches ---------------------------------------------


@pytest.mark.parametrize("folder", [BUNDLE, PACKAGED_BUNDLE], ids=["export", "packaged"])
def test_every_committed_model_carries_a_matching_digest(folder):
    names = [n for n in read_manifest(folder)["artifacts"] if n.endswith((".tflite", ".onnx"))]
    assert names
    for name in names:
        content = (folder / name).read_bytes()
        assert content.count(NAME) == 2, name  # the entry's name, and its value's prefix
        assert digest_problem(content) is None, name


@pytest.mark.parametrize("name", [n for n in MODELS if n.endswith(".tflite")])
def test_the_tflite_digest_is_the_sha256_of_the_file_with_its_own_digits_zeroed(name):
    """Recomputed from the Metadata table the flatbuffer reader finds, not from a text search."""
    content = (BUNDLE / name).read_bytes()
    value = tflite_metadata(content)[DIGEST_METADATA]
    prefix, digits = value.split(b":")
    assert prefix == NAME and len(digits) == 64
    start = content.index(value) + len(prefix) + 1
    zeroed = content[:start] + b"0" * 64 + content[start + 64 :]
    assert digits.decode() == hashlib.sha256(zeroed).hexdigest()
    assert seal_digest(zeroed) == content


# --- bit rot: every damaged copy is refused -------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_a_flipped_bit_anywhere_is_refused(name):
    content = (BUNDLE / name).read_bytes()
    rng = np.random.default_rng(sum(name.encode()))
    positions = positions_to_damage(content, rng)
    assert len(positions) > 600
    answered = [i for i in positions if digest_problem(flipped(content, i, rng)) is None]
    assert answered == []


@pytest.mark.parametrize("name", ["conv2d.int8.tflite", "flat.float32.tflite", "conv2d.int8.onnx"])
def test_damaged_lone_copies_are_refused_by_classifier_open_and_open_model(tmp_path, name):
    """Copied alone (no manifest beside it): refused before any interpreter reads the file."""
    content = (BUNDLE / name).read_bytes()
    rng = np.random.default_rng(7)
    picks = [*around(content, NAME, after=65)[::9], *np.linspace(0, len(content) - 1, 12).astype(int)]
    for position in sorted(set(picks)):
        lone = tmp_path / f"{position}" / name
        lone.parent.mkdir()
        lone.write_bytes(flipped(content, position, rng))
        with pytest.raises(RuntimeInputError, match="damaged model file"):
            Classifier.open(lone)
        with pytest.raises(RuntimeInputError, match="damaged model file"):
            open_model(lone)


def test_a_damaged_model_is_refused_even_beside_a_manifest_that_matches_it(bundle_copy):
    """A manifest rewritten to the damaged file's hash (or copied along from a damaged source) does
    not vouch for it: the file's own digest still refuses it."""
    model = bundle_copy / "conv2d.int8.tflite"
    content = bytearray(model.read_bytes())
    content[len(content) // 2] ^= 0x10
    model.write_bytes(bytes(content))
    manifest_path = bundle_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["artifacts"][model.name]["sha256"] = hashlib.sha256(bytes(content)).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(RuntimeInputError, match="does not match the digest it carries"):
        Classifier.open(model)


def test_a_model_without_a_digest_still_loads(tmp_path, test_set):
    """Files exported before models carried a digest, and foreign models, load unchecked as before
    (here the entry is renamed, as another tool's own metadata would be)."""
    content = INT8.read_bytes().replace(NAME, b"mnist_edge.other1")
    assert digest_problem(content) is None
    lone = tmp_path / "conv2d.int8.tflite"
    lone.write_bytes(content)
    images, labels = test_set
    expected = Classifier.open(INT8).scores(images[:100])
    np.testing.assert_array_equal(Classifier.open(lone).scores(images[:100]), expected)


def test_a_damaged_digest_value_is_refused_as_damage_not_ignored():
    content = INT8.read_bytes()
    start = content.rfind(NAME + b":") + len(NAME) + 1
    for replacement in (b"g", b"A", b"\0"):  # not a lowercase hex digit
        damaged = content[:start] + replacement + content[start + 1 :]
        assert digest_problem(damaged) == "its digest entry is damaged"
    truncated = content[: start + 10]
    assert digest_problem(truncated) == "its digest entry is damaged"


# --- every command refuses with one line and exit 2 ------------------------------------------------


def _one_line_refusal(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "damaged model file" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture()
def rotten(tmp_path) -> Path:
    """The issue's case: conv2d.int8.tflite copied alone, 200 bytes changed at random."""
    content = bytearray(INT8.read_bytes())
    rng = np.random.default_rng(200)
    for position in rng.choice(len(content), 200, replace=False):
        content[position] = (content[position] + int(rng.integers(1, 256))) % 256
    path = tmp_path / "lone" / "conv2d.int8.tflite"
    path.parent.mkdir()
    path.write_bytes(bytes(content))
    return path


def test_predict_refuses_a_rotten_model_instead_of_answering(rotten, test_set, tmp_path):
    from PIL import Image

    image = tmp_path / "seven.png"
    Image.fromarray(test_set[0][0]).save(image)
    done = run_cli("predict", str(image), "--model-file", str(rotten))
    _one_line_refusal(done)
    assert done.stdout == ""


def test_eval_and_bench_refuse_a_rotten_model(rotten):
    _one_line_refusal(
        run_cli(
            "eval", "--model-file", str(rotten), "--images", str(TEST_IMAGES), "--labels", str(TEST_LABELS)
        )
    )
    _one_line_refusal(run_cli("bench", "--model-file", str(rotten), "--repeat", "1"))


def test_serve_refuses_a_rotten_model_at_start_up(rotten):
    _one_line_refusal(run_cli("serve", "--model-file", str(rotten), "--port", "8765", timeout=60))


def test_a_damaged_onnx_model_is_refused_by_the_cli(tmp_path, test_set):
    from PIL import Image

    content = bytearray((BUNDLE / "flat.int8.onnx").read_bytes())
    content[len(content) // 3] ^= 0x04
    lone = tmp_path / "flat.int8.onnx"
    lone.write_bytes(bytes(content))
    image = tmp_path / "digit.png"
    Image.fromarray(test_set[0][0]).save(image)
    _one_line_refusal(run_cli("predict", str(image), "--model-file", str(lone)))
