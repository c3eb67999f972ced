"""``mnist-edge-runtime serve``: the HTTP API in-process, every bad input, the unsure rule, concurrency."""

from __future__ import annotations

import base64
import io
import json
import threading
import zlib

import numpy as np
import pytest
from conftest import BUNDLE, MNIST

pytest.importorskip("starlette")
pytest.importorskip("httpx")
Image = pytest.importorskip("PIL.Image")

from starlette.testclient import TestClient  # noqa: E402

from mnist_edge_runtime.classifier import Classifier  # noqa: E402
from mnist_edge_runtime.idx import read_images_and_labels  # noqa: E402
from mnist_edge_runtime.serve import ServeLimits, create_app  # noqa: E402

INT8 = BUNDLE / "conv2d.int8.tflite"


@pytest.fixture(scope="module")
def classifier():
    return Classifier.open(INT8, threads=1)


@pytest.fixture(scope="module")
def client(classifier):
    with TestClient(create_app(classifier, ServeLimits(max_body=200_000, threads=2, max_in_flight=8))) as c:
        yield c


@pytest.fixture(scope="module")
def validation():
    images, labels = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    return images[-5000:], labels[-5000:]  # the validation split; the test set stays unseen


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def canvas_drawing(digit: np.ndarray) -> bytes:
    """A 280x280 drawing as the page sends it: black strokes on white."""
    big = np.asarray(Image.fromarray(digit).resize((280, 280), Image.BICUBIC))
    return png(np.where(big > 127, 0, 255).astype(np.uint8))


def test_page_and_its_files_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and 'capture="environment"' in page.text and "<canvas" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from the internet
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200


def test_model_and_health(client, classifier):
    model = client.get("/api/model").json()
    assert model["file"] == INT8.name and model["backend"] == classifier.backend
    assert model["bytes"] == INT8.stat().st_size and len(model["sha256"]) == 64
    assert model["manifest_accuracy"] == classifier.manifest_entry["validation"]["accuracy"]
    assert client.get("/healthz").json()["status"] == "ok"


def test_a_drawing_and_a_json_array_are_recognized(client, validation):
    images, labels = validation
    for i in range(5):
        drawn = client.post(
            "/api/predict?image=1", content=canvas_drawing(images[i]), headers={"content-type": "image/png"}
        )
        assert drawn.status_code == 200, drawn.text
        answer = drawn.json()
        assert answer["digit"] == labels[i] and answer["sure"] and answer["doubt"] is None
        assert answer["runner_up"] != answer["digit"] and len(answer["scores"]) == 10
        seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["mnist_image_png"]))))
        assert seen.shape == (28, 28)
        assert set(answer["ms"]) == {"preprocess", "inference", "total"}
        as_json = client.post("/api/predict", json={"image": images[i].tolist()}).json()
        assert as_json["digit"] == labels[i] and "mnist_image_png" not in as_json
        floats = client.post("/api/predict", json={"image": (images[i] / 255).tolist()}).json()
        assert floats["scores"] == as_json["scores"]


def test_noise_and_blank_are_called_unsure(client):
    rng = np.random.default_rng(1)
    noise = client.post("/api/predict", json={"image": rng.integers(0, 256, (28, 28)).tolist()}).json()
    assert not noise["sure"] and noise["doubt"] == "not like a digit"
    specks = (rng.random((28, 28)) < 0.15) * 255
    assert not client.post("/api/predict", json={"image": specks.tolist()}).json()["sure"]
    blank = client.post(
        "/api/predict", content=png(np.full((280, 280), 255, np.uint8)), headers={"content-type": "image/png"}
    )
    assert blank.status_code == 200 and blank.json()["digit"] is None and blank.json()["doubt"] == "blank"
    zeros = client.post("/api/predict", json={"image": [[0] * 28] * 28})
    assert zeros.status_code == 200 and zeros.json()["digit"] is None and not zeros.json()["sure"]


def test_the_page_the_api_and_the_library_give_the_same_answer(client, classifier, validation):
    """One rule: the API's answer is the library's Prediction for the same picture."""
    images, _ = validation
    pictures = [canvas_drawing(images[0]), png(255 - images[1]), png(np.full((28, 28), 255, np.uint8))]
    for picture in pictures:
        api = client.post("/api/predict", content=picture, headers={"content-type": "image/png"}).json()
        library = classifier.predict(Image.open(io.BytesIO(picture)))[0].as_dict()
        assert {k: api[k] for k in library} == library


