"""``mnist-edge-runtime serve``: the original's draw-a-digit window as a web page and an HTTP API.

Starlette on uvicorn, both pure Python, so ``runtime[serve]`` installs from wheels on every
Raspberry Pi OS. Routes:

* ``GET /``: the page (canvas, upload, scores, the 28x28 image the model saw); its script and
  style are package data, so it works with no internet;
* ``POST /api/predict``: an image body (PNG, JPEG, ...) or JSON ``{"image": 28x28 numbers}``;
* ``POST /api/samples?label=L`` (``serve --collect DIR`` only): a picture as for predict, or JSON
  ``{"image": ..., "label": L}``, with the right answer L (0-9, or n: not a digit), stored in DIR
  (``samples.py``); 507 when the collection is full;
* ``GET /api/model`` (with the collection's state), ``GET /healthz``.

Built to hold on a 1 GB Raspberry Pi against what clients can send. Memory: a body is read in chunks
against its limit (8 MiB for images, 64 KiB for JSON) and against one budget for all bodies held
at once; an image is refused from its header when decoding it would cost more than
``max_decode_bytes`` (``preprocess.decode_cost``); decoding runs in ``threads`` worker threads,
so at most that many decodes exist at a time, and freed memory goes back to the system
(``httpd.tune_malloc``). Time: a whole body must arrive within ``body_timeout`` (408 otherwise);
headers, idle connections and the connection count are policed by ``httpd``. Admission counts
requests being worked on (``max_in_flight``, 503 beyond), not uploads in progress, so slow
uploads cannot lock others out. A refused body is read and discarded (up to ``DRAIN_LIMIT``)
before the answer, so a client that sends its whole body first still reads the 413.
Every response carries a self-only Content-Security-Policy and its companions; a POST from
another site's page is refused (403).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_edge_runtime import __version__
from mnist_edge_runtime.classifier import Classifier
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.guard import STATUS_FOR_LOG, guarded, machine_names, page_addresses
from mnist_edge_runtime.preprocess import SIDE, check_array, load_image_bytes, mnist_or_blank
from mnist_edge_runtime.samples import CollectionFullError, SampleStore, parse_label, picture_suffix

WEB = Path(__file__).parent / "web"
LOG = logging.getLogger("mnist_edge_runtime.serve")
DRAIN_LIMIT = 64 * 1024 * 1024  # a refused body is discarded up to this size before answering
CLOSE = {"Connection": "close"}  # the rest of the body is not read: the connection cannot go on


@dataclass(frozen=True)
class ServeLimits:
    """What one server may take on; the defaults fit a 1 GB Raspberry Pi (see serve_hostile)."""

    max_body: int = 8 * 1024 * 1024  # an image upload
    max_json: int = 64 * 1024  # a 28x28 array is under 10 KB even pretty-printed
    max_buffered: int = 48 * 1024 * 1024  # all bodies held at once, uploads and queued
    max_decode_bytes: int = 64_000_000  # one image's decoding (preprocess.decode_cost)
    threads: int = 2  # worker threads: preprocessing and inference
    max_in_flight: int = 16  # requests received and being answered; more get 503
    body_timeout: float = 30.0  # seconds for a whole body; 408 after
    header_timeout: float = 10.0  # seconds for a request's headers (httpd)
    keep_alive: float = 5.0  # seconds an idle kept-alive connection stays open (httpd)
    max_connections: int = 0  # open connections; 0: derived from the file-descriptor limit (httpd)
    shutdown_timeout: float = 5.0  # seconds a graceful stop may wait for requests in flight
    allowed_hosts: tuple[str, ...] = field(default=())  # Host header names; empty: any
    # With --collect the server writes to disk, so a page from elsewhere must not reach it through
    # DNS rebinding: Host must then name this machine (its names, or the address a request came
    # in on) or one of allowed_hosts.
    own_hosts_only: bool = False


class RequestError(Exception):
    """A client's mistake: answered with ``status`` and a one-line JSON error."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers


def _starlette():
    try:
        import anyio
        import starlette  # noqa: F401
    except ImportError:
        raise RuntimeInputError(
            'serve needs Starlette and uvicorn: pip install "./runtime[serve]" in a checkout of mnist-edge'
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
        "scores": score_kind(classifier),
    }


