"""Start ``mnist-edge-runtime serve`` on a free local port, for the serve and browser tests and the
load benchmark, and wait on what it does rather than for a fixed time.

A test machine can be a loaded 2-core CI runner or a Raspberry Pi: every wait here is for an
event (the server answers, a log line appears, a condition holds), with a deadline far beyond
what an idle machine needs, so that only a server that never does it fails.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

PATIENCE = 60.0  # seconds: the deadline of every wait for something that should happen

# Runs the CLI with a descriptor limit set in the child itself (preexec_fn is not safe with the
# output-reading threads this module starts).
_LIMITED = (
    "import resource, runpy, sys; n = int(sys.argv.pop(1));"
    " resource.setrlimit(resource.RLIMIT_NOFILE, (n, n));"
    " runpy.run_module('mnist_edge_runtime', run_name='__main__', alter_sys=True)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], object], what: str, timeout: float = PATIENCE) -> object:
    """The first true value of ``condition()``, polled; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.02)


class Server:
    """A running ``serve`` process. Its output is read as it comes by a thread, so that a busy
    access log never fills the pipe (which would stop the server) and tests can wait for a line.
    Unpacks as ``url, process``; use ``output``/``stop`` rather than ``process.communicate``."""

    def __init__(self, process: subprocess.Popen, port: int):
        self.process, self.port = process, port
        self.url = f"http://127.0.0.1:{port}"
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def __iter__(self) -> Iterator:
        return iter((self.url, self.process))

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def wait_for_output(self, text: str, timeout: float = PATIENCE) -> str:
        """All output so far, once it contains ``text``."""

        def seen() -> bool:
            if text in self.output:
                return True
            if self.process.poll() is not None:
                self._reader.join(timeout)
                if text not in self.output:
                    raise AssertionError(f"serve exited without {text!r}: {self.output}")
            return text in self.output

        wait_until(seen, f"serve printed {text!r}; it printed: {self.output}", timeout)
        return self.output

    def stop(self, sig: int = signal.SIGTERM, timeout: float = PATIENCE) -> str:
        """Send ``sig`` (SIGTERM: uvicorn finishes what is in flight, then exits 0) and wait for
        the exit; all the output."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout)
        self._reader.join(timeout)
        return self.output


def serve_command(bundle: Path, port: int, *options: str, descriptors: int | None = None) -> list[str]:
    cli = ["serve", "--bundle", str(bundle), "--port", str(port), *options]
    if descriptors is None:
        return [sys.executable, "-m", "mnist_edge_runtime", *cli]
    return [sys.executable, "-c", _LIMITED, str(descriptors), *cli]


@contextlib.contextmanager
def running_server(bundle: Path, *options: str, descriptors: int | None = None) -> Iterator[Server]:
    """The server once it answers ``/healthz``; stopped with SIGTERM afterwards. ``descriptors``:
    its file-descriptor limit (soft and hard)."""
    port = free_port()
    process = subprocess.Popen(
        serve_command(bundle, port, *options, descriptors=descriptors),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(process, port)

    def answers() -> bool:
        if process.poll() is not None:
            server.stop()
            raise RuntimeError(f"serve exited: {server.output}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=PATIENCE):
                return True
        except urllib.error.HTTPError:  # an answer all the same (a Host that --allowed-hosts refuses)
            return True
        except OSError:
            return False

    try:
        # Starting imports numpy, the interpreter and the web stack: seconds on a loaded Pi.
        wait_until(answers, "serve answered /healthz", timeout=2 * PATIENCE)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(PATIENCE)
        server._reader.join(PATIENCE)
        process.stdout.close()
