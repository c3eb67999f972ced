"""How well photos of digits survive preprocessing: accuracy of the int8 conv2d model on synthetic photos.

    python benchmarks/preprocess_quality.py [--model export/conv2d.int8.tflite] [-n 500]

The digits are the validation split of the training set (the last 5,000 training images), drawn
as photos: dark ink on uneven paper at random sizes and positions, and with a fine pen on ruled
paper with specks. Real photographs are not available here; these are stand-ins, and the figure
for the same digits as plain MNIST arrays is printed beside them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runtime" / "tests"))

from baseline import BASELINE_REV, load_baseline_preprocess  # noqa: E402
from mnist_edge_runtime.classifier import Classifier  # noqa: E402
from mnist_edge_runtime.idx import read_images_and_labels  # noqa: E402
from mnist_edge_runtime.preprocess import as_mnist_batch  # noqa: E402
from script_parser import script_parser  # noqa: E402
from synthetic import fine_pen_on_ruled_paper, paper_photo  # noqa: E402


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--model", type=Path, default=REPO / "export" / "conv2d.int8.tflite")
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument(
        "--baseline", default=BASELINE_REV, help="Git revision whose preprocessing to compare."
    )
    parser.add_argument(
        "--baseline-file", type=Path, help="That preprocess.py as a file (no git history here)."
    )
    args = parser.parse_args()
    baseline = load_baseline_preprocess(args.baseline, args.baseline_file)
    mnist = REPO / "mnist_edge" / "datasets" / "mnist"
    images, labels = read_images_and_labels(
        mnist / "train-images-idx3-ubyte.gz", mnist / "train-labels-idx1-ubyte.gz"
    )
    images, labels = images[-5000:][: args.n], labels[-5000:][: args.n]
    classifier = Classifier.open(args.model)
    rng = np.random.default_rng(0)

    def photo(i: int) -> np.ndarray:
        h, w = int(rng.integers(60, 300)), int(rng.integers(60, 300))
        side = int(rng.integers(40, min(h, w) + 1))
        box = (int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1)), side, side)
        return paper_photo(images[i], (h, w), box, seed=i)

    conditions = {
        "MNIST arrays (no preprocessing)": lambda i: images[i],
        "photo: dark ink on uneven paper, any size and position": photo,
        "photo: fine pen on ruled paper with specks": lambda i: fine_pen_on_ruled_paper(images[i], seed=i),
    }
    print(f"{args.model.name}, {len(labels)} validation digits; accuracy now / at {args.baseline}")
    for name, make in conditions.items():
        pictures = [make(i) for i in range(len(labels))]
        now = np.concatenate([as_mnist_batch(p)[0] for p in pictures])
        before = np.concatenate([baseline.as_mnist_batch(p)[0] for p in pictures])
        accuracy_now = np.mean(classifier.scores(now).argmax(axis=1) == labels)
        accuracy_before = np.mean(classifier.scores(before).argmax(axis=1) == labels)
        same = np.mean(np.all(now == before, axis=(1, 2)))
        print(f"  {name}: {accuracy_now:.1%} / {accuracy_before:.1%} ({same:.1%} of 28x28 images identical)")


if __name__ == "__main__":
    main()