def score_kind(classifier: Classifier) -> str | None:
    """'independent' (a sigmoid per digit: they may add up past 1), 'sum to one' (softmax), or None."""
    activation = classifier.model.activation
    if activation is None:  # a float model applies it inside; the manifest says which
        output = (classifier.manifest_entry or {}).get("output")
        said = str(output.get("confidence", "")) if isinstance(output, dict) else ""
        activation = "sigmoid" if "sigmoid" in said else "softmax" if "softmax" in said else None
    return {"sigmoid": "independent", "softmax": "sum to one"}.get(activation)


def is_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "application/json"


def _not_a_number(text: str) -> float:
    raise ValueError(f"{text} is not a pixel value")


def decode_body(
    body: bytes, content_type: str, max_decode_bytes: int = ServeLimits.max_decode_bytes
) -> np.ndarray:
    """The picture in a request body: JSON with a 28x28 array, or an encoded image."""
    if not body:
        raise RequestError(400, 'empty body: send an image (PNG, JPEG, ...) or JSON {"image": 28x28 numbers}')
    if is_json(content_type):
        return _json_pixels(json_document(body))
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":  # curl -F, an HTML form
        raise RequestError(
            400, "send the picture itself as the request body (curl --data-binary @digit.png), not a form"
        )
    try:
        return load_image_bytes(body, "body", max_decode_bytes)
    except RuntimeInputError as exc:
        raise RequestError(400, str(exc)) from None


def json_document(body: bytes) -> object:
    try:
        # Integers parse as floats: a 60,000-digit number costs no quadratic conversion and
        # overflows to infinity, which check_array refuses; NaN and Infinity are refused here.
        return json.loads(body, parse_int=float, parse_constant=_not_a_number)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RequestError(400, "body is not valid JSON (or nests too deep)") from None


def _json_pixels(document: object) -> np.ndarray:
    pixels = document.get("image") if isinstance(document, dict) else None
    if pixels is None:
        raise RequestError(400, 'JSON must be an object with "image": a 28x28 array of numbers')
    try:
        array = np.array(pixels, dtype=np.float64)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise RequestError(400, '"image" must be a 28x28 array of numbers') from None
    if array.shape != (SIDE, SIDE):
        raise RequestError(400, f'"image" must be 28x28, got shape {array.shape}')
    try:
        return check_array(array, '"image"')
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
    mnist, result = classified(classifier, picture)
    if with_image and result["digit"] is not None:
        result["mnist_image_png"] = png_base64(mnist)
    return result


def classified(classifier: Classifier, picture: np.ndarray) -> tuple[np.ndarray, dict]:
    """The picture's MNIST form and the answer to it, with the milliseconds each step took."""
    started = time.perf_counter()
    try:
        mnist = mnist_or_blank(picture, "picture")
    except RuntimeInputError as exc:
        raise RequestError(400, str(exc)) from None
    preprocessed = time.perf_counter()
    prediction = classifier.predict(mnist[None])[0]
    result = prediction.as_dict()
    result["ms"] = _ms(started, preprocessed, time.perf_counter())
    return mnist, result


def _label_or_none(text: object) -> str | None:
    try:
        return parse_label(text)
    except RuntimeInputError:
        return None


def collected(
    classifier: Classifier,
    store: SampleStore,
    body: bytes,
    content_type: str,
    label: str | None,
    model_sha256: str,
    limits: ServeLimits,
) -> dict:
    """Store one correction (runs in a worker thread): the picture as sent, its MNIST form, the
    label and the model's own answer to it."""
    if is_json(content_type):
        document = json_document(body)
        picture = _json_pixels(document)
        said = document.get("label") if isinstance(document, dict) else None
        if label is not None and said is not None and _label_or_none(said) != parse_label(label):
            raise RequestError(400, "two labels: give it in the query or in the JSON, not both")
        label = label if label is not None else said
        suffix = ".json"
    else:
        picture = decode_body(body, content_type, limits.max_decode_bytes)
        suffix = picture_suffix(body)
    if label is None:
        raise RequestError(400, 'no label: add ?label=0-9 or n (not a digit), or "label" in the JSON')
    try:
        label = parse_label(label)
    except RuntimeInputError as exc:
        raise RequestError(400, str(exc)) from None
    mnist, result = classified(classifier, picture)
    if result["digit"] is None:
        raise RequestError(400, f"nothing to learn from: {result['doubt']}")
    try:
        sample_id = store.add(body, suffix, mnist, label, result, model_sha256, "serve")
    except CollectionFullError as exc:
        raise RequestError(507, str(exc)) from None
    except OSError as exc:
        LOG.warning("cannot store a sample in %s: %s", store.folder, exc)
        raise RequestError(500, f"cannot store the sample ({exc.strerror or exc})") from None
    answer_ = {k: result[k] for k in ("digit", "confidence", "sure", "doubt")}
    return {"stored": sample_id, "label": label, "answer": answer_, "collect": store.status()}


