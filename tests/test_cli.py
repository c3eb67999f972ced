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
        "train", "--model", "flat", "--epochs", "1", "--data-dir", str(data), "--runs", str(tmp_path / "r")
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


# --- conventions: versions, help for everything, one meaning per option name, 80 columns -----------


def toolchain_options() -> dict[str, dict[str, object]]:
    """{command: {option name: click parameter}} of `mnist-edge`, hidden aliases left out."""
    import typer.main

    group = typer.main.get_command(app)
    return {
        name: {opt: p for p in command.params if not getattr(p, "hidden", False) for opt in p.opts}
        for name, command in group.commands.items()
    }


def runtime_options() -> dict[str, dict[str, object]]:
    from mnist_edge_runtime.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))
    return {
        name: {opt: a for a in sub._actions if a.dest != "help" for opt in a.option_strings or [a.dest]}
        for name, sub in subparsers.choices.items()
    }


def test_both_clis_print_their_version():
    from mnist_edge import __version__

    assert run("--version").output.strip() == f"mnist-edge {__version__}"
    done = subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", "--version"], capture_output=True, text=True
    )
    # The runtime also names the bundle it carries (its manifest's hash, shortened).
    assert done.returncode == 0 and done.stdout.startswith(f"mnist-edge-runtime {__version__}, bundle ")


def test_every_option_and_argument_has_help():
    for cli in (toolchain_options(), runtime_options()):
        for command, options in cli.items():
            for name, param in options.items():
                assert getattr(param, "help", None), f"{command} {name} has no help text"


def test_one_meaning_per_option_name_across_both_clis():
    from mnist_edge_runtime.bundle import PACKAGED_BUNDLE

    folders = {"--runs": "runs", "--bundle": "export", "--reports": "reports"}
    seen: dict[str, set] = {}
    for cli in (toolchain_options(), runtime_options()):
        for options in cli.values():
            for name, param in options.items():
                if name in folders:
                    seen.setdefault(name, set()).add(str(param.default))
    # --bundle is a bundle folder in both; the toolchain writes ./export, the runtime reads the
    # bundle it carries unless told otherwise (never a ./export it was not asked for).
    expected = {n: {d} for n, d in folders.items()} | {"--bundle": {"export", str(PACKAGED_BUNDLE)}}
    assert {name: values for name, values in seen.items()} == expected
    for command, options in toolchain_options().items():
        # --out meant three different folders (hidden alias now); it names only package's new folder.
        assert "--out" not in options or (command == "package" and not options["--out"].hidden)
    for options in runtime_options().values():
        if "--model-file" in options:
            assert options["--model"] is options["--model-file"]  # the old spelling, same option


def test_the_old_out_spelling_still_works(tmp_path):
    result = run("report", "--bundle", str(tmp_path), "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "no manifest.json" in result.output  # parsed, then refused


def test_tables_keep_artifact_names_whole_at_80_columns():
    from rich.console import Console

    from mnist_edge.cli import report_table

    names = ["conv2d.float32.tflite", "conv2d.float32.onnx", "conv2d.int8.tflite", "conv2d.int8.onnx"]
    rows = [
        {"artifact": n, "bytes": 1540752, "accuracy": 0.9957, "delta_to_original_pp": 0.25,
         "delta_to_float_pp": -0.03, "latency_p50_ms_1_thread": 0.181, "status": "pass"}
        for n in names
    ]  # fmt: skip
    console = Console(width=80, record=True, force_terminal=False)
    console.print(report_table(rows))
    text = console.export_text()
    assert all(name in text for name in names), text
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text, text  # nothing cut
