"""Side-by-side speed, memory and cost measurements of every way to run the two models.

    python benchmarks/run.py [--bundle export] [--runs runs] [--tflite-python PATH] [--out benchmarks/results]

All on this machine, in one run, one thread each, with warm-up and medians:
Keras (eager call and predict), TFLite float32 / dynamic-range / int8 on
ai-edge-litert and (with ``--tflite-python``, a Python whose environment has
tflite-runtime 2.14) on tflite-runtime, ONNX float32 / int8 on onnxruntime;
single images and batches of 256. Then the runtime's cold start and peak
memory against TensorFlow's, the runtime wrapper's cost over a bare
interpreter call, each model's multiply-accumulates per image, and the
training time to reach the original project's accuracy (from the run records).
Writes ``results.json`` and ``results.md``; docs/speed.md includes the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from mnist_edge_runtime.machine import describe_machine  # noqa: E402
from script_parser import script_parser  # noqa: E402

BATCH = 256
ORIGINAL = {"conv2d": 0.9932, "flat": 0.9746}


def median_seconds(call, repeat: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_runner(scores, images: np.ndarray, repeat: int) -> dict:
    """One image and a batch of 256 through ``scores(images) -> array``."""
    single = median_seconds(lambda: scores(images[:1]), repeat)
    batch = median_seconds(lambda: scores(images[:BATCH]), max(5, repeat // 20), warmup=2)
    return {"single_ms": single * 1000, "batch256_ms": batch * 1000, "batch256_images_per_s": BATCH / batch}


# --- runtime models (litert / tflite-runtime / onnxruntime) -------------------------------------------


def bench_runtime_models(
    paths: list[Path], images: np.ndarray, backend: str | None, repeat: int
) -> list[dict]:
    from mnist_edge_runtime.backends import open_model
    from mnist_edge_runtime.errors import RuntimeInputError

    rows = []
    for path in paths:
        if backend == "onnxruntime" and path.suffix != ".onnx":
            continue
        if backend != "onnxruntime" and path.suffix != ".tflite":
            continue
        try:
            model = open_model(path, None if backend == "onnxruntime" else backend, threads=1)
        except RuntimeInputError as exc:  # e.g. an op version this interpreter predates
            rows.append({"artifact": path.name, "backend": backend, "error": str(exc).split("(", 1)[-1]})
            continue
        rows.append(
            {"artifact": path.name, "backend": model.backend, **time_runner(model.scores, images, repeat)}
        )
    return rows


def worker_main(args: argparse.Namespace) -> None:
    """Run inside another environment (tflite-runtime + numpy < 2); prints JSON rows."""
    from mnist_edge_runtime.idx import IMAGES_MAGIC, read_idx

    images = read_idx(args.images, IMAGES_MAGIC)
    paths = [Path(p) for p in args.paths]
    print(json.dumps(bench_runtime_models(paths, images, args.worker, args.repeat)))


# --- Keras ------------------------------------------------------------------------------------------------


def bench_keras(runs: Path, images: np.ndarray, repeat: int) -> tuple[list[dict], dict]:
    from mnist_edge.models import load_model, model_input

    rows, macs = [], {}
    for name in ("conv2d", "flat"):
        path = runs / name / "model.keras"
        if not path.exists():
            continue
        model = load_model(str(path))
        macs[name] = count_macs(model)
        eager = time_runner(
            lambda x, m=model, n=name: m(model_input(n, x), training=False).numpy(), images, repeat
        )
        rows.append({"artifact": f"{name} (Keras float)", "backend": "keras eager call", **eager})
        predict = time_runner(
            lambda x, m=model, n=name: m.predict(model_input(n, x), batch_size=BATCH, verbose=0),
            images,
            repeat // 4,
        )
        rows.append({"artifact": f"{name} (Keras float)", "backend": "keras predict", **predict})
    return rows, macs


def count_macs(model) -> int:
    """Multiply-accumulates per image of the convolutions and dense layers."""
    total = 0
    for layer in model.layers:
        kind = layer.__class__.__name__
        if kind == "Conv2D":
            _, h, w, c_out = layer.output.shape
            k_h, k_w, c_in, _ = layer.kernel.shape
            total += h * w * c_out * k_h * k_w * c_in
        elif kind == "Dense":
            total += int(layer.kernel.shape[0] * layer.kernel.shape[1])
    return int(total)


def dynamic_range_models(runs: Path, folder: Path) -> list[Path]:
    """The dynamic-range TFLite models are not in the committed bundle: convert them here."""
    from mnist_edge.converters import ExportJob, export_tflite_dynamic
    from mnist_edge.models import load_model

    paths = []
    for name in ("conv2d", "flat"):
        source = runs / name / "model.keras"
        if source.exists():
            job = ExportJob(name, load_model(str(source)), {}, None, 0, lambda: None)
            paths.append(folder / f"{name}.dynamic.tflite")
            paths[-1].write_bytes(export_tflite_dynamic(job))
    return paths


# --- start-up, memory, wrapper cost ---------------------------------------------------------------------


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec,
# so a child of this (TensorFlow-sized) process would report the parent's peak.
_RSS = "print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM')) / 1024)"


def child_seconds_and_rss(code: str, python: str = sys.executable, runs: int = 3) -> dict:
    seconds, rss = [], []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([python, "-c", f"{code}\n{_RSS}"], capture_output=True, text=True, check=True)
        seconds.append(time.perf_counter() - start)
        rss.append(float(done.stdout.strip().splitlines()[-1]))
    return {"seconds": statistics.median(seconds), "peak_rss_mib": statistics.median(rss)}


def bench_startup(bundle: Path) -> dict:
    model = bundle / "conv2d.int8.tflite"
    runtime = child_seconds_and_rss(
        "import numpy as np\nfrom mnist_edge_runtime.classifier import Classifier\n"
        f"Classifier.open({str(model)!r}).predict(np.zeros((28, 28), np.uint8))"
    )
    tensorflow = child_seconds_and_rss(
        "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport tensorflow"
    )
    return {"runtime_open_and_first_prediction": runtime, "import_tensorflow": tensorflow}


def bench_wrapper_overhead(bundle: Path, images: np.ndarray, repeat: int) -> dict:
    from mnist_edge_runtime.classifier import Classifier

    classifier = Classifier.open(bundle / "conv2d.int8.tflite", threads=1)
    interpreter = classifier.model.interpreter
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    x = images[:1].reshape(1, 28, 28, 1)
    classifier.scores(images[:1])  # size the tensors for one image

    def raw() -> np.ndarray:
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])

    raw_s = median_seconds(raw, repeat * 5)
    wrapped_s = median_seconds(lambda: classifier.scores(images[:1]), repeat * 5)
    singles = median_seconds(lambda: [classifier.scores(images[i : i + 1]) for i in range(BATCH)], 5, 1)
    batch = median_seconds(lambda: classifier.scores(images[:BATCH]), 5, 1)
    return {
        "raw_invoke_us": raw_s * 1e6,
        "classifier_scores_us": wrapped_s * 1e6,
        "wrapper_overhead": wrapped_s / raw_s - 1,
        "batch256_vs_256_single_calls_speedup": singles / batch,
    }


def training_to_original(runs: Path) -> dict:
    result = {}
    for name in ("conv2d", "flat"):
        record_path = runs / name / "run.json"
        if not record_path.exists():
            continue
        history = json.loads(record_path.read_text())["history"]
        elapsed = 0.0
        for epoch in history:
            elapsed += epoch["seconds"]
            if epoch["val_accuracy"] >= ORIGINAL[name]:
                result[name] = {"epoch": epoch["epoch"], "seconds": round(elapsed, 1), "original_epochs": 100}
                break
    return result


# --- tables ---------------------------------------------------------------------------------------------


def load_failure(error: str) -> str:
    """An interpreter's load error in a few whole words for a table cell (the JSON keeps it all)."""
    import re

    unknown_op = re.search(r"opcode '(\w+)' version '(\d+)'", error)
    if unknown_op:
        return f"its {unknown_op[1]} version {unknown_op[2]} is newer than this interpreter"
    return error.split(". ")[0].rstrip(".")