def _ms(started: float, preprocessed: float, inferred: float | None = None) -> dict:
    return {
        "preprocess": round((preprocessed - started) * 1000, 3),
        "inference": round(((inferred or preprocessed) - preprocessed) * 1000, 3),
    }


class BodyBudget:
    """Bytes of request bodies held at once, across all requests (the event loop is one thread)."""

    def __init__(self, limit: int):
        self.limit, self.held = limit, 0

    def take(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        self.held -= size


async def read_body(request, limits: ServeLimits, budget: BodyBudget) -> tuple[bytes, int]:
    """The whole body and the budget it holds (give it back when done).

    Raises ``RequestError``: 400 bad length, 413 over the limit, 503 over the shared budget,
    408 not all there within ``body_timeout``. Refused bodies are read and discarded first, up
    to ``DRAIN_LIMIT``, so that a client that writes its whole body before reading the answer
    (Python's urllib, for one) receives it instead of a reset connection.
    """
    import anyio

    limit = limits.max_json if is_json(request.headers.get("content-type", "")) else limits.max_body
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise RequestError(400, f"Content-Length {declared[:20]!r} is not a number")
    too_large = RequestError(413, f"body over the {limit:,}-byte limit for this content type", CLOSE)
    busy = RequestError(503, "busy: too many uploads at once, try again", {"Retry-After": "1"})
    refusal = too_large if declared is not None and int(declared) > limit else None
    if refusal is not None and int(declared) > DRAIN_LIMIT:
        raise refusal  # not worth reading: answered at once, and the connection closed
    chunks: list[bytes] = []
    held = received = 0
    try:
        with anyio.fail_after(limits.body_timeout):
            async for chunk in request.stream():
                received += len(chunk)
                if refusal is None and received > limit:
                    refusal = too_large
                elif refusal is None and not budget.take(len(chunk)):
                    refusal = busy
                if refusal is not None:
                    chunks.clear()
                    budget.give(held)
                    held = 0
                    if received > DRAIN_LIMIT:
                        break
                    continue
                held += len(chunk)
                chunks.append(chunk)
    except TimeoutError:
        budget.give(held)
        raise RequestError(408, f"the body did not arrive within {limits.body_timeout:g} s", CLOSE) from None
    except BaseException:
        budget.give(held)
        raise
    if refusal is not None:
        raise refusal
    return b"".join(chunks), held


def create_app(classifier: Classifier, limits: ServeLimits = ServeLimits(), store: SampleStore | None = None):
    """The Starlette application serving one shared, thread-safe ``Classifier``, wrapped in the
    access log, the security headers and the same-origin rule (``guarded``). With a ``store``,
    ``POST /api/samples`` keeps corrections in it."""
    anyio = _starlette()
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from mnist_edge_runtime.httpd import release_freed_memory

    info = model_info(classifier)
    workers = anyio.CapacityLimiter(limits.threads)
    budget = BodyBudget(limits.max_buffered)
    working = {"now": 0}  # requests whose body has arrived, queued for or in a worker thread
    if limits.own_hosts_only:
        machine_names()  # looked up once now, not on a request

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    async def in_worker(request, work, status: int = 200):
        """Read the body, admit the request, run ``work(body)`` in a worker thread: its dict as JSON."""
        started = time.perf_counter()
        try:
            body, held = await read_body(request, limits, budget)
        except RequestError as exc:
            return error(exc.status, str(exc), exc.headers)
        except ClientDisconnect:
            request.scope[STATUS_FOR_LOG] = 499  # nginx's "client closed request": one log line
            return error(400, "client went away")  # never delivered
        if working["now"] >= limits.max_in_flight:
            budget.give(held)
            return error(503, "busy: too many requests in flight, try again", {"Retry-After": "1"})
        working["now"] += 1
        try:

            def run() -> dict:
                try:
                    return work(body)
                finally:
                    if len(body) > 256 * 1024:
                        release_freed_memory()  # a big decode's pages go back to the system

            result = await anyio.to_thread.run_sync(run, limiter=workers)
        except RequestError as exc:
            return error(exc.status, str(exc), exc.headers)
        finally:
            working["now"] -= 1
            budget.give(held)
        if "ms" in result:
            result["ms"]["total"] = round((time.perf_counter() - started) * 1000, 3)
        return JSONResponse(result, status_code=status)

    async def predict(request):
        with_image = request.query_params.get("image", "false").lower() in ("1", "true", "yes")
        content_type = request.headers.get("content-type", "")
        return await in_worker(
            request,
            lambda body: answer(
                classifier, decode_body(body, content_type, limits.max_decode_bytes), with_image
            ),
        )

    async def add_sample(request):
        if store is None:
            return error(404, "collection is off: start serve with --collect DIR")
        content_type = request.headers.get("content-type", "")
        labels = request.query_params.getlist("label")
        if len(labels) > 1:
            return error(400, "one label per sample: ?label= appears more than once")
        label = labels[0] if labels else None
        if label is not None:  # refused before the body is read or decoded
            try:
                parse_label(label)
            except RuntimeInputError as exc:
                return error(400, str(exc))
        return await in_worker(
            request,
            lambda body: collected(classifier, store, body, content_type, label, info["sha256"], limits),
            status=201,
        )

    async def model(request):
        return JSONResponse({**info, "collect": store.status() if store else {"on": False}})

    async def healthz(request):
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "in_flight": working["now"],
                "body_bytes_held": budget.held,
            }
        )

    async def page(request):
        return FileResponse(WEB / "index.html", media_type="text/html")

    async def http_error(request, exc: HTTPException):
        return error(exc.status_code, exc.detail if isinstance(exc.detail, str) else "error")

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/api/predict", predict, methods=["POST"]),
        Route("/api/samples", add_sample, methods=["POST"]),
        Route("/api/model", model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Mount("/static", StaticFiles(directory=WEB), name="static"),
    ]
    return guarded(Starlette(routes=routes, exception_handlers={HTTPException: http_error}), limits)


