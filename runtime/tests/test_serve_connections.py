"""``serve`` as a process, over real sockets: what only a real server shows. The 413 that urllib
and httpx receive, the header deadline, the keep-alive time, the connection cap, the access log,
a client that goes away, the bounded stop, the command line's --allowed-hosts and --max-in-flight,
and the systemd unit.

These run on loaded CI machines and Raspberry Pis: they wait for events (an answer, a log line,
the server's own count of what it holds), never for a fixed time. Only the promises that are
times (a deadline, the keep-alive, a bounded stop) are timed, from below by the time itself and
from above with ``LATE`` seconds of room."""

from __future__ import annotations

import io
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import BUNDLE
from serving import PATIENCE, running_server, wait_until

pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")

from mnist_edge_runtime.serve import ServeLimits  # noqa: E402

HEADER_TIMEOUT = 1.0  # the module server's --header-timeout
LATE = 10.0  # seconds a timed promise may run over on a loaded 2-core machine or a Pi
FLOOD = 400  # idle connections opened against a server with ...
SERVER_DESCRIPTORS = 320  # ... this many file descriptors


@pytest.fixture(scope="module")
def server():
    options = ("--log-level", "info", "--header-timeout", f"{HEADER_TIMEOUT:g}", "--body-timeout", "2",
               "--max-body", "100000")  # fmt: skip
    with running_server(BUNDLE, *options) as server:
        yield server
    assert server.process.returncode == 0


def _health(server) -> dict:
    return httpx.get(server.url + "/healthz", timeout=PATIENCE).json()


def _wait_for_bodies(server, size: int) -> None:
    """Until the server holds ``size`` bytes of request bodies: it has read what was sent."""
    wait_until(lambda: _health(server)["body_bytes_held"] == size, f"the server held {size} body bytes")


def _read_until_closed(s: socket.socket) -> bytes:
    answer = b""
    try:
        while chunk := s.recv(4096):
            answer += chunk
    except ConnectionResetError:  # what arrived before the reset was read
        pass
    return answer


def _read_response(s: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length, read from a connection that stays open."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        assert chunk, f"closed before a whole response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = s.recv(4096)
        assert chunk, f"closed before a whole response: {data!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url + "/api/predict", data=body, headers={"Content-Type": "image/png"})
    try:
        with urllib.request.urlopen(request, timeout=PATIENCE) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_body_over_the_limit_is_a_413_that_urllib_and_httpx_receive(server):
    # urllib writes the whole body before it reads: an answer sent without reading it was a reset.
    assert _post(server.url, b"\x00" * 300_000) == 413
    response = httpx.post(server.url + "/api/predict", content=b"\x00" * 300_000, timeout=PATIENCE)
    assert response.status_code == 413


def test_half_sent_headers_get_a_408_and_the_connection_closed(server):
    # Timed from before the connection: the server's deadline starts at it, never earlier.
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        # A header line every 0.2 s until the answer comes: trickled bytes do not extend the
        # deadline, or no answer comes within LATE.
        while not select.select([s], [], [], 0.2)[0] and time.monotonic() - started < HEADER_TIMEOUT + LATE:
            try:
                s.sendall(b"X-A: b\r\n")
            except OSError:  # closed between the check and the line: the answer is waiting
                break
        answer = _read_until_closed(s)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert HEADER_TIMEOUT - 0.1 < elapsed < HEADER_TIMEOUT + LATE


def test_a_connection_that_sends_nothing_is_closed(server):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as s:
        assert s.recv(4096) == b""  # closed by the server, nothing said
    assert HEADER_TIMEOUT - 0.1 < time.monotonic() - started < HEADER_TIMEOUT + LATE


def test_a_slow_body_gets_a_408_and_releases_its_slot(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as s:
        s.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\nab"
        )
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408")
    assert _health(server)["body_bytes_held"] == 0


def test_one_access_log_line_per_request_and_one_for_a_client_that_went_away(server):
    httpx.get(server.url + "/api/model", timeout=PATIENCE)
    with socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as s:
        s.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\nab"
        )
        _wait_for_bodies(server, 2)  # the upload has begun: this client goes away in the middle
    server.wait_for_output('"POST /api/predict" 499')
    output = server.stop()
    assert server.process.returncode == 0
    assert output.count('"GET /api/model" 200') == 1
    assert output.count('"POST /api/predict" 499') == 1  # the client that went away: one line
    assert "Traceback" not in output


