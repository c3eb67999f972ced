"""``mnist-edge-runtime serve``: the original's draw-a-digit window as a web page and an HTTP API.

Starlette on uvicorn, both pure Python, so ``runtime[serve]`` installs from wheels on every
Raspberry Pi OS. Routes:

* ``GET /``: the page (canvas, upload, scores, the 28x28 image the model saw); its script and
  style are package data, so it works with no internet;
* ``POST /api/predict``: an image body (PNG, JPEG, ...) or JSON ``{"image": 28x28 numbers}``;
* ``GET /api/model``, ``GET /healthz``.

Preprocessing and inference run in worker threads (``--threads``), never on the event loop.
At most ``max_in_flight`` requests are admitted at once; more get 503 at once, so memory stays
bounded under any load. Bodies over ``max_body`` get 413 before they are read whole.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_edge_runtime import __version__
from mnist_edge_runtime.classifier import Classifier, predictions_from_scores
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.preprocess import SIDE, check_array, load_image_bytes, mnist_or_blank

WEB = Path(__file__).parent / "web"
UPLOAD_MAX_PIXELS = 16_000_000  # a 16-megapixel phone photo; a bigger upload is refused unread


@dataclass(frozen=True)
class ServeLimits:
    max_body: int = 8 * 1024 * 1024
    threads: int = 2
    max_in_flight: int = 16


class RequestError(Exception):
    """A client's mistake: answered with ``status`` and a one-line JSON error."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _starlette():
    try:
        import anyio
        import starlette  # noqa: F401
    except ImportError:
        raise RuntimeInputError(
            "serve needs Starlette and uvicorn: pip install 'mnist-edge-runtime[serve]'"
        ) from None
    return anyio


def model_info(classifier: Classifier) -> dict:
    path = classifier.path
    entry = classifier.manifest_entry or {}
    validation = entry.get("validation") if isinstance(entry.get("validation"), dict) else {}
    return {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "bytes": path.stat().st_size,
        "backend": classifier.backend,
        "manifest_accuracy": validation.get("accuracy"),
        "manifest_measured_on": validation.get("measured_on"),
        "scores_are_probabilities": classifier.output_known,
    }


def decode_body(body: bytes, content_type: str) -> np.ndarray:
    """The picture in a request body: JSON with a 28x28 array, or an encoded image."""
    if not body:
        raise RequestError(400, 'empty body: send an image (PNG, JPEG, ...) or JSON {"image": 28x28 numbers}')
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise RequestError(400, "body is not valid JSON") from None
        pixels = document.get("image") if isinstance(document, dict) else None
        if pixels is None:
            raise RequestError(400, 'JSON must be an object with "image": a 28x28 array of numbers')
        try:
            array = np.array(pixels, dtype=np.float64)
        except (ValueError, TypeError):
            raise RequestError(400, '"image" must be a 28x28 array of numbers') from None
        if array.shape != (SIDE, SIDE):
            raise RequestError(400, f'"image" must be 28x28, got shape {array.shape}')
        try:
            return check_array(array, '"image"')
        except RuntimeInputError as exc:
            raise RequestError(400, str(exc)) from None
    try:
        return load_image_bytes(body, "body", UPLOAD_MAX_PIXELS)
    except RuntimeInputError as exc:
        raise RequestError(400, str(exc)) from None


def png_base64(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def answer(classifier: Classifier, picture: np.ndarray, with_image: bool) -> dict:
    """Preprocess, classify and judge one picture (runs in a worker thread): the library's
    ``Prediction`` with its ``sure`` and ``doubt``, so the page, the API and the CLI agree."""
    started = time.perf_counter()
    try:
        mnist = mnist_or_blank(picture, "picture")
    except RuntimeInputError as exc:
        raise RequestError(400, str(exc)) from None
    preprocessed = time.perf_counter()
    prediction = predictions_from_scores(classifier.scores(mnist[None]), mnist[None])[0]
    result = prediction.as_dict()
    result["ms"] = _ms(started, preprocessed, time.perf_counter())
    if with_image and prediction.digit is not None:
        result["mnist_image_png"] = png_base64(mnist)
    return result


def _ms(started: float, preprocessed: float, inferred: float | None = None) -> dict:
    return {
        "preprocess": round((preprocessed - started) * 1000, 3),
        "inference": round(((inferred or preprocessed) - preprocessed) * 1000, 3),
    }


def create_app(classifier: Classifier, limits: ServeLimits = ServeLimits()):
    """The Starlette application serving one shared, thread-safe ``Classifier``."""
    anyio = _starlette()
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    info = model_info(classifier)
    workers = anyio.CapacityLimiter(limits.threads)
    admitted = {"now": 0}  # requests being read or worked on; the event loop is one thread

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def read_body(request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and not declared.isdigit():
            raise RequestError(400, f"Content-Length {declared[:20]!r} is not a number")
        if declared is not None and int(declared) > limits.max_body:
            raise RequestError(413, f"body over the {limits.max_body:,}-byte limit")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body:
                raise RequestError(413, f"body over the {limits.max_body:,}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)

    async def predict(request):
        if admitted["now"] >= limits.max_in_flight:
            return JSONResponse(
                {"error": "busy: too many requests in flight, try again"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        admitted["now"] += 1
        started = time.perf_counter()
        try:
            body = await read_body(request)
            with_image = request.query_params.get("image", "false").lower() in ("1", "true", "yes")
            content_type = request.headers.get("content-type", "")

            def work() -> dict:
                return answer(classifier, decode_body(body, content_type), with_image)

            result = await anyio.to_thread.run_sync(work, limiter=workers)
        except RequestError as exc:
            return error(exc.status, str(exc))
        finally:
            admitted["now"] -= 1
        result["ms"]["total"] = round((time.perf_counter() - started) * 1000, 3)
        return JSONResponse(result)

    async def model(request):
        return JSONResponse(info)

    async def healthz(request):
        return JSONResponse({"status": "ok", "version": __version__, "in_flight": admitted["now"]})

    async def page(request):
        return FileResponse(WEB / "index.html", media_type="text/html")

    async def http_error(request, exc: HTTPException):
        return error(exc.status_code, exc.detail if isinstance(exc.detail, str) else "error")

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/api/predict", predict, methods=["POST"]),
        Route("/api/model", model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Mount("/static", StaticFiles(directory=WEB), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def _bind(host: str, port: int):
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it a kept-alive connection's answers wait
    # 40 ms for a delayed ACK (measured here: 44 ms a request instead of 0.4 to 2 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RuntimeInputError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


class _StopRequestedError(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise _StopRequestedError


def serve(classifier: Classifier, host: str, port: int, limits: ServeLimits, announce) -> None:
    """Run until Ctrl-C or SIGTERM, then return normally.

    uvicorn finishes the requests in flight, restores the signal handlers it found and raises
    the signal again; the handlers installed here turn that into a normal return (exit 0).
    """
    _starlette()
    import signal
    import socket

    import uvicorn

    app = create_app(classifier, limits)
    listening = _bind(host, port)  # before announcing: a taken port is one line, exit 2
    if host in ("0.0.0.0", "::"):
        where = (
            f"http://{socket.gethostname()}.local:{port}/ from other devices, http://localhost:{port}/ here"
        )
    else:
        where = f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}/"
    announce(f"serving {classifier.path.name} ({classifier.backend}) at {where}  (Ctrl-C stops)")
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run(sockets=[listening])
    except _StopRequestedError:
        pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    announce("stopped")
