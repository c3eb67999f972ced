"""True answers on every picture people give: validation digits in every input form, and non-digits.

    python benchmarks/input_forms.py [-n 500] [--model export/conv2d.int8.tflite] [--derive] [--baseline REV ...]

Each MNIST validation digit (the last 5,000 training images; never the test set) is saved in
each form of ``runtime/tests/forms.py`` (28x28 files of either polarity, colour, RGBA canvas
export, JPEG, BMP, PGM, 1-bit, 16-bit; drawings on the page's 280x280 canvas, small or touching
its edges; photos on uneven and ruled paper) and read back as a file would be. Per form: accuracy,
confident-wrong answers (wrong at confidence >= 0.9, and how many of those the rule still calls
sure), and the share of right and of wrong answers the "not sure" rule doubts, and the time from the file's
bytes to the 28x28 image (median over the pictures, one thread). Non-digits (letters, shapes, blots,
noise, blank paper): the share doubted, and the time. Writes ``benchmarks/results/input_forms.json``
(and the table docs/input-forms.md shows, ``input_forms.md``). ``--derive`` also prints the rule's bounds as
``verdict.derive_rule`` computes them from these forms and both int8 models. ``--baseline REV``
(repeatable) runs the preprocessing at that git revision on the same bytes, each picture read by
every version in turn (the order rotating from picture to picture): its accuracy (a picture it finds
blank counts as wrong), its time, and how many 28x28 images equal the current ones pixel for pixel.
The table shows every baseline's accuracy, and the last one's time and pixels (the JSON has all).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runtime" / "tests"))

from baseline import load_baseline_preprocess  # noqa: E402
from forms import DIGIT_FORMS, NOT_DIGITS, digit_form_row, not_digit_row  # noqa: E402
from mnist_edge_runtime import preprocess  # noqa: E402
from mnist_edge_runtime.classifier import Classifier  # noqa: E402
from mnist_edge_runtime.errors import NoDigitError  # noqa: E402
from mnist_edge_runtime.idx import read_images_and_labels  # noqa: E402
from mnist_edge_runtime.machine import describe_machine, one_line  # noqa: E402
from mnist_edge_runtime.verdict import derive_rule  # noqa: E402
from script_parser import script_parser  # noqa: E402

MNIST = REPO / "mnist_edge" / "datasets" / "mnist"


def validation_digits(count: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    return images[-5000:][:count], labels[-5000:][:count]


def read_back(module, data: bytes) -> tuple[np.ndarray | None, float]:
    """One encoded picture read as a file is, by a preprocessing module: (the 28x28 image, or None
    where it finds no digit; milliseconds)."""
    start = time.perf_counter()
    try:
        image = module.to_mnist(module.load_image_bytes(data), "picture")
    except NoDigitError:
        image = None
    return image, (time.perf_counter() - start) * 1000


def read_form(pictures: list[bytes], baselines: dict[str, object]) -> dict:
    """Every picture read back by the current preprocessing and each baseline's, in turn (the
    order rotating from picture to picture): the images, times and same-pixel counts."""
    modules = [("now", preprocess), *baselines.items()]
    reads: dict[str, list[tuple[np.ndarray | None, float]]] = {name: [] for name, _ in modules}
    for i, data in enumerate(pictures):
        for name, module in modules[i % len(modules) :] + modules[: i % len(modules)]:
            reads[name].append(read_back(module, data))
    blank = np.zeros((28, 28), np.uint8)
    now = [image for image, _ in reads["now"]]
    result = {"images": np.stack([blank if image is None else image for image in now])}
    for name, read in reads.items():
        result[name] = {
            "images": [image for image, _ in read],
            "ms": float(np.median([ms for _, ms in read])),
            "same": sum(
                (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
                for a, (b, _) in zip(now, read, strict=True)
            ),
        }
    return result


def timing(row: dict, read: dict, classifier: Classifier, labels: np.ndarray | None) -> None:
    """The form's preprocessing time, and each baseline's accuracy (digit forms), time and
    same-pixel count."""
    row["preprocess_ms"] = read["now"]["ms"]
    for rev, then in read.items():
        if rev in ("images", "now"):
            continue
        if labels is not None:
            row[f"accuracy_at_{rev}"] = baseline_accuracy(classifier, then["images"], labels)
        row[f"preprocess_ms_at_{rev}"] = then["ms"]
        row[f"same_28x28_as_{rev}"] = then["same"]


def baseline_accuracy(classifier: Classifier, images: list[np.ndarray | None], labels: np.ndarray) -> float:
    """Accuracy with an earlier preprocessing's images (a picture it found blank counts as wrong)."""
    right = 0
    for image, label in zip(images, labels, strict=True):
        if image is not None:
            right += int(classifier.scores(image[None]).argmax() == label)
    return right / len(labels)