def test_a_silent_server_writes_no_access_log():
    with running_server(BUNDLE) as server:
        httpx.get(server.url + "/api/model", timeout=PATIENCE)
        output = server.stop()
    assert "/api/model" not in output and "stopped" in output


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_time():
    keep_alive = ServeLimits.keep_alive  # not an option: every serve keeps connections this long
    # A header deadline longer than the test: only the keep-alive timer can close the connection.
    with (
        running_server(BUNDLE, "--header-timeout", "600") as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as s,
    ):
        for _ in range(2):  # kept alive: the second request is answered on the same connection
            started = time.monotonic()  # before the request: the timer starts after its answer
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(s).startswith(b"HTTP/1.1 200")
        s.settimeout(keep_alive + 2 * LATE)  # a connection kept open for good fails sooner
        closed = _read_until_closed(s)
        idle = time.monotonic() - started
    assert closed == b"" and keep_alive - 0.1 < idle < keep_alive + LATE


def test_allowed_hosts_on_the_command_line_refuse_other_host_headers():
    with running_server(BUNDLE, "--allowed-hosts", "Pi.Local, 192.168.1.20") as server:

        def get(host: str) -> httpx.Response:
            return httpx.get(server.url + "/healthz", headers={"host": host}, timeout=PATIENCE)

        named, numeric, other = get("pi.local:8000"), get("192.168.1.20"), get("attacker.example")
    assert named.status_code == 200 and numeric.status_code == 200
    assert other.status_code == 400 and "--allowed-hosts" in other.json()["error"]


def test_the_start_line_with_allowed_hosts_names_an_address_it_serves():
    with running_server(BUNDLE, "--allowed-hosts", "pi.local") as server:
        line = server.wait_for_output("serving ")
        netlocs = re.findall(r"http://(\S+?)/", line)
        assert netlocs, line
        answers = [
            httpx.get(server.url + "/healthz", headers={"host": netloc}, timeout=PATIENCE).status_code
            for netloc in netlocs
        ]
    assert answers == [200] * len(netlocs), line


def _costly_png() -> bytes:
    """A 24 KB PNG that takes a worker thread about 0.1 s (x86) to several (a Pi) to answer."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (4000, 4000), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def test_max_in_flight_on_the_command_line_turns_requests_over_it_away():
    pytest.importorskip("PIL")
    body, requests = _costly_png(), 5
    head = b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n"
    with running_server(BUNDLE, "--max-in-flight", "2", "--threads", "1") as server:
        uploads = [
            socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) for _ in range(requests)
        ]
        try:
            for s in uploads:
                s.sendall(head % len(body) + body[:-1])
            _wait_for_bodies(server, requests * (len(body) - 1))
            for s in uploads:  # every body completes at once: five requests to work on, room for two
                s.sendall(body[-1:])
            answers = [_read_response(s) for s in uploads]
        finally:
            for s in uploads:
                s.close()
    statuses = [int(answer.split(b" ", 2)[1]) for answer in answers]
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 2 and statuses.count(503) >= 1, statuses
    for answer in answers:
        if b" 503 " in answer.split(b"\r\n", 1)[0]:
            assert b"retry-after: 1\r\n" in answer.lower() and b"too many requests in flight" in answer


@pytest.fixture()
def descriptors_for_a_flood():
    """The flood's sockets, pytest's own files and the queries: the soft limit raised for them,
    up to the hard limit."""
    needed = FLOOD + 128
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        yield
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs {needed} file descriptors; the hard limit here is {hard} (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _taken_in(port: int) -> bool:
    """Linux: no connection to ``port`` is waiting in the kernel, neither half-open (SYN_RECV,
    its handshake's last ACK dropped while the queue was full) nor in the accept queue."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state, queues = line.split()[1:4]
        if int(local.rsplit(":", 1)[1], 16) != port:
            continue
        if state == "03" or (state == "0A" and int(queues.split(":")[1], 16) > 0):
            return False  # for a listening socket, rx_queue is its accept queue
    return True


def test_idle_connections_beyond_the_cap_do_not_lock_others_out(descriptors_for_a_flood):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("reads the kernel's connection queues from /proc/net/tcp (Linux)")

    def answered(url: str) -> bool:
        try:
            return httpx.get(url + "/healthz", timeout=PATIENCE).status_code == 200
        except httpx.TransportError:  # closed to make room: not answered
            return False

    idle = []
    with running_server(BUNDLE, descriptors=SERVER_DESCRIPTORS) as server:
        try:
            for i in range(FLOOD):  # more than the server's descriptors
                s = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)
                if i % 2:
                    s.sendall(b"GET / HTTP/1.1\r\nHo")
                idle.append(s)
            # Once the server has taken in the flood: each connection still queued closes the
            # longest-waiting idle one when it is met, a fresh one too. Accepted connections are
            # met in the order they were accepted, so a query made after that is met after them.
            wait_until(lambda: _taken_in(server.port), "the server accepted every connection of the flood")
            count = sum(answered(server.url) for _ in range(20))
            descriptors = len(os.listdir(f"/proc/{server.process.pid}/fd"))
        finally:
            for s in idle:
                s.close()
        output = server.stop()
    assert count == 20 and descriptors < SERVER_DESCRIPTORS
    assert "Too many open files" not in output and "Traceback" not in output


