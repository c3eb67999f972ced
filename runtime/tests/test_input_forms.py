"""True answers on every picture people give: the forms of ``forms.py`` on validation digits.

The CI version of ``benchmarks/input_forms.py``: every digit form scores like MNIST's own form,
the "not sure" rule doubts few right answers and catches blank paper and noise, and its bounds
are the ones ``derive_rule`` gives on these forms. Validation digits only (the last 5,000
training images); the test set stays unseen.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import BUNDLE, MNIST

Image = pytest.importorskip("PIL.Image")

from forms import DIGIT_FORMS, NOT_DIGITS, digit_form_row, mnist_forms, not_digit_row  # noqa: E402

from mnist_edge_runtime.classifier import Classifier  # noqa: E402
from mnist_edge_runtime.idx import read_images_and_labels  # noqa: E402
from mnist_edge_runtime.verdict import (  # noqa: E402
    INK_SHARE,
    MAX_FALSE_DOUBT,
    MAX_PIECES,
    MIN_CONFIDENCE,
    derive_rule,
    false_doubt_share,
)

DIGITS = 500  # as benchmarks/input_forms.py, whose constants derive_rule must reproduce
MNIST_FORM = "28x28 MNIST form, PNG"


@pytest.fixture(scope="module")
def validation():
    images, labels = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    return images[-5000:][:DIGITS], labels[-5000:][:DIGITS]


@pytest.fixture(scope="module")
def classifiers():
    return [Classifier.open(BUNDLE / f"{m}.int8.tflite") for m in ("conv2d", "flat")]


@pytest.fixture(scope="module")
def forms(validation):
    digits, labels = validation
    return {name: mnist_forms(make, digits, range(len(labels))) for name, make in DIGIT_FORMS.items()}


def test_every_digit_form_scores_like_mnist_form_and_is_rarely_doubted(forms, validation, classifiers):
    _, labels = validation
    classifier = classifiers[0]
    rows = {name: digit_form_row(classifier, images, labels) for name, images in forms.items()}
    floor = rows[MNIST_FORM]["accuracy"] - 0.01
    for name, row in rows.items():
        assert row["accuracy"] >= floor, (name, row)
        assert row["doubted_right"] <= MAX_FALSE_DOUBT, (name, row)
    small, touching = rows["canvas 280x280, small (margin 70)"], rows["canvas 280x280, touching the edges"]
    assert touching["accuracy"] >= small["accuracy"] - 0.01


def test_blank_paper_and_noise_are_doubted(classifiers):
    for name, floor in (("blank paper with a shadow (photo)", 0.95), ("uniform noise", 0.90)):
        row = not_digit_row(classifiers[0], mnist_forms(NOT_DIGITS[name], range(200)))
        assert row["doubted"] >= floor, (name, row)


def test_the_rule_is_the_one_the_validation_forms_give(forms, validation, classifiers):
    """The constants in verdict.py are what derive_rule computes on these forms.

    ai-edge-litert gives the same int8 scores on every CPU; tflite-runtime's differ in the last
    digits, which may move a digit across a bound: there the rule may doubt at most two more right
    answers per form and model than it allows.
    """
    _, labels = validation
    scores = {name: [c.scores(images) for c in classifiers] for name, images in forms.items()}
    if classifiers[0].backend == "litert":
        rule = derive_rule(forms, labels, scores)
        assert rule == {"ink_share": INK_SHARE, "max_pieces": MAX_PIECES, "min_confidence": MIN_CONFIDENCE}
        return
    slack = 2 / len(labels)  # which digits are right, and so the bounds' sample, may move too
    for name, images in forms.items():
        for classifier, form_scores in zip(classifiers, scores[name]):
            assert false_doubt_share(form_scores, labels, MIN_CONFIDENCE) <= MAX_FALSE_DOUBT + slack
            assert digit_form_row(classifier, images, labels)["doubted_right"] <= MAX_FALSE_DOUBT + slack


def _canvas_with(draw_strokes) -> np.ndarray:
    """A drawing on the page's 280x280 canvas with its pen (18 px, round), black on white."""
    from PIL import ImageDraw

    image = Image.new("RGB", (280, 280), "white")
    draw_strokes(ImageDraw.Draw(image))
    return np.asarray(image)


def test_strokes_that_span_the_canvas_are_kept(classifiers):
    """A 7 whose bar spans the width and a 4 whose stem runs top to bottom are read as drawn."""
    seven = _canvas_with(
        lambda d: d.line([(5, 14), (275, 14), (120, 275)], fill="black", width=18, joint="curve")
    )
    four = _canvas_with(
        lambda d: (
            d.line([(150, 5), (40, 180), (260, 180)], fill="black", width=18, joint="curve"),
            d.line([(185, 0), (185, 280)], fill="black", width=18),
        )
    )
    answers = classifiers[0].predict([seven, four])
    assert [a.digit for a in answers] == [7, 4] and all(a.sure for a in answers)


def test_polarity_is_read_from_a_28x28_file(tmp_path, validation, classifiers):
    """A validation digit saved dark on white is read as the same digit, by the CLI and the library."""
    digits, labels = validation
    path = tmp_path / "dark_on_white.png"
    Image.fromarray(255 - digits[0]).save(path)
    assert classifiers[0].predict(path)[0].digit == labels[0]
    assert classifiers[0].predict(digits[0])[0].digit == labels[0]  # MNIST's own form, untouched


def test_noise_and_blank_28x28_files_are_doubted(tmp_path, classifiers):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(tmp_path / "noise.png")
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(tmp_path / "white.png")
    noise, white = classifiers[0].predict([tmp_path / "noise.png", tmp_path / "white.png"])
    assert not noise.sure and noise.doubt == "not like a digit"
    assert not white.sure and white.doubt == "blank" and white.digit is None


@pytest.mark.parametrize("form", ["PNG", "TIFF", "RGB PNG"])
def test_16_bit_pictures_are_scaled_not_clipped(tmp_path, validation, classifiers, form):
    """A photo with ink at about 8,000 on paper at about 60,000, in a real 16-bit file."""
    from forms import encode, paper_photo, png16

    digits, labels = validation
    photo = paper_photo(digits[5], (120, 120), (20, 20, 80, 80), seed=5).astype(np.float64)
    wide = np.round(8000 + (photo - photo.min()) / (photo.max() - photo.min()) * 52000).astype(np.uint16)
    data = png16(np.repeat(wide[..., None], 3, 2)) if form == "RGB PNG" else encode(wide, form.split()[-1])
    path = tmp_path / f"photo.{'tif' if form == 'TIFF' else 'png'}"
    path.write_bytes(data)
    if form != "RGB PNG":
        assert Image.open(path).mode.startswith("I;16")
    answer = classifiers[0].predict(path)[0]
    assert answer.digit == labels[5] and answer.sure


def test_a_canvas_export_with_transparency_reads_either_ink_colour(validation, classifiers):
    digits, labels = validation
    for ink in (0, 255):
        rgba = np.zeros((140, 140, 4), np.uint8)
        rgba[..., :3] = ink
        rgba[..., 3] = np.asarray(Image.fromarray(digits[7]).resize((140, 140), Image.BICUBIC))
        buffer = io.BytesIO()
        Image.fromarray(rgba).save(buffer, format="PNG")
        assert classifiers[0].predict(Image.open(buffer))[0].digit == labels[7], ink
