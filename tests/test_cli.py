"""The command line: help, a real (tiny) training run, and one-line errors with exit code 2."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_idx_dir
from typer.testing import CliRunner

from mnist_edge.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def run(*args: str):
    return runner.invoke(app, list(args))


def test_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    assert "train" in result.output


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist):
    """`mnist-edge train --model flat --epochs 1` on 200 training images (and the 5,000 of validation):
    the data folder and the runs folder."""
    tmp_path = tmp_path_factory.mktemp("trained")
    data = write_idx_dir(
        tmp_path / "data",
        (mnist.train.images[:5200], mnist.train.labels[:5200]),
        (mnist.test.images[:100], mnist.test.labels[:100]),
    )
    result = run(
        "train", "--model", "flat", "--epochs", "1", "--data-dir", str(data), "--runs", str(tmp_path / "r")
    )
    assert result.exit_code == 0, result.output
    return data, tmp_path / "r"


def test_train_from_a_data_dir(trained):
    _, runs = trained
    record = json.loads((runs / "flat" / "run.json").read_text())
    assert record["data"]["train"] == 200 and record["data"]["validation"] == 5000
    assert (runs / "flat" / "model.keras").is_file()
    assert not (runs / "conv2d").exists()


def test_export_exits_1_on_a_failed_gate_and_leaves_the_bundle_as_it_was(trained, tmp_path):
    """Through the console command: a model far below the original's accuracy fails its gate
    (float32 artifacts are gated on agreeing with their Keras model; the dynamic-range one on
    accuracy too)."""
    from mnist_edge_runtime.bundle import sha256_file

    data, runs = trained
    bundle = tmp_path / "export"
    shutil.copytree(REPO / "export", bundle)  # an earlier bundle, with a flat.float32.tflite in it
    before = {p.name: sha256_file(p) for p in bundle.iterdir()}
    done = subprocess.run(
        [
            sys.executable, "-m", "mnist_edge", "export", "--model", "flat", "--format", "tflite", "--dynamic",
            "--runs", str(runs), "--bundle", str(bundle), "--data-dir", str(data),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("mnist-edge: error:")]
    assert len(errors) == 1 and "validation failed, bundle left unchanged" in errors[0], done.stderr
    assert "accuracy >= original 97.46%" in errors[0]  # the dynamic-range model's gate
    assert "Traceback" not in done.stderr
    assert {p.name: sha256_file(p) for p in bundle.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no staging folder left


def test_ctrl_c_exits_130_with_one_line():
    """A real SIGINT inside a command (raised while it loads the data): exit 130, one line."""
    code = (
        "import os, signal, sys, time\n"
        "import mnist_edge.data\n"
        "def interrupted(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(60)\n"
        "mnist_edge.data.load_mnist = interrupted\n"
        "sys.argv = ['mnist-edge', 'train', '--model', 'flat']\n"
        "from mnist_edge.cli import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr.splitlines() == ["mnist-edge: interrupted"], done.stderr
    assert done.stdout == ""


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


def test_help_texts_keep_every_word_and_reflow_at_80_columns():
    """Each command's description is markup: nothing in it may be swallowed as a tag (a
    ``<runs>`` once vanished), and a paragraph is one flow of text, not the source's line breaks
    cut again at 80 columns."""
    import typer.main

    for name, command in typer.main.get_command(app).commands.items():
        done = subprocess.run(
            [sys.executable, "-m", "mnist_edge", name, "--help"],
            capture_output=True, text=True, env={**os.environ, "COLUMNS": "80", "TERMINAL_WIDTH": "80"},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        description = done.stdout.split("╭")[0]  # before the option panels
        assert " ".join(command.help.split()) in " ".join(description.split()), (name, description)
        lines = [line.rstrip() for line in description.splitlines()]
        for line, after in zip(lines, lines[1:], strict=False):
            # A line ends early only where its paragraph does.
            assert not line.strip() or len(line) > 60 or not after.strip(), (name, description)


def test_a_path_the_user_may_not_enter_is_one_line_exit_2(capsys):
    # Root enters every folder and tests often run as root: the refusal is raised as Python 3.11's
    # Path.is_file raises it for a path inside a folder this user may not enter.
    import typer

    from mnist_edge.cli import user_errors

    @user_errors
    def command() -> None:
        raise PermissionError(13, "Permission denied", "locked/extra.npz")

    with pytest.raises(typer.Exit) as exited:
        command()
    assert exited.value.exit_code == 2
    assert capsys.readouterr().err == "mnist-edge: error: locked/extra.npz: permission denied\n"
