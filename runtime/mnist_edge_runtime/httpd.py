"""The HTTP server under ``serve``'s application: uvicorn, policed for a small device.

uvicorn alone waits forever for a request's headers (a keep-alive timer starts only after a
response, and any byte resets it), accepts connections until the process runs out of file
descriptors (then logs every failed ``accept()``), ignores a second SIGTERM, and never gives
freed memory back. What is added here:

* a deadline for each request's headers, counted from the connection or the previous answer and
  never reset by trickled bytes (408 when some arrived, a plain close when none did);
* a cap on open connections below the descriptor limit: a new connection over the cap closes one
  that was closed but not yet gone, else the one that has waited longest for its request, or is
  itself closed when every connection is at work; a client that stops reading what it is sent
  is cut off after 30 s;
  a hard ceiling, counted at ``accept()``, keeps a flood from ever exhausting the descriptors;
* ``accept()`` errors, and the warnings a client can cause at will, logged at most once a minute;
  a request cancelled by a stop logged in one line, not with a traceback;
* a bounded graceful stop, and a second signal that stops at once;
* glibc malloc told to return big blocks to the system (``tune_malloc``).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import resource
import signal
import socket
import time

LOG = logging.getLogger("mnist_edge_runtime.serve")
BACKLOG = 128  # the kernel's queue of connections not yet accepted
FD_RESERVE = 64  # descriptors kept for the model, the logs and the worker threads


class ConnectionGate:
    """Open connections, counted from ``accept()`` to ``connection_lost``.

    asyncio accepts a batch of connections each time the listening socket wakes it, and meets
    them (``connection_made``) some loop turns later: under a flood of connections, hundreds can
    be open before the protocol sees the first. The gate counts at ``accept()`` itself and closes
    what is over ``ceiling`` there, so descriptors never run out; ``cap`` (lower) is where the
    protocol starts closing the connections that have waited longest for their request.
    """

    def __init__(self, cap: int, ceiling: int):
        self.cap, self.ceiling, self.open = cap, ceiling, 0

    @classmethod
    def for_this_process(cls, requested: int = 0) -> ConnectionGate:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = soft if soft != resource.RLIM_INFINITY else 65536
        ceiling = max(16, limit - FD_RESERVE)
        cap = min(requested, ceiling) if requested else max(8, min(ceiling - 2 * BACKLOG, 4096))
        return cls(cap, ceiling)


class _GatedSocket(socket.socket):
    gate: ConnectionGate

    def accept(self):
        for _ in range(64):  # then back to the event loop, whatever is still waiting
            connection, address = super().accept()  # BlockingIOError when none is waiting
            if self.gate.open < self.gate.ceiling:
                self.gate.open += 1
                return connection, address
            connection.close()  # over the ceiling: refused, its descriptor freed at once
        raise BlockingIOError


def listening_socket(host: str, port: int, gate: ConnectionGate) -> socket.socket:
    """A bound TCP socket whose ``accept()`` goes through ``gate``; OSError if it cannot bind."""
    sock = _GatedSocket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.gate = gate
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it a kept-alive connection's answers wait
    # 40 ms for a delayed ACK (measured: 44 ms a request instead of 0.4 to 2 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def guarded_protocol(header_timeout: float, gate: ConnectionGate, write_timeout: float = 30.0) -> type:
    """uvicorn's h11 protocol with the header deadline, a deadline for a client that stops reading,
    and the connection cap."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.deadline = self.stalled = None
            self.evicted = False
            self.partial = False  # bytes of a request arrived, its headers not yet complete
            self.waiting_since = time.monotonic()
            if len(self.connections) > gate.cap:
                # Closed but not yet gone (a client that does not read what it is sent) first,
                # then the connection that has waited longest for its request.
                idle = [c for c in self.connections if c is not self and not c.evicted and c.evictable()]
                victim = min(
                    idle, key=lambda c: (not c.transport.is_closing(), c.waiting_since), default=None
                )
                if victim is None:  # every other connection is at work: refuse this one
                    self.evicted = True
                    transport.abort()
                    return
                victim.evicted = True
                victim.disarm()
                victim.transport.abort()  # at once: close() would wait for its unread data
            self.arm()

        def evictable(self) -> bool:
            if self.transport.is_closing():
                return True
            return getattr(self, "deadline", None) is not None and (
                self.cycle is None or self.cycle.response_complete
            )

        def pause_writing(self) -> None:
            # The client does not read what it is sent: it has write_timeout to start again.
            super().pause_writing()
            if self.stalled is None:
                self.stalled = self.loop.call_later(write_timeout, self.transport.abort)

        def resume_writing(self) -> None:
            super().resume_writing()
            if self.stalled is not None:
                self.stalled.cancel()
                self.stalled = None

        def arm(self) -> None:
            self.disarm()
            self.deadline = self.loop.call_later(header_timeout, self.headers_too_slow)

        def disarm(self) -> None:
            if getattr(self, "deadline", None) is not None:
                self.deadline.cancel()
                self.deadline = None

        def headers_too_slow(self) -> None:
            self.deadline = None
            if self.transport.is_closing() or not (self.cycle is None or self.cycle.response_complete):
                return
            if not self.partial:
                self.transport.abort()  # nothing was said: nothing to answer
                return
            body = b'{"error": "request headers did not arrive in time"}'
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            )
            self.transport.close()
            # A client that does not read even that is let go a little later.
            self.loop.call_later(5, self.transport.abort)

        def data_received(self, data: bytes) -> None:
            if self.cycle is None or self.cycle.response_complete:
                self.partial = True
            super().data_received(data)

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and not self.cycle.response_complete:
                self.disarm()  # a request's headers are complete: the body has its own deadline
                self.partial = False

        def on_response_complete(self) -> None:
            # Armed before uvicorn looks at pipelined requests, which disarm it again.
            self.waiting_since = time.monotonic()
            self.partial = False
            if not self.transport.is_closing():
                self.arm()
            super().on_response_complete()

        def connection_lost(self, exc) -> None:
            self.disarm()
            if self.stalled is not None:
                self.stalled.cancel()
            gate.open -= 1
            super().connection_lost(exc)

    return GuardedH11Protocol


