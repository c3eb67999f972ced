"""Who may ask ``serve`` what: the Host and same-origin rules, the security headers every response
carries, and one access-log line per request (``guarded``, the ASGI wrapper around the app).

The Host rule: with ``--allowed-hosts`` the Host header must name one of them or a loopback name;
with ``--collect`` (the server then writes to disk) it must name this machine (its names, or the
address the request came in on) or one of ``--allowed-hosts``, so that a page from elsewhere cannot
reach it through DNS rebinding. The Origin rule: a POST from another site's page is refused (403).
"""

from __future__ import annotations

import functools
import json
import logging
import time

LOG = logging.getLogger("mnist_edge_runtime.serve")  # the server's log: one line per request
STATUS_FOR_LOG = "mnist_edge.status"  # scope key: the status to log when none was sent

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none';"
     b" form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]  # fmt: skip


def guarded(app, limits):
    """ASGI wrapper: the Host rule, the same-origin rule for POSTs, security headers on every
    response, and one access-log line per request (``--log-level info``)."""

    async def guarded_app(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        started, status = time.perf_counter(), [499]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        try:
            refusal = refused(scope, limits)
            if refusal is not None:
                await _send_json(send_with_headers, *refusal)
            else:
                await app(scope, receive, send_with_headers)
        finally:
            client = scope.get("client") or ("-", 0)
            LOG.info(
                '%s "%s %s" %d %.1f ms', client[0], scope["method"],
                json.dumps(scope["path"][:200])[1:-1],  # control characters escaped: one line each
                scope.get(STATUS_FOR_LOG, status[0]),
                (time.perf_counter() - started) * 1000,
            )  # fmt: skip

    return guarded_app


def refused(scope: dict, limits) -> tuple[int, str] | None:
    """(status, message) when the Host or the Origin rule refuses a request."""
    wanted = (b"host", b"origin", b"sec-fetch-site")
    headers = {name.decode(): value.decode("latin-1") for name, value in scope["headers"] if name in wanted}
    host = headers.get("host", "")
    # The machine's own names pass too: a rebinding page carries its own name in Host, never
    # these, and they are where serve's start line sends a browser on the machine itself.
    if limits.own_hosts_only and not own_host(host_name(host), scope, limits.allowed_hosts):
        return (
            400,
            f"host {host[:100]!r} is not this machine's name or address: refused while collecting (--allowed-hosts adds names)",
        )
    if limits.allowed_hosts and host_name(host) not in (*limits.allowed_hosts, *LOOPBACK_NAMES):
        return 400, f"host {host[:100]!r} is not served here (--allowed-hosts)"
    if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
        origin = headers.get("origin")
        cross = origin is not None and origin.split("://", 1)[-1] != host
        if cross or headers.get("sec-fetch-site") == "cross-site":
            return 403, "cross-site request refused: send it from this server's own page or without an Origin"
    return None


def own_host(name: str, scope: dict, allowed_hosts: tuple[str, ...]) -> bool:
    """Whether a Host names this machine: a loopback name, its host name (also with .local, and
    fully qualified), the address the request came in on, or one of ``allowed_hosts``."""
    server = scope.get("server") or ("", 0)
    return name in (*LOOPBACK_NAMES, *allowed_hosts, *machine_names(), str(server[0]).lower())


@functools.lru_cache(maxsize=1)
def machine_names() -> tuple[str, ...]:
    import socket

    name = socket.gethostname().lower()
    return tuple({name, f"{name}.local", socket.getfqdn().lower()} - {""})


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def page_addresses(host: str, port: int, allowed_hosts: tuple[str, ...], machine: str) -> str:
    """Where to open the page, as the start line says: only addresses this server answers."""
    if host in ("0.0.0.0", "::"):
        network = [f"{machine}.local"]
        if allowed_hosts and network[0].lower() not in allowed_hosts:
            network = list(allowed_hosts)
        urls = ", ".join(_url(name, port) for name in network)
        return f"{urls} from other devices, {_url('localhost', port)} here"
    name = "localhost" if host in ("127.0.0.1", "::1") else host
    if allowed_hosts and host_name(name) not in (*allowed_hosts, *LOOPBACK_NAMES):
        return ", ".join(_url(allowed, port) for allowed in allowed_hosts)
    return _url(name, port)


def _url(name: str, port: int) -> str:
    return f"http://[{name}]:{port}/" if ":" in name else f"http://{name}:{port}/"


def host_name(host: str) -> str:
    """'pi.local:8000' -> 'pi.local'; '[::1]:8000' -> '::1'."""
    if host.startswith("["):
        return host[1 : host.find("]")].lower()
    return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()


async def _send_json(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