def markdown(results: dict) -> str:
    cpu = results["cpu"]
    lines = [
        f"CPU: **{cpu['model']}** ({cpu['machine']}; int8-relevant features: {' '.join(cpu['features']) or 'none'}).",
        f"Machine: {results['machine']}. One thread everywhere; medians after warm-up.",
        "",
        "| artifact | runs on | 1 image (ms) | batch of 256 (ms) | images/s (batch) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results["inference"]:
        if "error" in r:
            lines.append(
                f"| {r['artifact']} | {r['backend']} | does not load: {load_failure(r['error'])} | | |"
            )
            continue
        lines.append(
            f"| {r['artifact']} | {r['backend']} | {r['single_ms']:.3f} | {r['batch256_ms']:.1f} | "
            f"{r['batch256_images_per_s']:,.0f} |"
        )
    s = results["startup"]
    rt, tf = s["runtime_open_and_first_prediction"], s["import_tensorflow"]
    w = results["wrapper"]
    lines += [
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| runtime cold start (import, open int8 conv2d, first prediction) | {rt['seconds']:.2f} s "
        f"= {rt['seconds'] / tf['seconds']:.2f}x of `import tensorflow` ({tf['seconds']:.2f} s) |",
        f"| runtime peak memory | {rt['peak_rss_mib']:.0f} MiB = {rt['peak_rss_mib'] / tf['peak_rss_mib']:.2f}x "
        f"of a process that imports TensorFlow ({tf['peak_rss_mib']:.0f} MiB) |",
        f"| runtime wrapper over a bare interpreter call (1 image) | {w['classifier_scores_us']:.1f} µs vs "
        f"{w['raw_invoke_us']:.1f} µs: +{w['wrapper_overhead']:.0%} |",
        f"| one batch of 256 against 256 single calls | {w['batch256_vs_256_single_calls_speedup']:.1f}x faster |",
    ]
    for name, macs in results["macs_per_image"].items():
        int8 = next(
            (
                r
                for r in results["inference"]
                if r["artifact"] == f"{name}.int8.tflite" and r["backend"] == "litert"
            ),
            None,
        )
        if int8:
            rate = macs / (int8["single_ms"] / 1000)
            batch_rate = macs * int8["batch256_images_per_s"]
            lines.append(
                f"| {name}: {macs:,} MACs per image | int8 on LiteRT: {rate / 1e9:.2f} GMAC/s for one image, "
                f"{batch_rate / 1e9:.2f} GMAC/s in batches of 256 |"
            )
    for name, t in results["training_to_original"].items():
        lines.append(
            f"| {name}: training until validation accuracy first reaches the original's "
            f"{ORIGINAL[name]:.2%} | epoch {t['epoch']}, {t['seconds']:.0f} s (the original trained 100 epochs) |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--bundle", type=Path, default=Path("export"))
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument(
        "--tflite-python", help="a Python with tflite-runtime 2.14 and mnist-edge-runtime installed"
    )
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--images", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return

    import tensorflow as tf

    # One thread for Keras too, set before TensorFlow does any work.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from mnist_edge.data import BUNDLED_DIR, load_mnist

    images = load_mnist().test.images
    artifacts = sorted(p for p in args.bundle.iterdir() if p.suffix in (".tflite", ".onnx"))
    with tempfile.TemporaryDirectory() as tmp:
        tflite_models = sorted(artifacts + dynamic_range_models(args.runs, Path(tmp)))
        tflite_models = [p for p in tflite_models if p.suffix == ".tflite"]
        inference, macs = bench_keras(args.runs, images, args.repeat)
        inference += bench_runtime_models(tflite_models, images, "litert", args.repeat)
        if args.tflite_python:
            done = subprocess.run(
                [args.tflite_python, __file__, "--worker", "tflite-runtime", "--repeat", str(args.repeat),
                 "--images", str(BUNDLED_DIR / "t10k-images-idx3-ubyte.gz"), *map(str, tflite_models)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            inference += json.loads(done.stdout.strip().splitlines()[-1])
        inference += bench_runtime_models(artifacts, images, "onnxruntime", args.repeat)
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}, "
        f"Python {platform.python_version()}",
        # int8 speed depends on the instruction set (VNNI / dot-product): every figure names its CPU.
        "cpu": describe_machine()["cpu"],
        "inference": inference,
        "startup": bench_startup(args.bundle),
        "wrapper": bench_wrapper_overhead(args.bundle, images, args.repeat),
        "macs_per_image": macs,
        "training_to_original": training_to_original(args.runs),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
