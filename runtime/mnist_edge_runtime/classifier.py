"""``Classifier``: open a bundle's model safely, classify images, say how sure it is."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mnist_edge_runtime.backends import OnnxModel, TFLiteModel, open_model, predict_scores, read_model_file
from mnist_edge_runtime.bundle import MANIFEST, check_model_file
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.preprocess import as_mnist_batch
from mnist_edge_runtime.verdict import BLANK, doubt


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one picture, and whether to trust it.

    ``sure`` is False and ``doubt`` says why ("blank", "not like a digit", "two digits?",
    "low confidence", "ambiguous": ``verdict.doubt``) when the answer should not be taken as
    read. A blank picture has no digit: ``digit`` and ``runner_up`` are None and ``scores`` is
    empty.
    """

    digit: int | None
    confidence: float
    runner_up: int | None
    runner_up_confidence: float
    scores: tuple[float, ...]
    sure: bool = True
    doubt: str | None = None

    def as_dict(self) -> dict:
        return {
            "digit": self.digit,
            "confidence": round(self.confidence, 6),
            "runner_up": self.runner_up,
            "runner_up_confidence": round(self.runner_up_confidence, 6),
            "scores": [round(s, 6) for s in self.scores],
            "sure": self.sure,
            "doubt": self.doubt,
        }


def output_activation(file_says: dict | None, manifest_entry: dict | None) -> str | None:
    """The activation that turns the model's outputs into scores: the file's own word, else the manifest's.

    Where both speak they must agree; a disagreement means a damaged or mismatched manifest.
    """
    output = (manifest_entry or {}).get("output")
    manifest_says = output.get("activation") if isinstance(output, dict) else None
    if file_says is None:
        return manifest_says
    activation = file_says.get("activation") if file_says["outputs"] == "logits" else None
    if manifest_entry is not None and manifest_says != activation:
        raise RuntimeInputError(
            f"the manifest says output activation {manifest_says!r}, the model file says {activation!r}"
        )
    return activation


def format_confidence(value: float, digits: int = 4) -> str:
    """0.9961, or 1.2e-06 for the tiny scores a runner-up often has."""
    return f"{value:.{digits}f}" if value >= 10**-digits or value == 0 else f"{value:.1e}"


def predictions_from_scores(
    scores: np.ndarray, images: np.ndarray | None = None, probabilities: bool = True
) -> list[Prediction]:
    """Best and second-best digit per row (the original's 'second best' column), judged by
    ``verdict.doubt`` on the MNIST-form ``images`` the scores came from, when given. The bounds
    on the best and second-best scores apply to ``probabilities`` only: a foreign model's raw
    outputs (``Classifier.output_known`` False) are judged by the picture alone."""
    order = np.argsort(-scores, axis=1, kind="stable")
    results = []
    for i, (s, o) in enumerate(zip(scores, order)):
        best, second = (float(s[o[0]]), float(s[o[1]])) if probabilities else (1.0, 0.0)
        why = None if images is None else doubt(images[i], best, second)
        if why == BLANK:
            results.append(Prediction(None, 0.0, None, 0.0, (), sure=False, doubt=BLANK))
            continue
        best = Prediction(int(o[0]), float(s[o[0]]), int(o[1]), float(s[o[1]]), tuple(float(v) for v in s))
        results.append(replace(best, sure=why is None, doubt=why))
    return results


class Classifier:
    """A checked model on a backend. ``Classifier.open(path)`` verifies the file before loading it:
    against its manifest entry when a manifest lies beside it, and against the digest the file
    carries (every file mnist-edge exports has one), so a damaged copy is refused, never answered.

    Scores are probabilities in [0, 1] whenever the model file (mnist-edge writes this into every
    model) or its manifest says what its outputs are; ``output_known`` is False for a foreign
    model that says nothing, whose scores are then its raw outputs. One ``Classifier`` may be
    shared by threads: calls take turns on its interpreter and give single-threaded results.
    """

    def __init__(self, path: Path, model: TFLiteModel | OnnxModel, manifest_entry: dict | None):
        self.path = path
        self.model = model
        self.manifest_entry = manifest_entry
        self.output_known = model.output_metadata is not None or manifest_entry is not None

    @classmethod
    def open(cls, path: str | Path, backend: str | None = None, threads: int | None = None) -> Classifier:
        path = Path(path)
        if path.is_file() and not (path.parent / MANIFEST).exists():
            # Before check_model_file's trial load: a damaged file is refused without being run.
            # With a manifest, its SHA-256 is checked first and open_model checks the digest.
            read_model_file(path)
        entry = check_model_file(path, backend)
        model = open_model(path, backend, threads)
        model.activation = output_activation(model.output_metadata, entry)
        return cls(path, model, entry)

    @property
    def backend(self) -> str:
        return self.model.backend

    def scores(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Scores (N, 10) for MNIST-form uint8 images (N, 28, 28); one invoke per batch."""
        return predict_scores(self.model, images, batch_size)

    def predict(self, inputs: object, batch_size: int = 256) -> list[Prediction]:
        """Classify image files, 2-D arrays of any size, or an (N, 28, 28) uint8 MNIST batch."""
        images, _ = as_mnist_batch(inputs)
        return predictions_from_scores(self.scores(images, batch_size), images, self.output_known)
