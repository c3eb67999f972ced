"""Write the sample pictures of ``runtime/examples/``: three MNIST validation digits (the last
5,000 training images, never the test set) as a person would hand them over.

    python runtime/examples/make.py    # needs numpy and Pillow (a plain runtime install has both)

* ``drawing-7.png``: the first validation 7, drawn dark on the page's white 280x280 canvas;
* ``photo-2.jpg``: the first validation 2, photographed on unevenly lit paper (JPEG);
* ``ruled-paper-4.jpg``: the first validation 4, written with a fine pen on ruled paper (JPEG).

The file names carry the digit each picture shows, so what ``predict`` answers can be checked.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO / "runtime"), str(REPO / "runtime" / "tests")]

from forms import encode, on_canvas  # noqa: E402
from synthetic import fine_pen_on_ruled_paper, paper_photo  # noqa: E402

from mnist_edge_runtime.idx import read_images_and_labels  # noqa: E402

MNIST = REPO / "mnist_edge" / "datasets" / "mnist"
PICTURES = {
    "drawing-7.png": (7, lambda digit: encode(on_canvas(digit, 40))),
    "photo-2.jpg": (
        2,
        lambda digit: encode(paper_photo(digit, (160, 200), (20, 50, 120, 120), seed=2), "JPEG", quality=85),
    ),
    "ruled-paper-4.jpg": (
        4,
        lambda digit: encode(fine_pen_on_ruled_paper(digit, seed=4), "JPEG", quality=85),
    ),
}


def main() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from script_parser import OneLineParser  # one-line errors, as the benchmarks give

    OneLineParser(
        description=" ".join(__doc__.split("\n\n")[0].split()).replace("`", "")
        + " Writes drawing-7.png, photo-2.jpg and ruled-paper-4.jpg beside this script."
    ).parse_args()
    images, labels = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    validation, validation_labels = images[-5000:], labels[-5000:]
    for name, (digit, make) in PICTURES.items():
        first = int((validation_labels == digit).argmax())
        (HERE / name).write_bytes(make(validation[first]))
        print(f"{name}: validation image {first} (training image {len(images) - 5000 + first}), a {digit}")


if __name__ == "__main__":
    main()
