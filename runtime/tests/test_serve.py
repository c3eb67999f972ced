"""``mnist-edge-runtime serve``: the HTTP API in-process, every bad input, the unsure rule, concurrency."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import zlib

import numpy as np
import pytest
from conftest import BUNDLE, MNIST
from serving import PATIENCE, wait_until

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
    # The shape the runtime README gives for a blank picture: no model ran, so no scores.
    assert {k: v for k, v in blank.json().items() if k != "ms"} == {
        "digit": None, "confidence": 0.0, "runner_up": None, "runner_up_confidence": 0.0,
        "scores": [], "sure": False, "doubt": "blank",
    }  # fmt: skip
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
        release.wait(PATIENCE)
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
            try:
                wait_until(
                    lambda: c.get("/healthz").json()["in_flight"] == 1, "the first request was in flight"
                )
                busy = c.post("/api/predict", json={"image": validation[0][1].tolist()})
            finally:
                release.set()
                t.join()
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert first["r"].status_code == 200
    finally:
        del classifier.scores


def test_the_listening_socket_answers_kept_alive_connections_without_delay():
    # Without TCP_NODELAY every answer on a kept-alive connection waited 40 ms for a delayed ACK.
    import socket

    from mnist_edge_runtime.httpd import ConnectionGate, listening_socket

    sock = listening_socket("127.0.0.1", 0, ConnectionGate(8, 16))
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


def rgba_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (width, height), (255, 255, 255, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "body",
    [
        b'{"image": ' + b"[" * 3000 + b"]" * 3000 + b"}",  # RecursionError in the parser
        b'{"image": [[' + b"9" * 5000 + b"]]}",  # over Python's digit limit; overflows numpy
        b'{"image": [[NaN]]}',
        b'{"image": ' + json.dumps([[1e308 * 10 if i == 0 else 0 for i in range(28)]] * 28).encode() + b"}",
    ],
    ids=["nested-3000-deep", "5000-digit-integer", "NaN", "Infinity"],
)
def test_hostile_json_is_a_400_with_one_line(client, body):
    response = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "\n" not in response.json()["error"]


def test_json_has_its_own_small_limit(client, classifier):
    pretty = json.dumps({"image": [[255.0] * 28] * 28}, indent=4).encode()  # 28x28 pretty-printed
    assert len(pretty) < ServeLimits.max_json
    assert (
        client.post("/api/predict", content=pretty, headers={"content-type": "application/json"}).status_code
        == 200
    )
    with TestClient(create_app(classifier)) as defaults:
        big = b'{"image": [' + b"[]," * 30_000 + b"[]]}"  # 90 KB: over 64 KiB though far under 8 MiB
        response = defaults.post("/api/predict", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "65,536-byte" in response.json()["error"]


def test_an_image_that_would_cost_too_much_to_decode_is_refused_from_its_header(classifier):
    body = rgba_png(4000, 4000)  # 16 megapixels in about 70 KB: 64 MB as Pillow stores it
    assert len(body) < 100_000
    with TestClient(create_app(classifier)) as c:
        refused = c.post("/api/predict", content=body, headers={"content-type": "image/png"})
        read = c.post("/api/predict", content=rgba_png(1000, 1000), headers={"content-type": "image/png"})
    assert refused.status_code == 400 and "too large to read" in refused.json()["error"]
    assert read.status_code == 200 and read.json()["doubt"] == "blank"


def test_bodies_held_at_once_share_one_budget(classifier, validation):
    app = create_app(classifier, ServeLimits(max_body=200_000, max_buffered=50_000))
    with TestClient(app) as c:
        over = c.post("/api/predict", content=b"\x00" * 60_000, headers={"content-type": "image/png"})
        fits = c.post("/api/predict", json={"image": validation[0][0].tolist()})
        health = c.get("/healthz").json()
    assert over.status_code == 503 and over.headers["retry-after"] == "1"
    assert fits.status_code == 200 and health["body_bytes_held"] == 0  # all given back


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/model", "/no/such/page"])
def test_every_response_carries_the_security_headers(client, path):
    headers = client.get(path).headers
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    "headers, status",
    [
        ({"origin": "http://testserver"}, 200),  # the page itself
        ({}, 200),  # curl, scripts: no Origin
        ({"origin": "http://evil.example"}, 403),
        ({"origin": "null"}, 403),  # a sandboxed frame or a file:// page
        ({"sec-fetch-site": "cross-site"}, 403),
    ],
)
def test_posts_from_other_sites_pages_are_refused(client, validation, headers, status):
    response = client.post("/api/predict", json={"image": validation[0][0].tolist()}, headers=headers)
    assert response.status_code == status
    if status == 403:
        assert "cross-site" in response.json()["error"]


def test_allowed_hosts_refuse_other_host_headers(classifier):
    with TestClient(create_app(classifier, ServeLimits(allowed_hosts=("pi.local",)))) as c:
        assert c.get("/healthz", headers={"host": "pi.local:8000"}).status_code == 200
        refused = c.get("/healthz", headers={"host": "attacker.example"})
    assert refused.status_code == 400 and "--allowed-hosts" in refused.json()["error"]


@pytest.mark.parametrize(
    "host, allowed",
    [
        ("127.0.0.1", ()),
        ("127.0.0.1", ("pi.local",)),
        ("0.0.0.0", ()),
        ("0.0.0.0", ("pi.local", "192.168.1.20")),
        ("0.0.0.0", ("mypi.local",)),
        ("192.168.1.20", ("pi.local",)),
        ("::", ("fe80::1",)),
    ],
)
def test_the_start_line_names_only_addresses_the_server_answers(classifier, host, allowed):
    from mnist_edge_runtime.guard import page_addresses

    line = page_addresses(host, 8000, allowed, "mypi")
    urls = re.findall(r"http://(\S+?)/", line)
    assert urls and "localhost:8000" in urls if host in ("127.0.0.1", "0.0.0.0", "::") else urls
    with TestClient(create_app(classifier, ServeLimits(allowed_hosts=allowed))) as c:
        for netloc in urls:
            assert c.get("/healthz", headers={"host": netloc}).status_code == 200, (line, netloc)


@pytest.mark.parametrize("model, kind", [("conv2d", "independent"), ("flat", "sum to one")])
def test_the_model_says_whether_its_scores_add_up_to_one(model, kind):
    from conftest import BUNDLE

    classifier = Classifier.open(BUNDLE / f"{model}.int8.tflite", threads=1)
    with TestClient(create_app(classifier, ServeLimits())) as c:
        assert c.get("/api/model").json()["scores"] == kind
    scores = classifier.predict(np.full((28, 28), 255, np.uint8) * np.eye(28, dtype=np.uint8))[0].scores
    if kind == "sum to one":
        assert abs(sum(scores) - 1) < 1e-3


def test_the_page_needs_nothing_the_content_security_policy_refuses():
    from mnist_edge_runtime.serve import WEB

    page = (WEB / "index.html").read_text()
    script = (WEB / "app.js").read_text()
    assert "<script>" not in page and " style=" not in page and not re.search(r"\son\w+=", page)
    assert "innerHTML" not in script and "style=" not in script and "eval(" not in script


def _encoded(image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_formats_that_decode_before_their_size_is_known_are_refused_unread(classifier):
    # An ICO decodes its embedded PNG inside Image.open, whatever its size; EPS runs Ghostscript.
    ico = _encoded(Image.new("RGBA", (64, 64)), "ICO")
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{} loop\n"
    with TestClient(create_app(classifier)) as c:
        for body in (ico, eps):
            response = c.post("/api/predict", content=body, headers={"content-type": "image/x-icon"})
            assert response.status_code == 400 and "formats read" in response.json()["error"]


def test_a_progressive_jpeg_is_charged_for_its_full_size_coefficients(classifier):
    from mnist_edge_runtime.preprocess import decode_cost

    big = Image.new("RGB", (6000, 6000), (200, 200, 200))
    baseline, progressive = _encoded(big, "JPEG"), _encoded(big, "JPEG", progressive=True)
    costs = {}
    for name, body in (("baseline", baseline), ("progressive", progressive)):
        with Image.open(io.BytesIO(body)) as image:
            full, bands = image.size, len(image.getbands())
            image.draft("L", (400, 400))
            costs[name] = decode_cost(image, full, bands)
    assert costs["progressive"] - costs["baseline"] == 2 * 6000 * 6000 * 3  # 216 MB of coefficients
    with TestClient(create_app(classifier)) as c:
        refused = c.post("/api/predict", content=progressive, headers={"content-type": "image/jpeg"})
        read = c.post("/api/predict", content=baseline, headers={"content-type": "image/jpeg"})
    assert refused.status_code == 400 and "too large to read" in refused.json()["error"]
    assert read.status_code == 200


def test_an_unexpected_decoder_error_is_a_400_not_a_500(client):
    dds = b"DDS |" + (124).to_bytes(4, "little") + b"\x07\x10\x08\x00" + b"\x10\x00\x00\x00" * 2
    dds += (
        b"\x00" * (76 - len(dds)) + (32).to_bytes(4, "little") + b"\x04\x00\x00\x00" + b"ABCD" + b"\x00" * 60
    )
    response = client.post("/api/predict", content=dds, headers={"content-type": "image/png"})
    assert response.status_code == 400 and "\n" not in response.json()["error"]


def test_a_form_upload_is_told_to_send_the_picture_itself(client):
    body = b'--x\r\nContent-Disposition: form-data; name="file"; filename="7.png"\r\n\r\n\x89PNG\r\n--x--\r\n'
    response = client.post(
        "/api/predict", content=body, headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert response.status_code == 400 and "--data-binary" in response.json()["error"]


def test_host_names_compare_without_port_or_brackets():
    from mnist_edge_runtime.guard import host_name

    assert host_name("Pi.Local:8000") == "pi.local" and host_name("[::1]:8000") == "::1"
    assert host_name("[::1]") == "::1" and host_name("192.168.1.20") == "192.168.1.20"
