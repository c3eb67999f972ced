"""What a user waits for: file (or array) to digit, preprocessing and interpreter timed separately.

    python benchmarks/end_to_end.py [--model export/conv2d.int8.tflite] [--repeat 50] [--out benchmarks/results]

Four inputs, made here from validation digits (the last 5,000 training images): a 280x280 canvas
drawing saved as PNG (thick black strokes on white, as a drawing page sends it), a 28x28 MNIST
array, a 640x480 phone-style photo of a digit on paper (JPEG) and a 4000x3000 one (JPEG). Each is
timed from the file (or array) to MNIST form (`load + preprocess`), then the interpreter alone on
that 28x28 image, one thread, median and p99 over ``--repeat`` runs after a warm-up. Writes
``end_to_end.{json,md}`` headed by the CPU it ran on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runtime" / "tests"))

from baseline import BASELINE_REV, load_baseline_preprocess  # noqa: E402
from mnist_edge_runtime.classifier import Classifier  # noqa: E402
from mnist_edge_runtime.idx import read_images_and_labels  # noqa: E402
from mnist_edge_runtime.machine import describe_machine  # noqa: E402
from mnist_edge_runtime.preprocess import as_mnist_batch  # noqa: E402
from synthetic import paper_photo  # noqa: E402

MNIST = REPO / "mnist_edge" / "datasets" / "mnist"


def make_inputs(digit: np.ndarray, folder: Path) -> dict[str, object]:
    from PIL import Image

    canvas = 255 - np.asarray(Image.fromarray(digit).resize((280, 280), Image.BICUBIC))
    Image.fromarray(np.where(canvas < 128, 0, 255).astype(np.uint8)).save(folder / "canvas.png")
    Image.fromarray(paper_photo(digit, (480, 640), (140, 250, 200, 160), seed=1)).save(
        folder / "phone.jpg", quality=90
    )
    Image.fromarray(paper_photo(digit, (3000, 4000), (900, 1600, 1200, 900), seed=2)).save(
        folder / "big.jpg", quality=90
    )
    return {
        "280x280 canvas drawing (PNG)": folder / "canvas.png",
        "28x28 MNIST array": digit,
        "640x480 photo (JPEG)": folder / "phone.jpg",
        "4000x3000 photo (JPEG)": folder / "big.jpg",
    }


def timed(call, repeat: int) -> list[float]:
    call()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> dict:
    return {"median_ms": float(np.median(times) * 1000), "p99_ms": float(np.percentile(times, 99) * 1000)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "export" / "conv2d.int8.tflite")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument(
        "--baseline", default=BASELINE_REV, help="Git revision whose preprocessing to compare."
    )
    parser.add_argument(
        "--baseline-file", type=Path, help="That preprocess.py as a file (no git history here)."
    )
    args = parser.parse_args()
    baseline = load_baseline_preprocess(args.baseline, args.baseline_file)

    images, labels = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    digit, label = images[-5000], int(labels[-5000])  # the first validation digit
    classifier = Classifier.open(args.model, threads=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in make_inputs(digit, Path(tmp)).items():
            mnist_form = as_mnist_batch(source)[0]
            preprocess = timed(lambda s=source: as_mnist_batch(s), args.repeat)
            before = timed(lambda s=source: baseline.as_mnist_batch(s), args.repeat)
            same = np.array_equal(baseline.as_mnist_batch(source)[0], mnist_form)
            interpreter = timed(lambda x=mnist_form: classifier.scores(x), args.repeat * 10)
            predicted = classifier.predict(source)[0].digit
            rows.append(
                {"input": name, "preprocess": summary(preprocess), "baseline_preprocess": summary(before),
                 "same_mnist_form_as_baseline": bool(same), "interpreter": summary(interpreter),
                 "predicted": predicted, "label": label}
            )  # fmt: skip
    result = {
        "cpu": describe_machine()["cpu"],
        "model": args.model.name,
        "backend": classifier.backend,
        "baseline": args.baseline,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "end_to_end.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "end_to_end.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    cpu = result["cpu"]
    lines = [
        f"CPU: **{cpu['model']}** ({cpu['machine']}; {' '.join(cpu['features'])}). "
        f"{result['model']} on {result['backend']}, one thread; median / p99. "
        f"Baseline: the preprocessing at {result['baseline']}, timed in the same run.",
        "",
        "| input | load + preprocess (ms) | baseline (ms) | speed-up | same 28x28 as baseline "
        "| interpreter (ms) | predicted (label) |",
        "| --- | --- | --- | ---: | --- | --- | --- |",
    ]
    for r in result["rows"]:
        p, b, i = r["preprocess"], r["baseline_preprocess"], r["interpreter"]
        speedup = b["median_ms"] / max(p["median_ms"], 1e-6)
        lines.append(
            f"| {r['input']} | {p['median_ms']:.2f} / {p['p99_ms']:.2f} | {b['median_ms']:.2f} / {b['p99_ms']:.2f} "
            f"| {speedup:.1f}x | {'yes' if r['same_mnist_form_as_baseline'] else 'no'} "
            f"| {i['median_ms']:.3f} / {i['p99_ms']:.3f} | {r['predicted']} ({r['label']}) |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
