"""True answers on every picture people give: validation digits in every input form, and non-digits.

    python benchmarks/input_forms.py [-n 500] [--model export/conv2d.int8.tflite] [--derive] [--baseline REV]

Each MNIST validation digit (the last 5,000 training images; never the test set) is saved in
each form of ``runtime/tests/forms.py`` (28x28 files of either polarity, colour, RGBA canvas
export, JPEG, BMP, PGM, 1-bit, 16-bit; drawings on the page's 280x280 canvas, small or touching
its edges; photos on uneven and ruled paper) and read back as a file would be. Per form: accuracy,
confident-wrong answers (wrong at confidence >= 0.9, and how many of those the rule still calls
sure), and the share of right and of wrong answers the "not sure" rule doubts. Non-digits (letters,
shapes, noise, blank paper): the share doubted. Writes ``benchmarks/results/input_forms.json``
(and the table docs/input-forms.md shows, ``input_forms.md``). ``--derive`` also prints the rule's bounds as
``verdict.derive_rule`` computes them from these forms and both int8 models. ``--baseline REV``
adds the accuracy of the preprocessing at that git revision on the same pictures (a picture it
finds blank counts as wrong).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runtime" / "tests"))

from baseline import load_baseline_preprocess  # noqa: E402
from forms import DIGIT_FORMS, NOT_DIGITS, digit_form_row, mnist_forms, not_digit_row  # noqa: E402
from mnist_edge_runtime.classifier import Classifier  # noqa: E402
from mnist_edge_runtime.errors import NoDigitError  # noqa: E402
from mnist_edge_runtime.idx import read_images_and_labels  # noqa: E402
from mnist_edge_runtime.machine import describe_machine, one_line  # noqa: E402
from mnist_edge_runtime.verdict import derive_rule  # noqa: E402

MNIST = REPO / "mnist_edge" / "datasets" / "mnist"


def validation_digits(count: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    return images[-5000:][:count], labels[-5000:][:count]


def baseline_accuracy(before, classifier: Classifier, make, digits: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy with an earlier preprocessing module (decoding included) on the same files."""
    right = 0
    for i, (digit, label) in enumerate(zip(digits, labels, strict=True)):
        try:
            image = before.to_mnist(before.load_image_bytes(make(digit, i)), "picture")
        except NoDigitError:
            continue
        right += int(classifier.scores(image[None]).argmax() == label)
    return right / len(labels)


def markdown(result: dict) -> str:
    before = [k for k in next(iter(result["digit_forms"].values())) if k.startswith("accuracy_at_")]
    lines = [
        "| form | accuracy | wrong at >= 0.9 (still sure) | right answers doubted | wrong answers doubted |"
        + "".join(f" {k.replace('accuracy_at_', 'accuracy at ')} |" for k in before),
        "|---|---:|---:|---:|---:|" + "---:|" * len(before),
    ]
    for name, r in result["digit_forms"].items():
        lines.append(
            f"| {name} | {r['accuracy']:.1%} | {r['confident_wrong']} ({r['confident_wrong_sure']}) "
            f"| {r['doubted_right']:.1%} | {r['doubted_wrong']:.0%} |"
            + "".join(f" {r[k]:.1%} |" for k in before)
        )
    lines += ["", "| not a digit | pictures | doubted | reasons |", "|---|---:|---:|---|"]
    for name, r in result["not_digits"].items():
        reasons = ", ".join(f"{k if k != 'None' else 'sure'} {v}" for k, v in r["reasons"].items())
        lines.append(f"| {name} | {r['pictures']} | {r['doubted']:.1%} | {reasons} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="validation digits per form (default 500)")
    parser.add_argument("--model", type=Path, default=REPO / "export" / "conv2d.int8.tflite")
    parser.add_argument("--derive", action="store_true", help="also print the rule's bounds from these forms")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "input_forms.json")
    parser.add_argument("--baseline", metavar="REV", help="also the accuracy of the preprocessing at REV")
    args = parser.parse_args()
    before = load_baseline_preprocess(args.baseline) if args.baseline else None
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
    for name, make in DIGIT_FORMS.items():
        forms[name] = mnist_forms(make, digits, range(len(labels)))
        result["digit_forms"][name] = digit_form_row(classifier, forms[name], labels)
        if before is not None:
            accuracy = baseline_accuracy(before, classifier, make, digits, labels)
            result["digit_forms"][name][f"accuracy_at_{args.baseline}"] = accuracy
        print(f"  {name}: {result['digit_forms'][name]['accuracy']:.1%}", file=sys.stderr, flush=True)
    for name, make in NOT_DIGITS.items():
        result["not_digits"][name] = not_digit_row(classifier, mnist_forms(make, range(len(labels))))
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
