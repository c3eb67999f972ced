"""Write the 28x28 MNIST-form images preprocessing makes of validation digits in every input form.

    python dump_forms.py OUT.npz N

Run natively and under emulated CPUs (qemu-x86_64 -cpu Nehalem / Haswell) to check that
preprocessing gives the same pixels on every instruction set, so the "not sure" rule's bounds
(``verdict.derive_rule``) and the input-form floors hold on every CPU. Needs the runtime and Pillow.
"""

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "runtime" / "tests"))

from forms import DIGIT_FORMS, NOT_DIGITS, mnist_forms  # noqa: E402
from mnist_edge_runtime.idx import read_images_and_labels  # noqa: E402

MNIST = REPO / "mnist_edge" / "datasets" / "mnist"


def main(out: str, limit: str) -> None:
    images, _ = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    digits = images[-5000:][: int(limit)]
    arrays = {name: mnist_forms(make, digits, range(len(digits))) for name, make in DIGIT_FORMS.items()}
    arrays |= {name: mnist_forms(make, range(len(digits))) for name, make in NOT_DIGITS.items()}
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])
