"""When to say "not sure" instead of naming a digit.

A classifier always names one of ten digits, even for a blank canvas or random noise (a random
28x28 array was named a 7 at 96% by an int8 conv2d model). Three checks catch what is not a digit,
each bound taken from the validation split (the last 5,000 MNIST training images; never the
test set) by ``derive_rule`` below, and checked against it by the runtime's tests:

* the share of ink pixels (> 0) in the 28x28 MNIST form lies within the range the validation
  digits span (noise is nearly all ink; a dot is almost none);
* the bright pixels (> 127) form no more 8-connected pieces than any validation digit has
  (scattered specks make dozens);
* the best score reaches ``MIN_CONFIDENCE``: the highest threshold, in steps of 0.05, that marks
  at most 0.5% of the correctly classified validation digits as unsure for each shipped int8
  model, while it catches a good part of the misclassified ones (README, "Serve").
"""

from __future__ import annotations

import numpy as np

from mnist_edge_runtime.preprocess import _ink_runs

INK_SHARE = (0.043, 0.427)  # smallest and largest share of pixels > 0 in a validation digit
MAX_PIECES = 4  # most 8-connected pieces of pixels > 127 in a validation digit
MIN_CONFIDENCE = 0.65
MAX_FALSE_UNSURE = 0.005  # the share of correct validation answers a threshold may doubt


def pieces(image: np.ndarray) -> int:
    """8-connected pieces of the bright (> 127) pixels of an MNIST-form image."""
    label = _ink_runs(image > 127).label
    return int(label.max()) if len(label) else 0


def unsure_reason(image: np.ndarray, confidence: float) -> str | None:
    """Why an MNIST-form image and its best score do not make a digit, or None if they do."""
    share = float(np.count_nonzero(image)) / image.size
    if share == 0:
        return "blank: no ink"
    if not INK_SHARE[0] <= share <= INK_SHARE[1]:
        return f"{share:.0%} of the picture is ink; digits have {INK_SHARE[0]:.0%} to {INK_SHARE[1]:.0%}"
    separate = pieces(image)
    if separate > MAX_PIECES:
        return f"the ink is in {separate} separate pieces, not strokes"
    if confidence < MIN_CONFIDENCE:
        return f"low confidence ({confidence:.0%} < {MIN_CONFIDENCE:.0%})"
    return None


def false_unsure_share(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """The share of digits a model gets right but with a best score below ``threshold``."""
    right = scores.argmax(axis=1) == labels
    return float(np.mean(right & (scores.max(axis=1) < threshold)))


def derive_rule(images: np.ndarray, labels: np.ndarray, scores_per_model: list[np.ndarray]) -> dict:
    """The three bounds, from validation digits and each model's scores on them."""
    shares = np.count_nonzero(images, axis=(1, 2)) / images[0].size
    thresholds = np.round(np.arange(0.5, 0.951, 0.05), 2)
    allowed = [
        t
        for t in thresholds
        if all(false_unsure_share(s, labels, t) <= MAX_FALSE_UNSURE for s in scores_per_model)
    ]
    return {
        "ink_share": (
            float(np.floor(shares.min() * 1000) / 1000),
            float(np.ceil(shares.max() * 1000) / 1000),
        ),
        "max_pieces": max(pieces(image) for image in images),
        "min_confidence": float(max(allowed)) if allowed else float(thresholds[0]),
    }