def _upload_in_progress(server) -> socket.socket:
    """A connection whose request body never finishes, once the server has begun reading it."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)
    s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
    _wait_for_bodies(server, 2)
    return s


def test_a_stop_is_bounded_and_a_second_signal_stops_at_once():
    shutdown = ServeLimits.shutdown_timeout  # the wait for requests in flight, then they are cancelled
    with running_server(BUNDLE, "--body-timeout", "600") as first:
        slow = _upload_in_progress(first)
        started = time.monotonic()
        output = first.stop(timeout=shutdown + LATE + PATIENCE)
        graceful = time.monotonic() - started
    with running_server(BUNDLE, "--body-timeout", "600", "--log-level", "info") as second:
        slow2 = _upload_in_progress(second)
        second.process.send_signal(signal.SIGTERM)
        second.wait_for_output("Shutting down")  # the first signal is being handled
        started = time.monotonic()
        output += second.stop(timeout=shutdown + LATE + PATIENCE)
        forced = time.monotonic() - started
    slow.close()
    slow2.close()
    assert first.process.returncode == 0 and graceful < shutdown + LATE
    # Without the second signal this stop would take the rest of the 5 s: 4 s is its bound.
    assert second.process.returncode == 0 and forced < shutdown - 1
    assert "second SIGTERM: stopping now" in output
    # The upload that a stop cancels is one line in the log, not a traceback.
    assert "request in flight was cancelled" in output and "Traceback" not in output


def test_the_systemd_unit_runs_this_serve_and_verifies(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", "serve", "--bundle", str(BUNDLE), "--host", "0.0.0.0",
         "--allowed-hosts", "pi.local", "--systemd-unit"],
        capture_output=True, text=True, timeout=PATIENCE,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    unit = done.stdout
    exec_line = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert (
        os.path.abspath(sys.executable) in exec_line
        and str((BUNDLE / "conv2d.int8.tflite").resolve()) in exec_line
    )
    assert "--host 0.0.0.0" in exec_line and "--allowed-hosts pi.local" in exec_line
    for setting in ("Restart=on-failure", "MemoryMax=", "NoNewPrivileges=yes", "TimeoutStopSec="):
        assert setting in unit
    assert "DynamicUser=yes" in unit or "User=" in unit
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (the unit's text was checked)")
    path = tmp_path / "mnist-edge.service"
    path.write_text(unit)
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=PATIENCE
    )
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr


def test_the_unit_warns_of_a_model_that_private_tmp_would_hide(tmp_path):
    shutil.copytree(BUNDLE, tmp_path / "bundle")
    done = subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", "serve", "--bundle", str(tmp_path / "bundle"), "--systemd-unit"],
        capture_output=True, text=True, timeout=PATIENCE,
    )  # fmt: skip
    hidden = any(str(Path(p).resolve()).startswith(("/tmp/", "/var/tmp/")) for p in (tmp_path, sys.prefix))
    assert done.returncode == 0 and "PrivateTmp=yes" in done.stdout
    assert ("PrivateTmp=yes hides" in done.stderr and done.stderr.count("\n") == 1) == hidden, done.stderr


def test_a_missing_model_is_one_line_for_the_unit_too(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", "serve", "--bundle", str(tmp_path), "--systemd-unit"],
        capture_output=True, text=True, timeout=PATIENCE,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no such model file" in done.stderr
