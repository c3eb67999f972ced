"""The ``mnist-edge`` command line: parses options, calls the pipeline modules, prints results."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import click
import typer
from mnist_edge_runtime.errors import RuntimeInputError, permission_problem
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mnist_edge.errors import EXIT_USAGE, UserError
from mnist_edge.validate import ORIGINAL_ACCURACY

app = typer.Typer(
    help="Train, quantize, export and validate MNIST digit classifiers for small devices.",
    epilog="Exit codes: 0 success; 1 a validation or parity gate failed; 2 usage error or bad input; "
    "130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
console = Console(stderr=True)
out = Console()


def print_error(message: str) -> None:
    # Plain stderr, not rich: an error stays one line whatever the terminal width.
    sys.stderr.write(f"mnist-edge: error: {message}\n")


def _print_version(value: bool) -> None:
    if value:
        from mnist_edge import __version__

        out.print(f"mnist-edge {__version__}")
        raise typer.Exit()


@app.callback()
def _commands(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """Train, quantize, export and validate MNIST digit classifiers for small devices."""


# One meaning per option name in both CLIs: --runs is the training runs folder, --bundle the export
# bundle, --reports the report folder. Each command's old `--out` still works (hidden), for scripts.
OldOut = Annotated[Path | None, typer.Option("--out", hidden=True, help="Old name of this command's folder.")]


def user_errors(command: Callable) -> Callable:
    """Turn a user's error raised by a command, or Ctrl-C, into one line on stderr and its exit code."""

    @functools.wraps(command)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return command(*args, **kwargs)
        except (UserError, RuntimeInputError) as exc:  # the runtime's checks, used by export and report
            print_error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except PermissionError as exc:  # a path given that this user may not enter or read
            print_error(permission_problem(exc))
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:
            # Said here: typer turns an interruption into a silent exit 130, never reaching main().
            sys.stderr.write("mnist-edge: interrupted\n")
            raise typer.Exit(130) from None

    return wrapper


class ModelChoice(str, Enum):
    conv2d = "conv2d"
    flat = "flat"
    all = "all"

    def names(self) -> list[str]:
        return ["conv2d", "flat"] if self is ModelChoice.all else [self.value]


class RichTrainingProgress:
    """Draws one progress bar per epoch and a summary line when it ends."""

    def __init__(self, model: str):
        self.model = model
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,  # logs (CI, files) get the epoch lines only
        )
        self.task = None

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
        if console.is_terminal:
            self.progress.start()
        self.task = self.progress.add_task(f"{self.model} epoch {epoch + 1}/{epochs}", total=steps, loss=0.0)

    def batch_finished(self, step: int, loss: float) -> None:
        self.progress.update(self.task, completed=step, loss=loss)

    def epoch_finished(self, metrics: dict) -> None:
        self.progress.remove_task(self.task)
        if console.is_terminal:
            self.progress.stop()
        console.print(
            f"{self.model} epoch {metrics['epoch']}: loss {metrics['loss']:.4f}, "
            f"val accuracy {metrics['val_accuracy']:.2%} ({metrics['seconds']:.0f}s)"
        )

    def note(self, message: str) -> None:
        console.print(message)


