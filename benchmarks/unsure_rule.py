"""The "not sure" rule of ``serve``: derived on the validation split, and what it catches.

    python benchmarks/unsure_rule.py [--bundle export]

Prints the bounds ``derive_rule`` gives on the validation split (the last 5,000 training images;
they must equal the constants in ``mnist_edge_runtime/verdict.py``) and, for each int8 model, the
share of validation digits called unsure (right and wrong answers apart), and of pictures that
are not digits: uniform noise, scattered specks, a single dot.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from mnist_edge_runtime.classifier import Classifier
from mnist_edge_runtime.idx import read_images_and_labels
from mnist_edge_runtime.verdict import derive_rule, unsure_reason

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO / "mnist_edge" / "datasets" / "mnist"


def not_digits(count: int = 1000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    dots = np.zeros((count, 28, 28), np.uint8)
    dots[:, 12:15, 12:15] = 255
    return {
        "uniform noise": rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
        "scattered specks (15% of pixels)": ((rng.random((count, 28, 28)) < 0.15) * 255).astype(np.uint8),
        "a single 3x3 dot": dots,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "export")
    args = parser.parse_args()
    images, labels = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    images, labels = images[-5000:], labels[-5000:]
    models = {name: Classifier.open(args.bundle / f"{name}.int8.tflite") for name in ("conv2d", "flat")}
    scores = {name: c.scores(images) for name, c in models.items()}
    print("rule from the validation split:", derive_rule(images, labels, list(scores.values())))
    for name, classifier in models.items():
        right = scores[name].argmax(axis=1) == labels
        unsure = np.array(
            [unsure_reason(x, s.max()) is not None for x, s in zip(images, scores[name], strict=True)]
        )
        print(
            f"{name}.int8: unsure on {np.mean(unsure & right):.2%} of validation digits it gets right, "
            f"on {np.sum(unsure & ~right)} of the {np.sum(~right)} it gets wrong"
        )
        for kind, pictures in not_digits().items():
            picture_scores = classifier.scores(pictures)
            caught = np.mean(
                [unsure_reason(x, s.max()) is not None for x, s in zip(pictures, picture_scores, strict=True)]
            )
            print(f"  {kind}: unsure on {caught:.1%}")


if __name__ == "__main__":
    main()
