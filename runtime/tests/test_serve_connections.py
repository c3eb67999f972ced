"""``serve`` as a process, over real sockets: what only a real server shows. The 413 that urllib
and httpx receive, the header deadline, the connection cap, the access log, a client that goes
away, the bounded stop, and the systemd unit."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import BUNDLE
from serving import running_server

pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def server():
    options = ("--log-level", "info", "--header-timeout", "1", "--body-timeout", "2", "--max-body", "100000")
    with running_server(BUNDLE, *options) as (url, process):
        yield url, process
    assert process.returncode == 0


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url + "/api/predict", data=body, headers={"Content-Type": "image/png"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_body_over_the_limit_is_a_413_that_urllib_and_httpx_receive(server):
    url, _ = server
    # urllib writes the whole body before it reads: an answer sent without reading it was a reset.
    assert _post(url, b"\x00" * 300_000) == 413
    assert httpx.post(url + "/api/predict", content=b"\x00" * 300_000, timeout=10).status_code == 413


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_half_sent_headers_get_a_408_and_the_connection_closed(server):
    url, _ = server
    with socket.create_connection(("127.0.0.1", _port(url)), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        started = time.monotonic()
        for _ in range(3):  # a header line every 0.3 s: the deadline (1 s) is not extended by them
            time.sleep(0.3)
            s.sendall(b"X-A: b\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408") and 0.9 < elapsed < 1.6


def test_a_connection_that_sends_nothing_is_closed(server):
    url, _ = server
    with socket.create_connection(("127.0.0.1", _port(url)), timeout=10) as s:
        started = time.monotonic()
        assert s.recv(4096) == b""  # closed by the server, nothing said
    assert time.monotonic() - started < 5


def test_a_slow_body_gets_a_408_and_releases_its_slot(server):
    url, _ = server
    with socket.create_connection(("127.0.0.1", _port(url)), timeout=10) as s:
        s.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\nab"
        )
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408")
    assert httpx.get(url + "/healthz").json()["body_bytes_held"] == 0


def test_one_access_log_line_per_request_and_one_for_a_client_that_went_away(server):
    url, process = server
    httpx.get(url + "/api/model")
    with socket.create_connection(("127.0.0.1", _port(url)), timeout=10) as s:
        s.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\nab"
        )
        time.sleep(0.3)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=20)[0]
    assert process.returncode == 0
    assert '"GET /api/model" 200' in output
    assert '"POST /api/predict" 499' in output  # the client that went away: one line
    assert "Traceback" not in output


def test_a_silent_server_writes_no_access_log(tmp_path):
    with running_server(BUNDLE) as (url, process):
        httpx.get(url + "/api/model")
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert "/api/model" not in output and "stopped" in output


def _limit_descriptors(n: int):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


def test_idle_connections_beyond_the_cap_do_not_lock_others_out():
    import serving

    port = serving.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_edge_runtime", "serve", "--bundle", str(BUNDLE), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_limit_descriptors(320),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    idle = []
    try:
        for _ in range(300):
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        for i in range(400):  # more than the 320 descriptors the server has
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i % 2:
                s.sendall(b"GET / HTTP/1.1\r\nHo")
            idle.append(s)
        # Once the server has taken in the flood (its queue holds up to 128 connections not yet
        # accepted, each of which still closes the longest-waiting idle one, a fresh one too).
        time.sleep(1.5)
        answered = sum(httpx.get(url + "/healthz", timeout=5).status_code == 200 for _ in range(20))
        descriptors = len(list(__import__("os").listdir(f"/proc/{process.pid}/fd")))
    finally:
        for s in idle:
            s.close()
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert answered == 20 and descriptors < 320
    assert "Too many open files" not in output and "Traceback" not in output


def test_a_stop_is_bounded_and_a_second_signal_stops_at_once():
    with running_server(BUNDLE, "--body-timeout", "60") as (url, process):
        slow = socket.create_connection(("127.0.0.1", _port(url)), timeout=30)
        slow.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab"
        )  # never finishes
        time.sleep(0.3)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        graceful = time.monotonic() - started
    with running_server(BUNDLE, "--body-timeout", "60") as (url, second):
        slow2 = socket.create_connection(("127.0.0.1", _port(url)), timeout=30)
        slow2.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
        time.sleep(0.3)
        second.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        started = time.monotonic()
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
        forced = time.monotonic() - started
    slow.close()
    slow2.close()
    assert process.returncode == 0 and graceful < 8  # 5 s for requests in flight, then they are cancelled
    assert second.returncode == 0 and forced < 2


def test_the_systemd_unit_runs_this_serve_and_verifies(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", "serve", "--bundle", str(BUNDLE), "--host", "0.0.0.0",
         "--allowed-hosts", "pi.local", "--systemd-unit"],
        capture_output=True, text=True, timeout=60,
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
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr


def test_a_missing_model_is_one_line_for_the_unit_too(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", "serve", "--bundle", str(tmp_path), "--systemd-unit"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no such model file" in done.stderr
