"""Learning from the device: samples people corrected (``serve --collect``) become training data.

``mnist-edge train --extra-data DIR_OR_FILE`` fine-tunes the current model (``runs/<model>``) on
MNIST and the project's handwriting, as ``train`` does, plus the collected samples:

* **Held out for measurement**: a quarter of the samples, chosen by a hash of each sample's
  picture and label. The choice is random with respect to who wrote what, and stable: a sample
  stays on its side when more samples are added later, so a held-out picture is never trained on
  in a later round.
* **Weighted** so that the collected training samples make up ``EXTRA_SHARE`` of every epoch's
  pictures (each repeated, under a new random affine transform each time): a few hundred
  corrections among 74,000 pictures would otherwise go unnoticed, and a larger share would trade
  MNIST accuracy for one writer's hand.
* A sample marked "not a digit" is a non-digit (target "no digit"), as the rendered ones are.

The fine-tuned model replaces ``runs/<model>/model.keras`` (the model it started from is kept as
``before-extra-data.keras``); QAT and ``export`` then run as usual, and ``export`` records in the
manifest which sample sets (SHA-256) went into each model and the held-out samples' accuracy
before (the bundle's previous file) and after (the new one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mnist_edge_runtime.classifier import predictions_from_scores
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.samples import NOT_A_DIGIT, Samples, read_samples

from mnist_edge.data import NO_DIGIT, Split
from mnist_edge.errors import UserError

HELD_OUT_PER_256 = 64  # a quarter of the samples, by the first byte of each sample's hash
EXTRA_SHARE = 0.05  # collected training samples: this share of an epoch's pictures
# Fine-tuning from the current model: a few epochs at a tenth of the model's training rate.
FINE_TUNE_EPOCHS = {"conv2d": 2, "flat": 3}
FINE_TUNE_RATE = 0.1


@dataclass
class Collected:
    """Collected samples split into training and held-out parts, with where they came from."""

    train: Split
    held_out: Split
    sets: list[dict]  # per sample set: path, sha256, samples, train, held_out


def load_collected(paths: list[str] | tuple[str, ...]) -> Collected:
    """The samples of every collection folder or ``samples --export`` file in ``paths``."""
    train_images, train_labels, held_images, held_labels, sets = [], [], [], [], []
    for path in paths:
        try:
            samples = read_samples(Path(path))
        except RuntimeInputError as exc:
            raise UserError(str(exc)) from None
        images, labels = samples.images, _labels(samples)
        held = np.array(
            [is_held_out(image, label) for image, label in zip(images, samples.labels, strict=True)], bool
        )
        train_images.append(images[~held])
        train_labels.append(labels[~held])
        held_images.append(images[held])
        held_labels.append(labels[held])
        sets.append(
            {
                "path": str(path),
                "sha256": samples.sha256,
                "samples": len(samples),
                "train": int((~held).sum()),
                "held_out": int(held.sum()),
                "skipped": samples.skipped,
            }
        )
    return Collected(
        Split(np.concatenate(train_images), np.concatenate(train_labels)),
        Split(np.concatenate(held_images), np.concatenate(held_labels)),
        sets,
    )


def is_held_out(image: np.ndarray, label: str) -> bool:
    return hashlib.sha256(label.encode() + image.tobytes()).digest()[0] < HELD_OUT_PER_256


def _labels(samples: Samples) -> np.ndarray:
    return np.array([NO_DIGIT if label == NOT_A_DIGIT else int(label) for label in samples.labels], np.uint8)


def check_unchanged(collected: Collected, recorded: list[dict], where: str) -> None:
    """The sample sets a model was trained on must be the ones found now (QAT and export reread them)."""
    found = [s["sha256"] for s in collected.sets]
    if found != [s["sha256"] for s in recorded]:
        raise UserError(
            f"{where}: the collected samples changed since the model was trained on them "
            f"({', '.join(s['path'] for s in recorded)}); run mnist-edge train --extra-data again"
        )


def with_collected(split: Split, collected: Split, mnist_size: int, share: float = EXTRA_SHARE) -> Split:
    """``split`` plus the collected training samples, each repeated so that together they make up
    about ``share`` of ``mnist_size`` pictures (each at least once)."""
    if not len(collected):
        return split
    repeats = max(1, round(share * mnist_size / len(collected)))
    return Split(
        np.concatenate([split.images, np.repeat(collected.images, repeats, axis=0)]),
        np.concatenate([split.labels, np.repeat(collected.labels, repeats)]).astype(split.labels.dtype),
    )


def right_share(scores: np.ndarray, held_out: Split) -> float:
    """The share of held-out samples answered right, by the runtime's own rule: the right digit
    for a digit (sure or not), and a doubt for a picture that is not a digit."""
    if not len(held_out):
        return float("nan")
    predictions = predictions_from_scores(scores, held_out.images)
    right = [
        (not p.sure) if label == NO_DIGIT else p.digit == int(label)
        for p, label in zip(predictions, held_out.labels, strict=True)
    ]
    return float(np.mean(right))


def held_out_figures(new_file: Path, previous_file: Path | None, held_out: Split) -> dict:
    """The held-out samples' share answered right by a new model file and by the file it replaces."""
    from mnist_edge_runtime.bundle import sha256_file
    from mnist_edge_runtime.classifier import Classifier

    figures: dict = {"held_out": len(held_out)}
    if previous_file is not None and previous_file.is_file():
        try:
            before = Classifier.open(previous_file).scores(held_out.images)
            figures["before"] = round(right_share(before, held_out), 6)
            figures["before_sha256"] = sha256_file(previous_file)
        except RuntimeInputError as exc:  # a damaged old file: no "before", said why
            figures["before_unavailable"] = str(exc)[:200]
    figures["after"] = round(right_share(Classifier.open(new_file).scores(held_out.images), held_out), 6)
    return figures