@app.command()
@user_errors
def train(
    model: Annotated[ModelChoice, typer.Option(help="Which model to train.")] = ModelChoice.all,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Epochs (default: per model, see docs/training.md).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size (default 128).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Random seed; the same seed gives the same weights.")] = 0,
    runs: Annotated[Path, typer.Option("--runs", help="Where runs are written.")] = Path("runs"),
    resume: Annotated[bool, typer.Option(help="Continue from the last epoch checkpoint in --runs.")] = False,
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder of MNIST IDX files (gzip or raw) or a Keras mnist.npz.")
    ] = None,
    extra_data: Annotated[
        list[Path] | None,
        typer.Option(
            "--extra-data",
            help="Samples collected on devices (a serve --collect folder, or a samples --export .npz; "
            "repeat for several): fine-tune the model in --runs on MNIST plus them, a quarter held out "
            "to measure (docs/learn.md).",
        ),
    ] = None,
    old_out: OldOut = None,
) -> None:
    """Train the conv2d and/or flat model; writes RUNS/MODEL/model.keras and run.json.

    With --extra-data, fine-tune the model already in RUNS/MODEL instead (default 2 epochs
    for conv2d, 3 for flat, at a tenth of the training rate); the model it started from is kept
    as before-extra-data.keras.

    Exit codes: 0 trained, 2 usage error or unreadable data, 130 interrupted (rerun to resume).
    """
    from mnist_edge.data import load_mnist
    from mnist_edge.files import ensure_writable_dir

    out_dir = old_out or runs

    # Check the cheap things before TensorFlow is imported (seconds).
    data = load_mnist(data_dir)
    ensure_writable_dir(out_dir)
    if extra_data:  # read before TensorFlow starts: a wrong path is one line at once
        from mnist_edge.learn import load_collected

        for sample_set in load_collected([str(p) for p in extra_data]).sets:
            for why in sample_set["skipped"]:
                console.print(f"{sample_set['path']}: skipped {why}", markup=False)
    from mnist_edge.files import read_json
    from mnist_edge.train import default_config, fine_tune_config
    from mnist_edge.train import train as train_model

    table = Table("model", "epochs", "val accuracy", "test accuracy", "original", "time", "saved to")
    learned = Table("model", "held-out samples", "right before", "right after", "sample sets")
    for name in model.names():
        options = {"epochs": epochs, "batch_size": batch_size, "seed": seed}
        if extra_data:  # the recipe the model in --runs was trained with
            record_path = out_dir / name / "run.json"
            previous = read_json(record_path).get("config") if record_path.is_file() else None
            config = fine_tune_config(name, extra_data, previous, **options)
        else:
            config = default_config(name, **options)
        result = train_model(config, data, out_dir, resume=resume, progress=RichTrainingProgress(name))
        record = result.record
        if "collected" in record:
            collected = record["collected"]
            learned.add_row(
                name,
                str(collected["held_out"]),
                f"{collected['held_out_right_float']['before']:.1%}",
                f"{collected['held_out_right_float']['after']:.1%}",
                ", ".join(s["sha256"][:12] for s in collected["sets"]),
            )
        table.add_row(
            name,
            str(config.epochs),
            f"{record['validation_accuracy']:.2%}",
            f"{record['test_accuracy']:.2%}",
            f"{ORIGINAL_ACCURACY[name]:.2%}",
            f"{record['wall_seconds']:.0f}s",
            str(result.model_path),
        )
    out.print(table)
    if extra_data:
        out.print(learned)
        out.print(
            "next: mnist-edge export --int8 (QAT, the gates, before and after in the manifest), then mnist-edge package"
        )


class FormatChoice(str, Enum):
    tflite = "tflite"
    onnx = "onnx"
    tflm = "tflm"  # C source for microcontrollers (TensorFlow Lite for Microcontrollers), int8 only
    all = "all"


class RichExportProgress:
    """A spinner line per step and the validation table row by row."""

    def __init__(self) -> None:
        self.status = console.status("exporting")
        self.status.start()
        self.artifacts = []
        self.notes: list[str] = []

    def step(self, message: str) -> None:
        self.status.start()
        self.status.update(message)
        if not console.is_terminal:
            console.print(message)

    def note(self, message: str) -> None:
        self.notes.append(message)  # printed after the table, where it is not scrolled away

    def print_notes(self) -> None:
        for message in self.notes:
            console.print(message, markup=False, highlight=False)

    def artifact_done(self, artifact) -> None:
        self.artifacts.append(artifact)
        v = artifact.validation
        verdict = "pass" if v.passed else "FAIL: " + ", ".join(v.failures())
        console.print(
            f"{artifact.filename}: accuracy {v.accuracy:.2%}, agreement {v.agreement:.2%}, {verdict}"
        )

    def stop(self) -> None:
        self.status.stop()

    def table(self) -> Table:
        # The file name says format and precision; the columns fit an 80-column terminal.
        table = narrow_table("size", "accuracy", "agree", "|diff|", "vs", "result")
        for a in self.artifacts:
            v = a.validation
            table.add_row(
                a.filename,
                f"{a.bytes / 1024:.0f} KiB",
                f"{v.accuracy:.2%}",
                f"{v.agreement:.2%}",
                f"{v.max_abs_diff:.2g}",
                v.source,
                "[green]pass[/]" if v.passed else "[red]FAIL[/]",  # the reasons are printed above it
            )
        return table


