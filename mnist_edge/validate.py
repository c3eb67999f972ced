"""Validation of an exported artifact against the model it came from, on all test images.

For every artifact it measures test accuracy, top-1 agreement with its source
model and the largest absolute difference of the ten scores, then applies the
gates of its kind (a row of ``GATES``). It runs the artifact through
``mnist_edge_runtime``, the same code a device runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from mnist_edge_runtime.backends import open_model, predict_scores
from mnist_edge_runtime.bundle import ORIGINAL_ACCURACY  # the original project's published figures

# An int8 / dynamic-range artifact may lose at most this much accuracy to its float model.
MAX_QUANTIZATION_LOSS = 0.0010
# A model fine-tuned on collected samples may lose at most this much MNIST test accuracy against
# the bundle file it replaces (mnist_edge/learn.py): one writer's hand must not cost everyone else.
MAX_LEARNING_LOSS = 0.0010
# Float artifacts must match the Keras model this closely (absolute, on scores in [0, 1]).
FLOAT_ATOL = {"tflite": 1e-4, "onnx": 1e-5}


@dataclass
class Validation:
    artifact: str
    model: str
    format: str
    precision: str
    accuracy: float
    agreement: float  # top-1 agreement with the source model
    max_abs_diff: float  # against the source model's scores
    source: str  # which model the agreement and difference are measured against
    gates: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(ok for _, ok in self.gates)

    def failures(self) -> list[str]:
        return [name for name, ok in self.gates if not ok]

    def as_dict(self) -> dict:
        return {
            "accuracy": round(self.accuracy, 6),
            "agreement": round(self.agreement, 6),
            "max_abs_diff": float(f"{self.max_abs_diff:.3g}"),
            "compared_with": self.source,
            "test_images": None,  # filled by the caller
            "gates": {name: ok for name, ok in self.gates},
            "passed": self.passed,
        }


@dataclass(frozen=True)
class Gates:
    """The thresholds an artifact must meet; one row of rules per kind of artifact."""

    original_accuracy: dict[str, float] = field(default_factory=lambda: dict(ORIGINAL_ACCURACY))
    max_quantization_loss: float = MAX_QUANTIZATION_LOSS
    max_learning_loss: float = MAX_LEARNING_LOSS
    float_atol: dict[str, float] = field(default_factory=lambda: dict(FLOAT_ATOL))

    def check(
        self,
        model: str,
        fmt: str,
        precision: str,
        accuracy: float,
        agreement: float,
        diff: float,
        float_accuracy: float,
        decisive_agreement: float | None = None,
    ) -> list[tuple[str, bool]]:
        """``decisive_agreement``: top-1 agreement on the images whose source top-2 margin exceeds
        twice the float tolerance. Within it, two scores that each move by at most ``atol`` may
        swap on one CPU's rounding and not another's, so a float artifact must agree everywhere
        else (and stay within ``atol`` everywhere)."""
        if precision == "float32":
            atol = self.float_atol[fmt]
            agreed = agreement if decisive_agreement is None else decisive_agreement
            return [("top-1 agreement 100%", agreed == 1.0), (f"max |diff| <= {atol:g}", diff <= atol)]
        original, loss = self.original_accuracy[model], self.max_quantization_loss
        return [
            (f"accuracy >= float - {loss:.2%}", accuracy >= float_accuracy - loss - 1e-9),
            (f"accuracy >= original {original:.2%}", accuracy >= original),
        ]


def validate_artifact(
    path: str,
    model: str,
    fmt: str,
    precision: str,
    images: np.ndarray,
    labels: np.ndarray,
    source_scores: np.ndarray,
    source_name: str,
    float_accuracy: float,
    gates: Gates | None = None,
    activation: str | None = None,
) -> tuple[Validation, np.ndarray]:
    """Run ``path`` on ``images`` and judge it; returns the verdict and the artifact's scores.

    ``activation`` turns the outputs of an artifact that outputs logits into scores.
    """
    scores = predict_scores(open_model(path, activation=activation), images)
    verdict = judge_scores(
        path, model, fmt, precision, scores, labels, source_scores, source_name, float_accuracy, gates
    )
    return verdict, scores


def judge_scores(
    path: str,
    model: str,
    fmt: str,
    precision: str,
    scores: np.ndarray,
    labels: np.ndarray,
    source_scores: np.ndarray,
    source_name: str,
    float_accuracy: float,
    gates: Gates | None = None,
) -> Validation:
    """The verdict on an artifact's scores, however they were computed (a device's interpreter or
    tflite-micro for microcontroller artifacts)."""
    predicted = scores.argmax(axis=1)
    accuracy = float(np.mean(predicted == labels))
    agreement = float(np.mean(predicted == source_scores.argmax(axis=1)))
    diff = float(np.max(np.abs(scores - source_scores)))
    gates = gates or Gates()
    top2 = np.sort(source_scores, axis=1)[:, -2:]
    decisive = top2[:, 1] - top2[:, 0] > 2 * gates.float_atol.get(fmt, 0.0)
    decisive_agreement = (
        float(np.mean((predicted == source_scores.argmax(axis=1))[decisive])) if decisive.any() else 1.0
    )
    return Validation(
        artifact=str(path),
        model=model,
        format=fmt,
        precision=precision,
        accuracy=accuracy,
        agreement=agreement,
        max_abs_diff=diff,
        source=source_name,
        gates=gates.check(
            model, fmt, precision, accuracy, agreement, diff, float_accuracy, decisive_agreement
        ),
    )
