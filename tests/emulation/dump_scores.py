"""Write the scores of int8 models on the first N test images, as this (possibly emulated) CPU computes them.

    python dump_scores.py OUT.npz BACKEND N MODEL [MODEL ...]

Run by cpu_matrix.py under each emulated CPU; imports only the runtime, so it runs in any environment
that has mnist-edge-runtime and one interpreter.
"""

import json
import sys
from pathlib import Path

import numpy as np
from mnist_edge_runtime.classifier import Classifier
from mnist_edge_runtime.idx import read_images_and_labels
from mnist_edge_runtime.machine import interpreter_versions

MNIST = Path(__file__).resolve().parents[2] / "mnist_edge" / "datasets" / "mnist"


def main(out: str, backend: str, limit: str, *models: str) -> None:
    images, _ = read_images_and_labels(
        MNIST / "t10k-images-idx3-ubyte.gz", MNIST / "t10k-labels-idx1-ubyte.gz"
    )
    images = images[: int(limit)]
    scores = {}
    for model in models:
        chosen = backend if model.endswith(".tflite") else None  # .onnx always runs on onnxruntime
        scores[Path(model).name] = Classifier.open(model, chosen, threads=1).scores(images)
    np.savez(out, versions=json.dumps(interpreter_versions()), **scores)


if __name__ == "__main__":
    main(*sys.argv[1:])
