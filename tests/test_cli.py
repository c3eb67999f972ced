"""The command line: help, a real (tiny) training run, and one-line errors with exit code 2."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest
from conftest import write_idx_dir
from typer.testing import CliRunner

from mnist_edge.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    assert "train" in result.output


def test_train_from_a_data_dir(tmp_path, mnist):
    data = write_idx_dir(
        tmp_path / "data",
        (mnist.train.images[:5200], mnist.train.labels[:5200]),
        (mnist.test.images[:100], mnist.test.labels[:100]),
    )
    result = run(
        "train", "--model", "flat", "--epochs", "1", "--data-dir", str(data), "--out", str(tmp_path / "r")
    )
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "r" / "flat" / "run.json").read_text())
    assert record["data"]["train"] == 200 and record["data"]["validation"] == 5000
    assert (tmp_path / "r" / "flat" / "model.keras").is_file()
    assert not (tmp_path / "r" / "conv2d").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--model", "resnet"], "'resnet' is not one of"),
        (["train", "--epochs", "0"], "0 is not in the range"),
        (["train", "--epochs", "-3"], "-3 is not in the range"),
        (["train", "--data-dir", "/nonexistent/mnist"], "no such file or directory"),
    ],
)
def test_bad_options_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_unwritable_out_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run("train", "--model", "flat", "--epochs", "1", "--out", str(blocker))
    assert result.exit_code == 2
    assert "output folder is not writable" in result.output


def test_corrupt_data_dir_exits_2(tmp_path, tiny_arrays):
    data = write_idx_dir(tmp_path, *tiny_arrays)
    path = data / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 6))
    result = run("train", "--data-dir", str(data))
    assert result.exit_code == 2
    assert "truncated IDX header" in result.output


def test_console_errors_are_one_line_without_traceback():
    """Through ``python -m mnist_edge``: the user sees one line on stderr and exit code 2."""
    for args in (["train", "--model", "resnet"], ["train", "--data-dir", "/nonexistent"], ["nosuchcommand"]):
        done = subprocess.run(
            [sys.executable, "-m", "mnist_edge", *args], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mnist-edge: error:"), done.stderr
        assert "Traceback" not in done.stderr
