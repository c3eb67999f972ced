"""Training on handwriting MNIST lacks: the pictures join MNIST's, and non-digits teach "no digit".

A non-digit's label is ``NO_DIGIT``: conv2d's ten sigmoid scores are all taught 0, flat's softmax
the uniform distribution (outlier exposure), so both keep their ten outputs and every runtime reads
them as before.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_edge.data import NO_DIGIT, Mnist
from mnist_edge.tensorflow_quiet import tf
from mnist_edge.train import default_config, loss_for, train, training_split


@pytest.fixture(scope="module")
def small(mnist):
    return Mnist(mnist.train.take(4096), mnist.validation.take(256), mnist.test.take(256), "subset")


def test_the_training_split_is_mnist_then_pen_digits_then_non_digits(small):
    config = default_config("flat", pen_digit_share=0.1, non_digit_share=0.05)
    split = training_split(small.train, config)
    mnist, digits, others = 4096, round(0.1 * 4096), round(0.05 * 4096)
    assert len(split) == mnist + digits + others
    np.testing.assert_array_equal(split.images[:mnist], small.train.images)  # MNIST first, unchanged
    assert set(split.labels[mnist : mnist + digits]) <= set(range(10))
    assert (split.labels[mnist + digits :] == NO_DIGIT).all()
    assert split.images.dtype == np.uint8 and split.images.shape[1:] == (28, 28)
    assert (split.images[mnist:].reshape(digits + others, -1).max(axis=1) > 127).all()  # ink in each
    again = training_split(small.train, config)
    np.testing.assert_array_equal(again.images, split.images)  # a function of its inputs
    no_extra = default_config("flat", pen_digit_share=0.0, non_digit_share=0.0)
    assert training_split(small.train, no_extra) is small.train


def test_no_digit_is_taught_as_no_digit_at_all():
    scores = tf.constant([[0.05] * 9 + [0.55], [0.5] + [0.5 / 9] * 9])
    labels = tf.constant([9, NO_DIGIT])
    flat = loss_for("flat", from_logits=False)
    per_image = [float(flat(labels[i : i + 1], scores[i : i + 1])) for i in range(2)]
    assert per_image[0] == pytest.approx(-np.log(0.55), rel=1e-5)
    # The uniform target: a tenth of -log of every score (as class 9, or clipped, it would differ).
    assert per_image[1] == pytest.approx(-(0.1 * np.log(0.5) + 0.9 * np.log(0.5 / 9)), rel=1e-5)
    sigmoid = tf.constant([[0.2] * 9 + [0.6]])
    conv2d = loss_for("conv2d", from_logits=False)
    # Every one of the ten scores is taught 0: the sum of -log(1 - score) over the ten outputs.
    expected = -(9 * np.log(0.8) + np.log(0.4))
    assert float(conv2d(tf.constant([NO_DIGIT]), sigmoid)) == pytest.approx(expected, rel=1e-4)


def test_training_with_non_digits_lowers_their_scores(tmp_path, small):
    """Two smoke trainings from the same seed, one with non-digits: the one that saw them gives
    held-out non-digits a lower best score, while MNIST's digits keep theirs."""
    from mnist_edge.handwriting import TRAIN_FAMILIES, render_non_digits

    unseen = render_non_digits(200, seed=12345, families=TRAIN_FAMILIES)
    best = {}
    for name, share in (("without", 0.0), ("with", 0.15)):
        config = default_config("flat", epochs=3, batch_size=64, pen_digit_share=0.0, non_digit_share=share)
        result = train(config, small, tmp_path / name)
        record = json.loads(result.record_path.read_text())
        assert record["data"]["non_digits"] == round(share * 4096)
        scores = result.model.predict(unseen.reshape(-1, 784) / 255.0, verbose=0)
        best[name] = float(np.median(scores.max(axis=1)))
        assert record["test_accuracy"] > 0.8
    assert best["with"] < best["without"] - 0.1, best