def narrow_table(*columns: str) -> Table:
    """A table whose first column, the artifact's file name, is never cut (80-column terminals)."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("artifact", no_wrap=True, min_width=len("conv2d.float32.tflite"))
    for column in columns:
        table.add_column(column, no_wrap=True)
    return table


def report_table(rows: list[dict]) -> Table:
    table = narrow_table("size", "accuracy", "vs orig", "vs float", "p50", "status")
    for r in rows:
        table.add_row(
            r["artifact"], f"{r['bytes'] / 1024:,.0f} KiB", f"{r['accuracy']:.2%}",
            f"{r['delta_to_original_pp']:+.2f}pp",
            "" if r["delta_to_float_pp"] is None else f"{r['delta_to_float_pp']:+.2f}pp",
            f"{r['latency_p50_ms_1_thread']:.3f}ms", r["status"],
        )  # fmt: skip
    return table


def _qat_epoch_printer(name: str) -> Callable[[dict], None]:
    return lambda m: console.print(
        f"{name} QAT epoch {m['epoch']}: loss {m['loss']:.4f}, val accuracy {m['val_accuracy']:.2%}"
    )


@app.command()
@user_errors
def qat(
    model: Annotated[ModelChoice, typer.Option(help="Which model to fine-tune.")] = ModelChoice.all,
    runs: Annotated[Path, typer.Option("--runs", help="Where mnist-edge train wrote the models.")] = Path(
        "runs"
    ),
    epochs: Annotated[int, typer.Option(min=1, help="QAT fine-tuning epochs.")] = 2,
    data_dir: Annotated[
        Path | None, typer.Option(help="MNIST folder or mnist.npz (default: bundled).")
    ] = None,
) -> None:
    """Quantization-aware fine-tuning; writes RUNS/MODEL/qat-logits.weights.h5 and qat.json (export --int8 runs it if needed).

    Exit codes: 0 done, 2 usage error or no trained model.
    """
    from mnist_edge.data import load_mnist

    data = load_mnist(data_dir)
    from mnist_edge.export import load_trained
    from mnist_edge.quantize import QatConfig, load_or_train_qat, qat_paths

    for name in model.names():
        float_model, record = load_trained(name, runs)
        load_or_train_qat(
            name,
            float_model,
            record,
            data,
            runs,
            QatConfig(epochs=epochs),
            _qat_epoch_printer(name),
            retrain=True,
        )
        out.print(
            f"{name}: QAT validation accuracy {record['qat']['validation_accuracy']:.2%} -> {qat_paths(runs, name)[0]}"
        )


@app.command()
@user_errors
def export(
    model: Annotated[ModelChoice, typer.Option(help="Which model to export.")] = ModelChoice.all,
    fmt: Annotated[
        FormatChoice,
        typer.Option("--format", help="Which file format (tflm: C source for microcontrollers, int8)."),
    ] = FormatChoice.all,
    int8: Annotated[
        bool, typer.Option("--int8", help="Also the full-integer int8 models (runs QAT if needed).")
    ] = False,
    dynamic: Annotated[bool, typer.Option("--dynamic", help="Also the dynamic-range TFLite models.")] = False,
    bundle: Annotated[
        Path, typer.Option("--bundle", help="The bundle folder: new, empty, or an earlier bundle.")
    ] = Path("export"),
    runs: Annotated[Path, typer.Option("--runs", help="Where mnist-edge train wrote the models.")] = Path(
        "runs"
    ),
    calibration_size: Annotated[
        int, typer.Option(min=1, help="Training images used to calibrate int8 ranges.")
    ] = 1000,
    data_dir: Annotated[
        Path | None, typer.Option(help="MNIST folder or mnist.npz (default: bundled).")
    ] = None,
    old_out: OldOut = None,
) -> None:
    """Export to TFLite / ONNX / TFLM C source, validate every artifact on the 10,000 test images, update the bundle.

    Exit codes: 0 every artifact validated, 1 an artifact failed its validation gate (the bundle is
    left as it was), 2 usage error or missing input.
    """
    from mnist_edge.data import load_mnist
    from mnist_edge.files import ensure_writable_dir

    bundle = old_out or bundle
    data = load_mnist(data_dir)
    ensure_writable_dir(bundle.resolve().parent)
    from mnist_edge.export import export_models, select_formats
    from mnist_edge.quantize import load_or_train_qat

    def qat_provider(name, float_model, record):
        return load_or_train_qat(name, float_model, record, data, runs, on_epoch=_qat_epoch_printer(name))

    progress = RichExportProgress()
    try:
        exported = export_models(
            model.names(),
            select_formats(fmt.value, int8, dynamic),
            data,
            runs,
            bundle,
            calibration_size,
            qat_provider,
            progress,
        )
    finally:
        progress.stop()
        if progress.artifacts:
            out.print(progress.table())
        progress.print_notes()
    out.print(f"bundle written to {bundle}/ ({len(exported)} artifacts validated)")


class TargetChoice(str, Enum):
    pi_bookworm_64 = "pi-bookworm-64"
    pi_trixie_64 = "pi-trixie-64"
    pi_bookworm_32 = "pi-bookworm-32"
    linux_x86_64 = "linux-x86_64"


@app.command()
@user_errors
def package(
    target: Annotated[TargetChoice, typer.Option("--target", help="The device's OS, CPU and Python.")],
    folder: Annotated[
        Path, typer.Option("--out", help="A new folder for wheels/, install.sh and README.txt.")
    ],
    bundle: Annotated[
        Path, typer.Option("--bundle", help="The export bundle whose int8 models the runtime carries.")
    ] = Path("export"),
) -> None:
    """Write an offline installation of the runtime for one device: wheels, install.sh, README.txt.

    Exit codes: 0 written, 2 usage error, missing bundle, folder exists, or a wheel the target
    needs does not exist.
    """
    from mnist_edge.package import build_package, summary

    with console.status("packaging") as status:
        wheels = build_package(target.value, bundle, folder, on_step=lambda step: status.update(step))
    out.print(summary(folder, target.value, wheels), soft_wrap=True, markup=False)


@app.command()
@user_errors
def report(
    bundle: Annotated[Path, typer.Option("--bundle", help="The export bundle to report on.")] = Path(
        "export"
    ),
    reports: Annotated[
        Path, typer.Option("--reports", help="Where REPORT.md, report.json and PNGs go.")
    ] = Path("reports"),
    data_dir: Annotated[
        Path | None, typer.Option(help="MNIST folder or mnist.npz (default: bundled).")
    ] = None,
    old_out: OldOut = None,
) -> None:
    """Parity table, example images, confusion matrices and size/accuracy chart of a bundle.

    Exit codes: 0 written, 1 an artifact misses parity, 2 usage error or unreadable bundle.
    """
    from mnist_edge.data import load_mnist
    from mnist_edge.report import build_report

    out_dir = old_out or reports

    data = load_mnist(data_dir)
    with console.status("measuring") as status:
        result = build_report(bundle, out_dir, data.test, on_step=status.update)
    out.print(report_table(result["artifacts"]))
    out.print(f"report written to {out_dir / 'REPORT.md'}")
    if any(r["status"] != "pass" for r in result["artifacts"]):
        raise typer.Exit(1)


@app.command()
@user_errors
def pipeline(
    runs: Annotated[Path, typer.Option("--runs", help="Training runs and checkpoints.")] = Path("runs"),
    bundle: Annotated[Path, typer.Option("--bundle", help="The export bundle.")] = Path("export"),
    reports: Annotated[Path, typer.Option("--reports", help="Where the report goes.")] = Path("reports"),
    data_dir: Annotated[
        Path | None, typer.Option(help="MNIST folder or mnist.npz (default: bundled).")
    ] = None,
    old_out: OldOut = None,
) -> None:
    """Everything: train both models, QAT, export all formats, validate, report. Rerun to resume.

    Exit codes: 0 done, 1 a validation or parity gate failed, 2 usage error, 130 interrupted.
    """
    from mnist_edge.data import load_mnist
    from mnist_edge.files import ensure_writable_dir

    bundle = old_out or bundle

    data = load_mnist(data_dir)
    for folder in (runs, bundle.parent, reports):
        ensure_writable_dir(folder)
    from mnist_edge.pipeline import PipelinePaths, run_pipeline

    def stage_started(number: int, total: int, title: str) -> None:
        console.rule(f"[bold]stage {number}/{total}: {title}")

    progress = RichExportProgress()
    progress.stop()  # started again by the export stage's first step
    try:
        result = run_pipeline(
            data, PipelinePaths(runs, bundle, reports), stage_started, RichTrainingProgress, progress,
            _qat_epoch_printer,
        )  # fmt: skip
    finally:
        progress.stop()
    if progress.artifacts:
        out.print(progress.table())
    progress.print_notes()
    failed = [r["artifact"] for r in result["artifacts"] if r["status"] != "pass"]
    out.print(
        f"bundle: {bundle}/, report: {reports / 'REPORT.md'}" + (f"; FAILED: {failed}" if failed else "")
    )
    if failed:
        raise typer.Exit(1)


def main() -> None:
    """Entry point: every user error is one line on stderr and exit code 2 (1 for a failed gate)."""
    try:
        code = app(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        # click shows the help text and raises; that is not an error for the user.
        click.echo(exc.ctx.get_help())
        sys.exit(0)
    except click.UsageError as exc:
        print_error(exc.format_message())
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        sys.stderr.write("mnist-edge: interrupted\n")
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
