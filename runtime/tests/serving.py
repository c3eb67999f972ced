"""Start ``mnist-edge-runtime serve`` on a free local port, for the browser test and the load benchmark."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(bundle: Path, *options: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """The server's URL and process while it runs; it is stopped with SIGTERM afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mnist_edge_runtime",
            "serve",
            "--bundle",
            str(bundle),
            "--port",
            str(port),
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"serve exited: {process.stdout.read()}") from None
                time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM: uvicorn finishes what is in flight, then exits 0
            process.wait(timeout=30)