class _StopRequestedError(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise _StopRequestedError


def serve(
    classifier: Classifier,
    host: str,
    port: int,
    limits: ServeLimits,
    announce,
    log_level: str = "warning",
    store: SampleStore | None = None,
) -> None:
    """Run until Ctrl-C or SIGTERM, then return normally.

    A stop waits up to ``limits.shutdown_timeout`` seconds for requests in flight, then cancels
    them; a second signal stops at once. uvicorn restores the signal handlers it found and
    raises the signal again; the handlers installed here turn that into a normal return (exit 0).
    """
    _starlette()
    import signal
    import socket

    import uvicorn

    from mnist_edge_runtime import httpd

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    httpd.quiet_floods()
    httpd.tune_malloc()
    app = create_app(classifier, limits, store)
    gate = httpd.ConnectionGate.for_this_process(limits.max_connections)
    try:  # before announcing: a taken port is one line, exit 2
        listening = httpd.listening_socket(host, port, gate)
    except OSError as exc:
        raise RuntimeInputError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    where = page_addresses(host, port, limits.allowed_hosts, socket.gethostname())
    announce(f"serving {classifier.path.name} ({classifier.backend}) at {where}  (Ctrl-C stops)")
    if store is not None:
        announce(
            f"collecting corrections in {store.folder} ({store.count:,} stored, at most {store.max_samples:,});"
            " only for requests that name this machine"
        )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=httpd.guarded_protocol(limits.header_timeout, gate),
        log_level=log_level,
        access_log=False,  # guarded() writes one line per request, with its time
        lifespan="off",
        loop="asyncio",  # uvloop accepts in C, past the connection gate
        ws="none",  # an upgraded connection would leave the gate's count
        timeout_keep_alive=max(1, round(limits.keep_alive)),
        timeout_graceful_shutdown=max(1, round(limits.shutdown_timeout)),
        server_header=False,
        backlog=httpd.BACKLOG,
    )
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        httpd.stoppable_server(config).run(sockets=[listening])
    except _StopRequestedError:
        pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    announce("stopped")