def zip_bomb_png(side: int) -> bytes:
    """A valid PNG header for a side x side grayscale image with a tiny, highly compressed body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    rows = zlib.compress(b"\x00" * (side + 1) * 64, 9)  # just the first rows; enough to be read
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"", "image/png", 400),
        (b"not an image at all", "image/png", 400),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png", 400),  # truncated
        ("zip-bomb", "image/png", 400),
        (b"{", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"image": [[1, 2], [3, 4]]}', "application/json", 400),
        (b'{"image": "abc"}', "application/json", 400),
        (json.dumps({"image": [[300] * 28] * 28}).encode(), "application/json", 400),
        (json.dumps({"image": [[-1] * 28] * 28}).encode(), "application/json", 400),
        (b'{"image": ' + json.dumps([["x"] * 28] * 28).encode() + b"}", "application/json", 400),
        (b"\x00" * 200_001, "image/png", 413),
    ],
)
def test_bad_input_gets_a_one_line_json_error_and_the_server_keeps_serving(
    client, validation, body, content_type, status
):
    if body == "zip-bomb":
        body = zip_bomb_png(60_000)  # 3.6 gigapixels declared in a few hundred bytes
    response = client.post("/api/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == status
    error = response.json()["error"]
    assert error and "\n" not in error and "Traceback" not in error
    digit, label = validation[0][0], validation[1][0]
    assert client.post("/api/predict", json={"image": digit.tolist()}).json()["digit"] == label


def test_an_oversized_body_is_refused_from_its_declared_length(client):
    def endless():  # a client that would send forever: refused from the header, not read whole
        yield b"\x00" * 1000
        raise AssertionError("the server read past the declared length")

    response = client.post("/api/predict", content=endless(), headers={"content-length": "999999999"})
    assert response.status_code == 413


def test_wrong_method_and_unknown_path(client):
    assert client.get("/api/predict").status_code == 405
    assert client.delete("/api/model").status_code == 405
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and missing.json()["error"]


def test_concurrent_requests_get_their_own_answers(client, validation):
    images, labels = validation
    results, errors = {}, []

    def worker(start: int) -> None:
        try:
            for i in range(start, 200, 8):
                body = canvas_drawing(images[i]) if i % 2 else None
                if body is None:
                    answer = client.post("/api/predict", json={"image": images[i].tolist()}).json()
                else:
                    answer = client.post(
                        "/api/predict", content=body, headers={"content-type": "image/png"}
                    ).json()
                results[i] = answer["digit"]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    single = {
        i: client.post("/api/predict", json={"image": images[i].tolist()}).json()["digit"]
        for i in range(0, 200, 2)
    }
    assert all(results[i] == single[i] for i in single)
    assert sum(results[i] == labels[i] for i in results) >= 195


def test_requests_over_the_in_flight_limit_get_503(classifier, validation):
    app = create_app(classifier, ServeLimits(max_body=200_000, threads=1, max_in_flight=1))
    release = threading.Event()
    original = classifier.scores

    def slow_scores(images, batch_size=256):
        release.wait(10)
        return original(images, batch_size)

    classifier.scores = slow_scores
    try:
        with TestClient(app) as c:
            first = {}
            t = threading.Thread(
                target=lambda: first.update(
                    r=c.post("/api/predict", json={"image": validation[0][0].tolist()})
                )
            )
            t.start()
            for _ in range(100):  # until the first request is in flight
                if c.get("/healthz").json()["in_flight"] == 1:
                    break
                threading.Event().wait(0.02)
            busy = c.post("/api/predict", json={"image": validation[0][1].tolist()})
            release.set()
            t.join()
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert first["r"].status_code == 200
    finally:
        del classifier.scores


def test_the_listening_socket_answers_kept_alive_connections_without_delay():
    # Without TCP_NODELAY every answer on a kept-alive connection waited 40 ms for a delayed ACK.
    import socket

    from mnist_edge_runtime.serve import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()


def test_a_port_that_is_taken_is_one_line_and_exit_2(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "mnist_edge_runtime", "serve", "--bundle", str(BUNDLE), "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "cannot listen on" in done.stderr
