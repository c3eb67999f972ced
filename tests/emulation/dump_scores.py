"""Write the scores of int8 models on the first N test images, as this (possibly emulated) CPU computes them.

    python dump_scores.py OUT.npz BACKEND N MODEL [MODEL ...]

Run by cpu_matrix.py under each emulated CPU; imports only the runtime, so it runs in any environment
that has mnist-edge-runtime and one interpreter. BACKEND tflite-micro (the microcontroller C
sources) needs the toolchain's environment instead.
"""

import json
import sys
from pathlib import Path

import numpy as np
from mnist_edge_runtime.backends import apply_activation, pixels_to_input
from mnist_edge_runtime.classifier import Classifier
from mnist_edge_runtime.idx import read_images_and_labels
from mnist_edge_runtime.machine import interpreter_versions

MNIST = Path(__file__).resolve().parents[2] / "mnist_edge" / "datasets" / "mnist"


def main(out: str, backend: str, limit: str, *models: str) -> None:
    images, _ = read_images_and_labels(
        MNIST / "t10k-images-idx3-ubyte.gz", MNIST / "t10k-labels-idx1-ubyte.gz"
    )
    images = images[: int(limit)]
    arrays = {}
    if backend == "tflite-micro":  # the microcontroller C sources; tflite-micro is x86_64-only
        arrays = micro_arrays(images, models)
        models = ()
    for model in models:
        chosen = backend if model.endswith(".tflite") else None  # .onnx always runs on onnxruntime
        classifier = Classifier.open(model, chosen, threads=1)
        arrays[Path(model).name] = classifier.scores(images)
        # The interpreter's own output (int8 or float logits), before the runtime's activation.
        raw_input = pixels_to_input(images, classifier.model.input)
        arrays[f"raw:{Path(model).name}"] = np.concatenate(
            [classifier.model.run(raw_input[i : i + 256]) for i in range(0, len(images), 256)]
        )
    np.savez(out, versions=json.dumps(interpreter_versions()), **arrays)


def micro_arrays(images: np.ndarray, models: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Scores and logits of ``.tflm.c`` files through tflite-micro, with the arena their manifest gives."""
    from mnist_edge import tflm  # the toolchain's: only its environment has tflite-micro

    arrays = {}
    for model in models:
        path = Path(model)
        entry = json.loads((path.parent / "manifest.json").read_text())["artifacts"][path.name]
        flatbuffer = tflm.bytes_of_c_source(path.read_text())
        arena, activation = entry["tflm"]["arena_bytes"], entry["output"]["activation"]
        logits = tflm.micro_scores(flatbuffer, images, arena, None)
        arrays[f"raw:{path.name}"], arrays[path.name] = logits, apply_activation(logits, activation)
    return arrays


if __name__ == "__main__":
    main(*sys.argv[1:])
