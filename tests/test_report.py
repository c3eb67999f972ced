"""The parity report on the committed bundle: tables, figures, and the example-selection rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mnist_edge_runtime.bundle import parity_tolerance
from typer.testing import CliRunner

from mnist_edge.cli import app
from mnist_edge.report import ArtifactResult, example_indices

BUNDLE = Path(__file__).resolve().parents[1] / "export"


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    result = CliRunner().invoke(app, ["report", "--bundle", str(BUNDLE), "--reports", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_report_files_and_parity_table(report_dir):
    report = json.loads((report_dir / "report.json").read_text())
    manifest = json.loads((BUNDLE / "manifest.json").read_text())["artifacts"]
    # Everything a device can run; the microcontroller C sources are validated by export (test_tflm.py).
    assert {r["artifact"] for r in report["artifacts"]} == {
        n for n, e in manifest.items() if e["format"] != "tflm"
    }
    for row in report["artifacts"]:
        assert row["status"] == "pass"
        # The device's parity tolerance: exact for int8 on ai-edge-litert (tests/emulation/cpu_matrix.py).
        tolerance = parity_tolerance(row.get("backend"), row["precision"])
        expected = manifest[row["artifact"]]["validation"]["accuracy"]
        assert row["accuracy"] == pytest.approx(expected, abs=tolerance + 1e-9)
        assert row["latency_p50_ms_1_thread"] > 0
    for name in report["figures"]:
        assert (report_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (report_dir / "REPORT.md").read_text()
    assert markdown.count("| conv2d |") == 4 and "examples_flat.png" in markdown


def test_confusion_matrix_counts_every_test_image(report_dir):
    report = json.loads((report_dir / "report.json").read_text())
    for details in report["models"].values():
        matrix = np.array(details["confusion_int8_tflite"])
        assert matrix.sum() == 10000 and matrix.shape == (10, 10)


def test_examples_are_the_least_sure_right_and_most_sure_wrong():
    scores = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55], [0.99, 0.01]])
    labels = np.array([0, 0, 0, 0, 1])
    result = ArtifactResult("m", {"model": "flat"}, scores, 0.0, 0.0)
    right, wrong = example_indices(result, labels)
    assert right.tolist() == [1, 0]  # confidence 0.6, then 0.9
    assert wrong.tolist() == [4, 2, 3]  # confidence 0.99, 0.8, 0.55


def test_report_without_a_bundle_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["report", "--bundle", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no manifest.json" in result.output


def test_report_on_a_damaged_bundle_exits_2(tmp_path):
    import shutil

    bundle = tmp_path / "export"
    shutil.copytree(BUNDLE, bundle)
    (bundle / "flat.int8.tflite").write_bytes(b"TFL3 but damaged")
    result = CliRunner().invoke(app, ["report", "--bundle", str(bundle), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "the manifest says" in result.output and "Traceback" not in result.output
