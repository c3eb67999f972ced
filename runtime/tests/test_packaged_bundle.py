"""The bundle this package carries: a plain install answers in any folder, and ``eval`` with no
arguments is the parity check."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import MNIST

from mnist_edge_runtime.bundle import PACKAGED_BUNDLE, packaged_bundle_id


def run_in(folder, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "MNIST_EDGE_BUNDLE"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", *args],
        capture_output=True, text=True, timeout=300, cwd=folder, env=environment,
    )  # fmt: skip


def test_the_package_carries_its_models_their_manifest_and_the_test_set():
    manifest = json.loads((PACKAGED_BUNDLE / "manifest.json").read_text())
    assert sorted(manifest["artifacts"]) == ["conv2d.int8.tflite", "flat.int8.tflite"]
    for name, entry in manifest["artifacts"].items():
        assert (PACKAGED_BUNDLE / name).stat().st_size == entry["bytes"]
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert (PACKAGED_BUNDLE / name).read_bytes() == (MNIST / name).read_bytes()


def test_eval_with_no_arguments_is_the_parity_check_in_any_folder(tmp_path):
    done = run_in(tmp_path, "eval", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert sorted(r["artifact"] for r in rows) == ["conv2d.int8.tflite", "flat.int8.tflite"]
    assert all(r["images"] == 10_000 and r["parity"] == "pass" for r in rows)


def test_predict_in_an_empty_folder_uses_the_packaged_model_not_a_local_export(tmp_path):
    from PIL import Image

    from mnist_edge_runtime.idx import read_images_and_labels

    images, labels = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    Image.fromarray(images[-1]).save(tmp_path / "digit.png")
    (tmp_path / "export").mkdir()  # a stray ./export is not picked up unasked
    (tmp_path / "export" / "manifest.json").write_text("not a manifest")
    done = run_in(tmp_path, "predict", "digit.png", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["digit"] == int(labels[-1])
    asked = run_in(tmp_path, "predict", "digit.png", "--bundle", "export")
    assert asked.returncode == 2 and "export/conv2d.int8.tflite" in asked.stderr


def test_version_names_the_packaged_bundle():
    done = run_in(".", "--version")
    assert done.returncode == 0 and done.stdout.count("\n") == 1
    digest = packaged_bundle_id().split()[1]
    assert len(digest) == 12 and digest in done.stdout and "conv2d.int8.tflite" in done.stdout


@pytest.mark.parametrize("limit", [100])
def test_a_bundle_named_by_the_environment_comes_before_the_packaged_one(tmp_path, limit):
    from conftest import BUNDLE

    done = run_in(tmp_path, "eval", "--limit", str(limit), "--json", env={"MNIST_EDGE_BUNDLE": str(BUNDLE)})
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) > 2  # the whole export bundle, not the packaged two
    assert np.all([r["images"] == limit for r in json.loads(done.stdout)])