def stoppable_server(config):
    """A uvicorn server that a second SIGINT or SIGTERM stops at once (uvicorn: SIGINT only)."""
    import uvicorn

    class StoppableServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame) -> None:
            if self.should_exit:
                self.force_exit = True
                LOG.warning("second %s: stopping now", signal.Signals(sig).name)
            super().handle_exit(sig, frame)

    return StoppableServer(config)


class OncePerMinute(logging.Filter):
    """Lets a message through at most once a minute (``accept()`` errors come in floods)."""

    def __init__(self, text: str):
        super().__init__()
        self.text, self.last, self.dropped = text, -3600.0, 0

    def filter(self, record: logging.LogRecord) -> bool:
        if self.text not in record.getMessage():
            return True
        now = time.monotonic()
        if now - self.last < 60:
            self.dropped += 1
            return False
        self.last = now
        if self.dropped:
            record.msg = f"{record.getMessage()} (and {self.dropped} more in the last minute)"
            record.args = ()
            self.dropped = 0
        return True


class CancelledInOneLine(logging.Filter):
    """A request that a stop cancels is one warning line, not uvicorn's error with a traceback
    (any client with an upload in progress at a restart would put 40 lines in the journal)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            record.msg, record.args = "a request in flight was cancelled: the server is stopping", ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_floods() -> None:
    """Messages a client can cause at will are logged at most once a minute, and in one line."""
    logging.getLogger("asyncio").addFilter(OncePerMinute("accept"))
    for text in ("Invalid HTTP request", "Unsupported upgrade", "No supported WebSocket"):
        logging.getLogger("uvicorn.error").addFilter(OncePerMinute(text))
    logging.getLogger("uvicorn.error").addFilter(CancelledInOneLine())


_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
            _LIBC = libc if libc is not None and hasattr(libc, "malloc_trim") else False
        except OSError:
            _LIBC = False
    return _LIBC


def tune_malloc() -> None:
    """glibc only: blocks of 1 MiB and more are mapped on their own, so freeing one returns it to
    the system at once (glibc's default threshold grows to 32 MiB after big frees, keeping a
    decoded image's memory in the process), and two arenas rather than eight per core."""
    libc = _libc()
    if libc:
        m_mmap_threshold, m_arena_max = -3, -8
        libc.mallopt(m_mmap_threshold, 1024 * 1024)
        libc.mallopt(m_arena_max, 2)


def release_freed_memory() -> None:
    """glibc only: give the free pages of every arena back to the system."""
    libc = _libc()
    if libc:
        libc.malloc_trim(0)
