"""``mnist-edge-runtime``: predict, eval (the parity check), bench and serve (the draw-a-digit page), on a device.

argparse rather than a CLI framework: the runtime depends on numpy only.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from mnist_edge_runtime import __version__, parity_check
from mnist_edge_runtime.backends import BACKENDS, missing_backend
from mnist_edge_runtime.bundle import (
    DEFAULT_MODEL,
    PACKAGED_BUNDLE,
    PACKAGED_IMAGES,
    PACKAGED_LABELS,
    packaged_bundle_id,
    read_manifest,
)
from mnist_edge_runtime.classifier import Classifier, format_confidence
from mnist_edge_runtime.errors import RuntimeInputError, not_a_file, permission_problem
from mnist_edge_runtime.idx import read_images_and_labels
from mnist_edge_runtime.machine import describe_machine
from mnist_edge_runtime.samples import DEFAULT_MAX_SAMPLES, DEFAULT_MIN_FREE_BYTES

EXIT_PARITY_FAILED = 1
EXIT_SOME_FILES_FAILED = 1
# The model comes from --model-file, else --bundle, else $MNIST_EDGE_BUNDLE, else the bundle this
# package carries. A ./export folder is never picked up unasked.
DEFAULT_BUNDLE = (
    Path(os.environ["MNIST_EDGE_BUNDLE"]) if os.environ.get("MNIST_EDGE_BUNDLE") else PACKAGED_BUNDLE
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage block
        sys.stderr.write(f"mnist-edge-runtime: error: {message}\n")
        raise SystemExit(2)


class _Version(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None) -> None:  # unwrapped, one line
        print(f"mnist-edge-runtime {__version__}, {packaged_bundle_id()}")
        raise SystemExit(0)


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


MAX_THREADS = 256  # far beyond any board's cores; a huge count crashes an interpreter


def _thread_count(value: str) -> int:
    number = _positive(value)
    if number > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{value} threads: at most {MAX_THREADS}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mnist-edge-runtime",
        description="Run mnist-edge's MNIST digit classifiers on this computer, without TensorFlow: "
        "predict reads pictures of digits, eval is the parity check (accuracy on the MNIST test set "
        "against the manifest's figures), bench times a model, serve runs the draw-a-digit web page.",
        epilog="Exit codes: 0 success; 1 parity failed (eval) or a file could not be read (predict); "
        "2 usage error, unusable model or unreadable input; 130 interrupted.",
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="print the version and the packaged bundle, and exit"
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def model_options(
        p: argparse.ArgumentParser,
        threads_help: str | None = "interpreter threads (default: the interpreter's)",
        model_default: str = f"BUNDLE/{DEFAULT_MODEL}",
    ) -> None:
        # --model-file is a file here; the toolchain's --model is a model name. --model still works.
        p.add_argument(
            "--model-file", "--model", dest="model", type=Path, metavar="PATH",
            help=f"model file, .tflite or .onnx (default: {model_default})",
        )  # fmt: skip
        p.add_argument(
            "--bundle",
            type=Path,
            default=DEFAULT_BUNDLE,
            help="export bundle folder (default: $MNIST_EDGE_BUNDLE if set, else the bundle this package "
            "carries: conv2d and flat int8 .tflite; a ./export folder is used only when named)",
        )
        p.add_argument("--backend", choices=BACKENDS, help="force a backend (default: best installed)")
        if threads_help:  # serve's threads are its workers (--workers), not the interpreter's
            p.add_argument("--threads", type=_thread_count, help=threads_help)

    predict = commands.add_parser(
        "predict",
        help="classify image files",
        description="Classify pictures of one digit each. Every file gets a row: the digit, its "
        "confidence, the runner-up, and whether to trust it ('sure'; 'no: blank', 'no: not like a "
        "digit', 'no: two digits?', 'no: low confidence' or 'no: ambiguous' otherwise). A file "
        "that cannot be read gets one line saying why, and the others are still answered. "
        "Exit codes: 0 every file answered, 1 some file could not be read, 2 usage error or "
        "unusable model.",
    )
    predict.add_argument(
        "files", nargs="+", type=Path, metavar="FILE_OR_FOLDER",
        help="pictures (PNG, JPEG, BMP, GIF, WebP, TIFF, PGM/PPM; other formats are refused unread); a folder means its files of those formats, sorted by name",
    )  # fmt: skip
    model_options(predict)
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.add_argument("--collect", type=Path, metavar="DIR",
                         help="also keep each picture as a sample in DIR, labelled --label, to train a better model (docs/learn.md)")  # fmt: skip
    predict.add_argument(
        "--label",
        metavar="L",
        help="with --collect: the right answer for every file, a digit 0-9 or n (not a digit)",
    )

    samples = commands.add_parser(
        "samples",
        help="count the samples collected in a folder, or export them to one file",
        description="What a collection folder (serve --collect DIR, predict --collect DIR) holds: samples per "
        "label and how often the model that answered was right. --export writes them all to one .npz "
        "file (the 28x28 pictures, labels and records) to carry to the workstation, for "
        "mnist-edge train --extra-data. Exit codes: 0 done, 2 usage error or unreadable samples.",
    )
    samples.add_argument(
        "folder", type=Path, metavar="DIR_OR_FILE", help="a collection folder, or an .npz file --export wrote"
    )
    samples.add_argument(
        "--export", type=Path, metavar="FILE", help="write every sample to this new .npz file"
    )
    samples.add_argument("--json", action="store_true", help="print JSON instead of a table")

    evaluate = commands.add_parser(
        "eval",
        help="the parity check: accuracy on the MNIST test set against the manifest",
        description="Accuracy of every model of the bundle (or of --model-file) on the 10,000 MNIST "
        "test images, checked against the manifest's figures (parity) and the original project's. "
        "With no options: the models and test set this package carries. "
        "Exit codes: 0 parity holds, 1 parity failed, 2 usage error or unreadable input.",
    )
    evaluate.add_argument("--images", type=Path, default=PACKAGED_IMAGES,
                          help="IDX image file, gzip or raw (default: the 10,000 MNIST test images this package carries)")  # fmt: skip
    evaluate.add_argument("--labels", type=Path, default=PACKAGED_LABELS,
                          help="IDX label file, gzip or raw (default: their labels, carried too)")  # fmt: skip
    model_options(evaluate, model_default="every model of the bundle this device can run")
    evaluate.add_argument("--limit", type=_positive, help="only the first N images (parity needs all)")
    evaluate.add_argument(
        "--predictions", type=Path, help="also write each image's predicted digit (JSON) to this new file"
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")

    bench = commands.add_parser(
        "bench",
        help="latency, throughput and peak memory",
        description="Time one model on random 28x28 images: first prediction, single-image p50/p99, "
        "batch throughput, peak memory, and the CPU it ran on. With --compare: every int8 model of "
        "the bundle beside its float32 twin (.tflite, and .onnx where onnxruntime is installed), "
        "and which is faster on this CPU. Exit codes: 0 done, 2 usage error, unusable model, or "
        "nothing to compare.",
    )
    model_options(bench, threads_help="interpreter threads (default: the interpreter's; 1 with --compare)")
    bench.add_argument("--repeat", type=_positive, default=200,
                       help="single-image runs (default 200; with --compare, per file and round)")  # fmt: skip
    bench.add_argument("--compare", action="store_true",
                       help="time int8 against float32 side by side in interleaved rounds: a table and one verdict per model (needs a bundle with the float32 files, e.g. --bundle export)")  # fmt: skip
    bench.add_argument(
        "--rounds", type=_positive, default=10, help="with --compare: interleaved rounds (default 10)"
    )

    serve = commands.add_parser(
        "serve",
        help='a draw-a-digit web page and HTTP API (install with pip install "./runtime[serve]")',
        description="Serve the draw-a-digit page and its HTTP API. Holds on a 1 GB Raspberry Pi "
        "whatever clients send: image bodies up to --max-body, JSON up to 64 KiB, 48 MiB of bodies "
        "held at once, images refused when decoding would take over 64 MB; 30 s for a body, 10 s "
        "for headers, idle connections closed after 5 s, open connections capped below the "
        "file-descriptor limit; POSTs from other sites' pages refused. A stop (Ctrl-C, SIGTERM) "
        "waits up to 5 s for requests in flight; a second one stops at once. "
        "Exit codes: 0 stopped by a signal, 2 usage error, unusable model or port taken.",
    )
    model_options(serve, threads_help=None)
    serve.add_argument("--workers", "--threads", dest="workers", type=_thread_count, metavar="N",
                       help="worker threads for preprocessing and inference; inference takes turns on one "
                       "single-threaded interpreter (default 2; --threads is the old spelling)")  # fmt: skip
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 for the network)",
    )
    serve.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000)")
    serve.add_argument("--max-body", type=_positive, default=8 * 1024 * 1024, metavar="BYTES",
                       help="largest request body accepted (default 8 MiB)")  # fmt: skip
    serve.add_argument("--max-in-flight", type=_positive, default=16, metavar="N",
                       help="requests being answered at once (uploads in progress not counted); more get 503 (default 16)")  # fmt: skip
    serve.add_argument("--header-timeout", type=_seconds, default=10.0, metavar="SECONDS",
                       help="time for a request's headers, from the connection or the previous answer (default 10)")  # fmt: skip
    serve.add_argument("--body-timeout", type=_seconds, default=30.0, metavar="SECONDS",
                       help="time for a whole request body; 408 after (default 30)")  # fmt: skip
    serve.add_argument("--allowed-hosts", metavar="NAMES", default="",
                       help="comma-separated host names the Host header must name, e.g. pi.local,192.168.1.20; this machine's own names (localhost, 127.0.0.1, ::1) always pass (default: any)")  # fmt: skip
    serve.add_argument("--log-level", choices=("error", "warning", "info", "debug"), default="warning",
                       help="info adds one access-log line per request: client, method, path, status, ms (default warning)")  # fmt: skip
    serve.add_argument("--collect", type=Path, metavar="DIR",
                       help="keep the corrections people make on the page (or POST to /api/samples) in DIR, to train a better model (docs/learn.md); then Host must name this machine or one of --allowed-hosts (default: off, nothing stored)")  # fmt: skip
    serve.add_argument("--collect-max", type=_positive, metavar="N",
                       help=f"with --collect: stop storing at N samples, answering goes on (default {DEFAULT_MAX_SAMPLES:,})")  # fmt: skip
    serve.add_argument("--collect-min-free", type=_positive, metavar="MIB",
                       help=f"with --collect: stop storing while the disk has less free space than this (default {DEFAULT_MIN_FREE_BYTES // 2**20} MiB)")  # fmt: skip
    serve.add_argument("--systemd-unit", action="store_true",
                       help="print a systemd unit that runs this command with these options as a service, and exit")  # fmt: skip
    return parser


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 < number <= 3600:
        raise argparse.ArgumentTypeError(f"{value} must be more than 0 and at most 3600 seconds")
    return number


def _port(value: str) -> int:
    number = _positive(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (1-65535)")
    return number


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Pillow warns about huge pictures before our own size check refuses them in one line. The
    # command owns its process, so it may set this filter once; the library changes no such state.
    warnings.filterwarnings("ignore", message=r"Image size \(\d+ pixels\) exceeds limit")
    try:
        commands = {
            "predict": cmd_predict,
            "eval": cmd_eval,
            "bench": cmd_bench,
            "serve": cmd_serve,
            "samples": cmd_samples,
        }
        code = commands[args.command](args)
    except RuntimeInputError as exc:
        sys.stderr.write(f"mnist-edge-runtime: error: {exc}\n")
        code = exc.exit_code
    except PermissionError as exc:  # a path given that this user may not enter or read
        sys.stderr.write(f"mnist-edge-runtime: error: {permission_problem(exc)}\n")
        code = 2
    except KeyboardInterrupt:
        sys.stderr.write("mnist-edge-runtime: interrupted\n")
        code = 130
    sys.exit(code)


def _model_paths(args: argparse.Namespace, all_in_bundle: bool = False) -> list[Path]:
    if args.model is not None:
        return [args.model]
    if all_in_bundle:
        return [args.bundle / name for name in read_manifest(args.bundle)["artifacts"]]
    return [args.bundle / DEFAULT_MODEL]


# --- predict ------------------------------------------------------------------------------


def picture_files(arguments: list[Path]) -> list[Path]:
    """The files to classify: each file as given, and in each folder the files whose extension
    Pillow reads (.png, .jpg, .webp, .tif, ...), sorted by name."""
    from mnist_edge_runtime.preprocess import image_suffixes

    files = []
    for argument in arguments:
        if not argument.is_dir():
            files.append(argument)
            continue
        try:
            entries = sorted(argument.iterdir())
        except OSError as exc:
            raise RuntimeInputError(f"{argument}: cannot list the folder ({exc.strerror})") from None
        readable = image_suffixes()
        files += [p for p in entries if p.suffix.lower() in readable and p.is_file()]
    return files


def cmd_predict(args: argparse.Namespace) -> int:
    """Every file gets a row: its answer, or one line saying why it could not be read."""
    from mnist_edge_runtime.preprocess import mnist_or_blank

    if (args.collect is None) != (args.label is None):
        raise RuntimeInputError("--collect DIR and --label L go together")
    if args.label is not None:
        from mnist_edge_runtime.samples import parse_label

        parse_label(args.label)
    store = _sample_store(args, default_cap=True)
    classifier = Classifier.open(_model_paths(args)[0], args.backend, args.threads)
    if not classifier.output_known:
        sys.stderr.write(
            f"note: {classifier.path} says nothing about its outputs (no mnist-edge metadata, no "
            "manifest): the numbers shown are its raw outputs, not confidences\n"
        )
    files = picture_files(args.files)
    if not files:
        raise RuntimeInputError(f"no image files in {', '.join(map(str, args.files))}")
    images, errors = {}, {}
    for i, path in enumerate(files):
        try:
            images[i] = mnist_or_blank(path, str(path))
        except RuntimeInputError as exc:
            errors[i] = str(exc).removeprefix(f"{path}: ")
    read = sorted(images)
    batch = np.stack([images[i] for i in read]) if read else np.zeros((0, 28, 28), np.uint8)
    answers = dict(zip(read, classifier.predict(batch) if read else []))
    if store is not None:  # a file answered but not kept gets an error row instead
        not_kept = store.add_files(files, images, answers, args.label, classifier.path)
        errors.update(not_kept)
        for i in not_kept:
            answers.pop(i, None)
    if args.json:
        rows = [
            {"file": str(path), **(answers[i].as_dict() if i in answers else {"error": errors[i]})}
            for i, path in enumerate(files)
        ]
        print(json.dumps(rows, indent=2))
    else:
        _print_predictions(files, answers, errors)
    return EXIT_SOME_FILES_FAILED if errors else 0


def _print_predictions(files: list[Path], answers: dict, errors: dict) -> None:
    width = max(len("file"), *(len(str(f)) for f in files))
    print(f"{'file':<{width}}  predicted  confidence  2nd best      sure")
    for i, path in enumerate(files):
        if i in errors:
            print(f"{str(path):<{width}}  error: {errors[i]}")
            continue
        p = answers[i]
        verdict = "yes" if p.sure else f"no: {p.doubt}"
        if p.digit is None:
            print(f"{str(path):<{width}}  {'-':>9}  {'-':>10}  {'-':<12}  {verdict}")
            continue
        runner_up = f"{p.runner_up} ({format_confidence(p.runner_up_confidence)})"
        print(
            f"{str(path):<{width}}  {p.digit:>9}  {format_confidence(p.confidence):>10}  {runner_up:<12}  {verdict}"
        )


# --- eval: the parity check -------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace) -> int:
    if args.predictions and os.path.lexists(args.predictions):  # never replaced: it may be anything
        raise _taken(args.predictions)
    images, labels = read_images_and_labels(args.images, args.labels)
    full = args.limit is None or args.limit >= len(labels)
    images, labels = images[: args.limit], labels[: args.limit]
    paths = _model_paths(args, all_in_bundle=args.model is None)
    if args.model is None:  # a whole bundle: run what this device can, say what it skipped
        for path in [p for p in paths if missing_backend(p)]:
            sys.stderr.write(f"skipped {path.name}: {missing_backend(path)}\n")
        paths = [p for p in paths if not missing_backend(p)]
        if not paths:
            raise RuntimeInputError(
                f"{args.bundle}: no artifact can run here: install an interpreter "
                '(pip install "./runtime[litert]", "./runtime[tflite]" or "./runtime[onnx]" in a checkout of mnist-edge)'
            )
    rows, predictions = parity_check.measure(paths, images, labels, args.backend, args.threads, full)
    here = describe_machine()
    if args.predictions:
        _write_new_text(args.predictions, json.dumps(predictions) + "\n")
    if args.json:
        print(json.dumps([{**row, "machine": here} for row in rows], indent=2))
    else:
        parity_check.print_machines(here, rows)
        parity_check.print_table(rows)
    return EXIT_PARITY_FAILED if any(row["parity"] == "FAIL" for row in rows) else 0


def _taken(path: Path) -> RuntimeInputError:
    return RuntimeInputError(f"{path}: already exists; --predictions writes a new file")


def _write_new_text(path: Path, text: str) -> None:
    """Write a new file whole or not at all: into a temporary file of our own beside ``path``, then
    linked to its name, which fails if anything took the name meanwhile (never replaced)."""
    try:
        handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise RuntimeInputError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        try:
            os.link(partial, path)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
                raise
            _create_whole(path, text)
    except FileExistsError:
        raise _taken(path) from None
    except OSError as exc:
        raise RuntimeInputError(f"{path}: cannot write ({exc.strerror})") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(partial)


def _create_whole(path: Path, text: str) -> None:
    """Create ``path`` (never replacing one) and write ``text``, or leave no half of it behind."""
    with open(path, "x") as file:
        try:
            file.write(text)
            file.flush()
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path)  # ours: created just now
            raise


# --- serve --------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from mnist_edge_runtime.serve import ServeLimits, serve

    # Preprocessing, most of a request's time, runs side by side in the worker threads; the one
    # single-threaded interpreter takes turns (0.1 ms).
    workers = args.workers or 2
    model = _model_paths(args)[0]
    _check_collect_options(args)
    if args.systemd_unit:
        from mnist_edge_runtime.service import systemd_unit

        if not model.is_file():
            raise not_a_file(model, "model file")

        print(systemd_unit(args, model), end="")
        return 0
    classifier = Classifier.open(model, args.backend, threads=1)
    from mnist_edge_runtime.guard import host_name

    hosts = tuple(host_name(name.strip()) for name in args.allowed_hosts.split(",") if name.strip())
    limits = ServeLimits(
        max_body=args.max_body,
        threads=workers,
        max_in_flight=args.max_in_flight,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        allowed_hosts=hosts,
        own_hosts_only=args.collect is not None,
    )
    store = _sample_store(args)
    serve(
        classifier, args.host, args.port, limits, lambda line: print(line, flush=True), args.log_level, store
    )
    return 0


def _check_collect_options(args: argparse.Namespace) -> None:
    given = [o for o in ("collect_max", "collect_min_free") if getattr(args, o, None) is not None]
    if args.collect is None and given:
        raise RuntimeInputError(
            f"--{given[0].replace('_', '-')} applies to --collect DIR, which is not given"
        )
    if args.collect is not None and any(ord(c) < 32 or ord(c) == 127 for c in str(args.collect)):
        raise RuntimeInputError("--collect: a folder name with control characters (a newline?) is refused")


def _sample_store(args: argparse.Namespace, default_cap: bool = False):
    _check_collect_options(args)
    if args.collect is None:
        return None
    from mnist_edge_runtime.samples import SampleStore

    if default_cap:  # predict: the defaults serve uses
        return SampleStore(args.collect)
    most = DEFAULT_MAX_SAMPLES if args.collect_max is None else args.collect_max
    floor_mib = DEFAULT_MIN_FREE_BYTES // 2**20 if args.collect_min_free is None else args.collect_min_free
    return SampleStore(args.collect, most, floor_mib * 2**20)


# --- samples ------------------------------------------------------------------------------------


def cmd_samples(args: argparse.Namespace) -> int:
    from mnist_edge_runtime.samples import LABELS, export_samples, read_samples

    samples = read_samples(args.folder)
    for why in samples.skipped:  # an unreadable sample does not block the others: said, and left as it is
        sys.stderr.write(f"skipped {why}\n")
    summary = samples.summary()
    if args.export is not None:
        export_samples(samples, args.export)
        summary["exported_to"] = str(args.export)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{samples.source}: {len(samples):,} samples (sha256 {summary['sha256'][:16]}...)")
    print("label          samples  model right    when wrong, it answered")
    for label in LABELS:
        row = summary["labels"].get(label)
        if row:
            name = "n (no digit)" if label == "n" else label
            wrong = ", ".join(f"{answer} x{count}" for answer, count in row["wrong_answers"].items())
            print(
                f"{name:<13}  {row['samples']:>7,}  {row['model_right']:>7,} ({row['model_right'] / row['samples']:>4.0%})"
                f"  {wrong}"
            )
    print(
        f"{'all':<13}  {len(samples):>7,}  {summary['model_right']:>7,} ({summary['model_right'] / len(samples):.0%})"
    )
    if args.export is not None:
        print(
            f"exported to {args.export}: copy it to the workstation, then mnist-edge train --extra-data {args.export.name}"
        )
    return 0


# --- bench --------------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    if args.compare:
        from mnist_edge_runtime.compare import compare

        if args.model is not None:
            raise RuntimeInputError(
                "--compare times the int8 and float32 files of --bundle; leave out --model-file"
            )
        return compare(args.bundle, args.backend, args.threads or 1, args.rounds, args.repeat)
    started = time.perf_counter()
    classifier = Classifier.open(_model_paths(args)[0], args.backend, args.threads)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(256, 28, 28), dtype=np.uint8)
    classifier.scores(images[:1])
    first = time.perf_counter() - started

    single = []
    for i in range(args.repeat):
        t = time.perf_counter()
        classifier.scores(images[i % 256 : i % 256 + 1])
        single.append(time.perf_counter() - t)
    classifier.scores(images)  # warm the batch-256 tensors
    t = time.perf_counter()
    for _ in range(5):
        classifier.scores(images)
    batch_rate = 5 * 256 / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(256):
        classifier.scores(images[i : i + 1])
    single_rate = 256 / (time.perf_counter() - t)
    result = {
        "model": str(classifier.path),
        "backend": classifier.backend,
        "threads": args.threads,
        "open_and_first_prediction_ms": round(first * 1000, 2),
        "single_image_p50_ms": round(float(np.percentile(single, 50)) * 1000, 4),
        "single_image_p99_ms": round(float(np.percentile(single, 99)) * 1000, 4),
        "batch256_images_per_s": round(batch_rate, 1),
        "single_calls_images_per_s": round(single_rate, 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "machine": describe_machine(),  # int8 speed depends on the CPU's instruction set
    }
    print(json.dumps(result, indent=2))
    return 0


def _peak_rss_mib() -> float:
    # Linux: VmHWM is this process's own peak (ru_maxrss may carry the parent's over an exec).
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


if __name__ == "__main__":
    main()