def markdown(result: dict) -> str:
    first = next(iter(result["digit_forms"].values()))
    before = [k for k in first if k.startswith("accuracy_at_")]
    rev = result["baselines"][-1] if result.get("baselines") else None
    timed = (
        f" preprocess (ms) | at {rev} (ms) | same 28x28 as {rev} |"
        if rev is not None
        else " preprocess (ms) |"
    )
    lines = [
        "| form | accuracy | wrong at >= 0.9 (still sure) | right answers doubted | wrong answers doubted |"
        + "".join(f" {k.replace('accuracy_at_', 'accuracy at ')} |" for k in before)
        + timed,
        "|---|---:|---:|---:|---:|" + "---:|" * len(before) + "---:|" * (3 if rev is not None else 1),
    ]
    for name, r in result["digit_forms"].items():
        lines.append(
            f"| {name} | {r['accuracy']:.1%} | {r['confident_wrong']} ({r['confident_wrong_sure']}) "
            f"| {r['doubted_right']:.1%} | {r['doubted_wrong']:.0%} |"
            + "".join(f" {r[k]:.1%} |" for k in before)
            + _times(r, rev)
        )
    lines += [
        "",
        "| not a digit | pictures | doubted | reasons |" + timed,
        "|---|---:|---:|---|" + "---:|" * (3 if rev is not None else 1),
    ]
    for name, r in result["not_digits"].items():
        reasons = ", ".join(f"{k if k != 'None' else 'sure'} {v}" for k, v in r["reasons"].items())
        lines.append(f"| {name} | {r['pictures']} | {r['doubted']:.1%} | {reasons} |" + _times(r, rev))
    return "\n".join(lines)


def _times(row: dict, rev: str | None) -> str:
    if rev is None:
        return f" {row['preprocess_ms']:.2f} |"
    return (
        f" {row['preprocess_ms']:.2f} | {row[f'preprocess_ms_at_{rev}']:.2f} "
        f"| {row[f'same_28x28_as_{rev}']} of {row['pictures']} |"
    )


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("-n", type=int, default=500, help="validation digits per form (default 500)")
    parser.add_argument("--model", type=Path, default=REPO / "export" / "conv2d.int8.tflite")
    parser.add_argument("--derive", action="store_true", help="also print the rule's bounds from these forms")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "input_forms.json")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        action="append",
        default=[],
        help="also the preprocessing at REV: its accuracy, time and pixels (repeatable)",
    )
    args = parser.parse_args()
    baselines = {rev: load_baseline_preprocess(rev) for rev in args.baseline}
    digits, labels = validation_digits(args.n)
    classifier = Classifier.open(args.model)
    started = time.perf_counter()
    forms = {}
    result: dict = {
        "model": args.model.name,
        "backend": classifier.backend,
        "validation_digits_per_form": len(labels),
        "machine": describe_machine(),
        "digit_forms": {},
        "not_digits": {},
    }
    result["baselines"] = list(baselines)
    for name, make in DIGIT_FORMS.items():
        read = read_form([make(d, i) for i, d in enumerate(digits)], baselines)
        forms[name] = read["images"]
        row = result["digit_forms"][name] = digit_form_row(classifier, forms[name], labels)
        timing(row, read, classifier, labels)
        print(f"  {name}: {row['accuracy']:.1%}, {row['preprocess_ms']:.2f} ms", file=sys.stderr, flush=True)
    for name, make in NOT_DIGITS.items():
        read = read_form([make(i) for i in range(len(labels))], baselines)
        row = result["not_digits"][name] = not_digit_row(classifier, read["images"])
        timing(row, read, classifier, None)
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for path, text in (
        (args.out, json.dumps(result, indent=2) + "\n"),
        (args.out.with_suffix(".md"), markdown(result) + "\n"),
    ):
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text)
        partial.replace(path)
    print(f"{args.model.name} ({classifier.backend}), {len(labels)} validation digits per form")
    print(f"machine: {one_line(result['machine'])}\n")
    print(markdown(result))
    if args.derive:
        models = [Classifier.open(args.model.parent / f"{m}.int8.tflite") for m in ("conv2d", "flat")]
        scores = {name: [m.scores(images) for m in models] for name, images in forms.items()}
        print("\nrule from these forms:", derive_rule(forms, labels, scores))


if __name__ == "__main__":
    main()
