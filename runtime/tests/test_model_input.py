"""serve's "what the model saw" image is the model's input itself: the pixels handed to the
interpreter for that request, not another rendering of the picture."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from conftest import BUNDLE, MNIST
from synthetic import paper_photo

pytest.importorskip("starlette")
pytest.importorskip("httpx")
Image = pytest.importorskip("PIL.Image")

from starlette.testclient import TestClient  # noqa: E402

from mnist_edge_runtime.backends import pixels_to_input  # noqa: E402
from mnist_edge_runtime.classifier import Classifier  # noqa: E402
from mnist_edge_runtime.idx import read_images_and_labels  # noqa: E402
from mnist_edge_runtime.serve import ServeLimits, create_app  # noqa: E402

INT8 = BUNDLE / "conv2d.int8.tflite"


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def pictures() -> list[tuple[str, bytes]]:
    """Validation digits (the last 5,000 training images; the test set stays unseen) as the page
    sends them, each needing other preprocessing: a canvas drawing (black on white, 10x larger)
    and a photo on uneven paper, off centre."""
    images, _ = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    validation = images[-5000:]
    drawn = []
    for i in range(3):
        big = np.asarray(Image.fromarray(validation[i]).resize((280, 280), Image.BICUBIC))
        drawn.append((f"drawing {i}", png(np.where(big > 127, 0, 255).astype(np.uint8))))
    photos = [
        (
            f"photo {i}",
            png(paper_photo(validation[10 + i], (240, 320), (30 + 20 * i, 60 + 40 * i, 150, 120), i)),
        )
        for i in range(3)
    ]
    return drawn + photos


@pytest.fixture(scope="module")
def spied():
    """A served classifier whose interpreter records every input tensor it is given."""
    classifier = Classifier.open(INT8, threads=1)
    interpreter = classifier.model.interpreter
    given: list[np.ndarray] = []
    set_tensor = interpreter.set_tensor

    def recording(index: int, value: np.ndarray) -> None:
        given.append(np.array(value, copy=True))
        set_tensor(index, value)

    interpreter.set_tensor = recording
    limits = ServeLimits(max_body=2_000_000, threads=1, max_in_flight=4)
    with TestClient(create_app(classifier, limits)) as client:
        yield client, classifier, given


@pytest.mark.parametrize(
    ("name", "body"), pictures(), ids=lambda value: value if isinstance(value, str) else ""
)
def test_the_image_shown_is_the_interpreters_input(spied, name, body):
    client, classifier, given = spied
    given.clear()
    answer = client.post("/api/predict?image=1", content=body, headers={"content-type": "image/png"})
    assert answer.status_code == 200, answer.text
    answer = answer.json()
    assert answer["digit"] is not None, name
    shown = Image.open(io.BytesIO(base64.b64decode(answer["mnist_image_png"])))
    assert (shown.mode, shown.size) == ("L", (28, 28))
    shown = np.asarray(shown)
    assert len(given) == 1, f"{name}: {len(given)} interpreter calls for one picture"
    # The model's input tensor is what these pixels become, and nothing else; for this int8 model
    # (uint8 input, scale 1/255, zero point 0) that is the pixels themselves.
    np.testing.assert_array_equal(given[0], pixels_to_input(shown[None], classifier.model.input))
    assert classifier.model.input.takes_raw_pixels
    np.testing.assert_array_equal(given[0].reshape(28, 28), shown)
    # So the shown image, classified again, gives the answer the page showed.
    again = classifier.scores(shown[None])[0]
    assert int(np.argmax(again)) == answer["digit"]
    np.testing.assert_allclose(again, answer["scores"], atol=1e-6)
