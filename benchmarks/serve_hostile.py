"""``serve`` under hostile clients, as a 1 GB Raspberry Pi would meet them: memory, slots, descriptors.

Starts ``mnist-edge-runtime serve`` with its defaults on 127.0.0.1 (loopback only) under a
file-descriptor limit of 1024 (a Pi user's or a systemd service's usual limit) and runs, each
phase bounded in time:

1. **decode bombs**: small files that decode big (16-megapixel RGBA PNG/WebP/TIFF, a
   1x16,000,000 PNG, a transparent palette PNG, a 16-bit PNG, a 48-megapixel JPEG), the biggest
   noise PNGs the server still reads (6-megapixel gray, 4-megapixel RGB) and hostile
   JSON (7 MB of ``[]``, nesting 3,000 deep, 5,000-digit integers), 16 at a time: the server's
   peak RSS, whether it is back near idle afterwards, and any 500;
2. **slow uploads**: 16 clients declaring a 100,000-byte body and sending a byte every 2 s, while
   ordinary requests (a drawing from the page) keep coming: the share answered;
3. **idle connections**: 1,100 connections that send nothing or half a request line, opened at
   once by 20 threads and reopened when closed, while ordinary requests keep coming: the share
   answered, the log lines written;
4. **413 received**: a 9 MiB body sent by Python's urllib (which writes the whole body before
   reading): whether it reads the 413.

``--baseline REV`` runs the same phases against the runtime of an earlier commit in the same run
(a temporary git worktree). ``--quick`` is CI's version (shorter phases); ``--check`` exits 1
when a floor is missed: peak RSS <= 300 MB, back within 60 MB of idle, no 500, >= 90% of
ordinary requests answered under slow uploads and idle connections, 413 received.

    python benchmarks/serve_hostile.py                   # -> benchmarks/results/serve_hostile.{json,md}
    python benchmarks/serve_hostile.py --baseline 44d6141
    python benchmarks/serve_hostile.py --quick --check   # CI
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "runtime"))
from mnist_edge_runtime.idx import read_images_and_labels  # noqa: E402
from mnist_edge_runtime.machine import describe_machine, one_line  # noqa: E402
from script_parser import script_parser  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MNIST = ROOT / "mnist_edge" / "datasets" / "mnist"
FLOORS = {"peak_rss_mb": 300, "rss_above_idle_after_mb": 60, "answered_share": 0.90}


# --- the hostile bodies ---------------------------------------------------------------------------


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def hostile_bodies() -> dict[str, tuple[bytes, str]]:
    """name -> (body, content type): each a few KB to a few MB that costs far more to read."""
    rgba = Image.new("RGBA", (4000, 3990), (255, 255, 255, 0))
    palette = Image.new("P", (4000, 3990), 0)
    rng = np.random.default_rng(0)
    photo = (200 + rng.normal(0, 4, (6000, 8000))).clip(0, 255).astype(np.uint8)  # paper, sensor noise
    gray = rng.integers(0, 256, (2000, 3000), dtype=np.uint8)
    colour = (128 + rng.normal(0, 3, (2000, 2000, 3))).clip(0, 255).astype(np.uint8)
    return {
        "PNG RGBA 16 MP": (_encoded(rgba, "PNG"), "image/png"),
        "PNG 1x16,000,000": (_encoded(Image.new("L", (1, 15_990_000)), "PNG"), "image/png"),
        "PNG palette+alpha 16 MP": (_encoded(palette, "PNG", transparency=0), "image/png"),
        "PNG 16-bit 16 MP": (_encoded(Image.new("I;16", (4000, 3990)), "PNG"), "image/png"),
        "WebP RGBA 16 MP": (_encoded(rgba, "WEBP", lossless=True), "image/webp"),
        "TIFF RGBA 16 MP": (_encoded(rgba, "TIFF", compression="tiff_deflate"), "image/tiff"),
        "JPEG 48 MP": (_encoded(Image.fromarray(photo).convert("RGB"), "JPEG", quality=80), "image/jpeg"),
        # Among the biggest that are still read (just under the 64 MB decode limit), noisy so
        # that they are big files too.
        "PNG gray 6 MP (read)": (_encoded(Image.fromarray(gray), "PNG"), "image/png"),
        "PNG RGB 4 MP (read)": (_encoded(Image.fromarray(colour), "PNG"), "image/png"),
        "JSON 7 MB of []": (b'{"image": [' + b"[]," * 2_300_000 + b"[]]}", "application/json"),
        "JSON nested 3,000 deep": (b'{"image": ' + b"[" * 3000 + b"]" * 3000 + b"}", "application/json"),
        "JSON 5,000-digit integers": (b'{"image": [[' + b"9" * 5000 + b"]]}", "application/json"),
    }


def ordinary_body() -> bytes:
    """A drawing as the page sends it: a validation digit, black on white, 280x280 PNG."""
    images, _ = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    big = np.asarray(Image.fromarray(images[-1]).resize((280, 280), Image.BICUBIC))
    return _encoded(Image.fromarray(np.where(big > 127, 0, 255).astype(np.uint8)), "PNG")


# --- the server under test --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descriptor_limit(n: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

    return apply


class Server:
    """``serve`` with its defaults, in a process of its own, its RSS sampled every 20 ms."""

    def __init__(self, runtime: Path, log: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(runtime)}
        command = [sys.executable, "-m", "mnist_edge_runtime", "serve", "--bundle", str(ROOT / "export")]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)], stdout=log.open("wb"), stderr=subprocess.STDOUT,
            env=env, preexec_fn=_descriptor_limit(1024),
        )  # fmt: skip
        self.peak_kb = 0
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        for _ in range(300):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                break
            if self.process.poll() is not None:
                raise SystemExit(f"serve exited: {log.read_text()[-500:]}")
            time.sleep(0.1)
        self._sampler.start()

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

    def _sample(self) -> None:
        while self._sampling and self.process.poll() is None:
            with contextlib.suppress(OSError, StopIteration):
                self.peak_kb = max(self.peak_kb, self.rss_mb() * 1024)
            time.sleep(0.02)

    def reset_peak(self) -> None:
        self.peak_kb = 0

    def stop(self) -> None:
        self._sampling = False
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def post(url: str, body: bytes, content_type: str, timeout: float = 30) -> int:
    """The status of one POST to /api/predict on a new connection (0: no answer at all)."""
    request = urllib.request.Request(url + "/api/predict", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def ordinary_traffic(url: str, body: bytes, seconds: float, clients: int = 4) -> dict:
    """Ordinary requests from ``clients`` threads for ``seconds``: how many got a 200."""
    statuses: list[int] = []
    stop = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < stop:
            statuses.append(post(url, body, "image/png", timeout=5))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answered = sum(s == 200 for s in statuses)
    return {
        "requests": len(statuses),
        "answered": answered,
        "answered_share": round(answered / max(1, len(statuses)), 3),
    }


# --- the phases ---------------------------------------------------------------------------------------


def decode_bombs(server: Server, bodies: dict, rounds: int) -> dict:
    idle = server.rss_mb()
    server.reset_peak()
    jobs = [(name, body, kind) for _ in range(rounds) for name, (body, kind) in bodies.items()]
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda job: (job[0], post(server.url, job[1], job[2], timeout=120)), jobs))
    peak = server.peak_kb / 1024
    time.sleep(3)  # let the last requests finish and the memory go back
    by_body: dict[str, list[int]] = {}
    for name, status in statuses:
        by_body.setdefault(name, []).append(status)
    return {
        "idle_rss_mb": round(idle, 1),
        "peak_rss_mb": round(peak, 1),
        "rss_after_mb": round(server.rss_mb(), 1),
        "rss_above_idle_after_mb": round(server.rss_mb() - idle, 1),
        "statuses": {name: sorted(set(s)) for name, s in by_body.items()},
        "server_errors": sum(s >= 500 and s != 503 for _, s in statuses),
        "requests": len(statuses),
    }


def slow_uploads(server: Server, ordinary: bytes, seconds: float) -> dict:
    sockets = []
    for _ in range(16):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            b"Content-Length: 100000\r\n\r\n"
        )
        sockets.append(s)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(2):
            for s in sockets:
                with contextlib.suppress(OSError):
                    s.sendall(b"\x00")

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        traffic = ordinary_traffic(server.url, ordinary, seconds)
    finally:
        stop.set()
        trickler.join()
        for s in sockets:
            s.close()
    return traffic


def idle_connections(server: Server, ordinary: bytes, seconds: float, count: int = 1100) -> dict:
    """``count`` connections opened by 20 threads at once (half of them send half a request line)
    while ordinary requests come for ``seconds``; a connection the server closes is reopened."""
    log_before = server.log.stat().st_size
    stop = threading.Event()
    sockets: list[socket.socket] = []
    opened = [0]

    def attacker(share: int) -> None:
        mine: list[socket.socket] = []
        while not stop.is_set():
            for s in [s for s in mine if not _still_open(s)]:
                s.close()  # closed by the server: this side lets go of it too
                mine.remove(s)
            while len(mine) < share and not stop.is_set():
                try:
                    s = socket.create_connection(("127.0.0.1", server.port), timeout=2)
                    if opened[0] % 2:
                        s.sendall(b"GET / HTTP/1.1\r\nHo")  # half a request, never finished
                    mine.append(s)
                    opened[0] += 1
                except OSError:
                    pass
            stop.wait(0.5)
        sockets.extend(mine)

    attackers = [threading.Thread(target=attacker, args=(count // 20,)) for _ in range(20)]
    for t in attackers:
        t.start()
    try:
        traffic = ordinary_traffic(server.url, ordinary, seconds)
        descriptors = len(os.listdir(f"/proc/{server.process.pid}/fd"))
    finally:
        stop.set()
        for t in attackers:
            t.join()
        for s in sockets:
            s.close()
    log = server.log.read_bytes()[log_before:]
    return {**traffic, "opened": opened[0], "server_descriptors": descriptors,
            "log_lines": log.count(b"\n"), "log_bytes": len(log)}  # fmt: skip


def _still_open(s: socket.socket) -> bool:
    """True while the server has said nothing on it: an answer (the 408) or the end of the stream
    means the server let it go."""
    try:
        s.recv(4096, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True  # nothing said yet: still open
    except OSError:
        pass
    return False


def refusal_received(server: Server) -> dict:
    status = post(server.url, b"\x00" * (9 * 1024 * 1024), "image/png")
    return {"urllib_status": status, "received": status == 413}


def run_all(runtime: Path, bodies: dict, ordinary: bytes, quick: bool, log: Path) -> dict:
    server = Server(runtime, log)
    try:
        for _ in range(10):  # warm: the model's first calls, the page's pictures
            post(server.url, ordinary, "image/png")
        seconds = 6 if quick else 20
        phases = {
            "decode_bombs": lambda: decode_bombs(server, bodies, rounds=2 if quick else 5),
            "slow_uploads": lambda: slow_uploads(server, ordinary, seconds),
            "idle_connections": lambda: idle_connections(server, ordinary, seconds),
            "413": lambda: refusal_received(server),
        }
        results = {}
        for name, phase in phases.items():
            started = time.monotonic()
            results[name] = phase()
            results[name]["seconds"] = round(time.monotonic() - started, 1)
            print(f"{name}: {results[name]}", file=sys.stderr)
        return results
    finally:
        server.stop()


def misses(result: dict) -> list[str]:
    bombs = result["decode_bombs"]
    found = []
    if bombs["peak_rss_mb"] > FLOORS["peak_rss_mb"]:
        found.append(f"peak RSS {bombs['peak_rss_mb']} MB > {FLOORS['peak_rss_mb']}")
    if bombs["rss_above_idle_after_mb"] > FLOORS["rss_above_idle_after_mb"]:
        found.append(f"RSS {bombs['rss_above_idle_after_mb']} MB above idle afterwards")
    if bombs["server_errors"]:
        found.append(f"{bombs['server_errors']} answers 500")
    for phase in ("slow_uploads", "idle_connections"):
        if result[phase]["answered_share"] < FLOORS["answered_share"]:
            found.append(f"{phase}: {result[phase]['answered_share']:.0%} of ordinary requests answered")
    if not result["413"]["received"]:
        found.append(f"urllib got {result['413']['urllib_status']} instead of the 413")
    return found


# --- the report ---------------------------------------------------------------------------------------

ROWS = [
    ("peak RSS under decode bombs and hostile JSON, 16 at a time (MB)", "decode_bombs", "peak_rss_mb"),
    ("RSS 3 s later, above idle (MB)", "decode_bombs", "rss_above_idle_after_mb"),
    ("answers 500", "decode_bombs", "server_errors"),
    ("ordinary requests answered with 16 slow uploads", "slow_uploads", "answered_share"),
    ("ordinary requests answered with 1,100 idle connections", "idle_connections", "answered_share"),
    ("log lines written meanwhile", "idle_connections", "log_lines"),
    ("urllib receives the 413 for a 9 MiB body", "413", "received"),
]


def _cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value <= 1 and not isinstance(value, int):
        return f"{value:.0%}"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def markdown(report: dict) -> str:
    columns = ["this version"] + ([f"baseline {report['baseline']}"] if report.get("baseline") else [])
    lines = [
        f"| {' | '.join(['hostile load (serve defaults, fd limit 1024)', *columns])} |",
        "|---|" + "---:|" * len(columns),
    ]
    for label, phase, key in ROWS:
        cells = [
            _cell(report["results"][c][phase][key]) for c in ("current", "baseline") if c in report["results"]
        ]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lines += ["", f"| {' | '.join(['body', 'size', *columns])} |", "|---|---:|" + "---:|" * len(columns)]
    for name, size in report["bodies"].items():
        cells = [
            ", ".join(str(s) for s in report["results"][c]["decode_bombs"]["statuses"][name])
            for c in ("current", "baseline") if c in report["results"]
        ]  # fmt: skip
        lines.append(f"| {name} | {size / 1024:,.0f} KB | {' | '.join(cells)} |")
    copies = report["results"]["current"]["decode_bombs"]["requests"] // max(1, len(report["bodies"]))
    lines += [
        "",
        "First table: the server's memory and answers under each phase, this version beside the "
        "baseline; the ordinary requests are drawings from the page, sent while the hostile clients "
        "hold on. Second table: every status a body got, over its "
        f"{copies} copies sent 16 at a time. 400: refused from the header, before decoding (too "
        "costly to decode, or JSON too deep or too big), which is the aim for a decode bomb; 413: "
        "over its size limit; 500: the server failed (what the floors forbid); 200: answered; 503: turned away with Retry-After while 48 MiB of "
        "bodies were already held, so `200, 503` is a big picture answered when there was room and "
        "asked to come back otherwise. A baseline's 200 for a bomb means it decoded it, hence its "
        "memory in the first table.",
        "",
        f"Measured on {one_line(report['machine'])} with `{report['command']}`.",
    ]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def baseline_runtime(rev: str):
    folder = Path(tempfile.mkdtemp(prefix="serve-baseline-"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(folder), rev], check=True
    )
    try:
        yield folder / "runtime"
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--baseline", metavar="REV", help="also measure the runtime of this git revision")
    parser.add_argument("--quick", action="store_true", help="shorter phases (CI)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a floor is missed")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default: benchmarks/results; none with --quick)",
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))  # this side opens 1,100+

    bodies, ordinary = hostile_bodies(), ordinary_body()
    workdir = Path(tempfile.mkdtemp(prefix="serve-hostile-"))
    results = {"current": run_all(ROOT / "runtime", bodies, ordinary, args.quick, workdir / "current.log")}
    if args.baseline:
        with baseline_runtime(args.baseline) as runtime:
            results["baseline"] = run_all(runtime, bodies, ordinary, args.quick, workdir / "baseline.log")
    shutil.rmtree(workdir, ignore_errors=True)
    command = "python benchmarks/serve_hostile.py" + "".join(
        f" {flag}"
        for flag, on in (("--quick", args.quick), (f"--baseline {args.baseline}", args.baseline))
        if on
    )
    report = {"command": command, "machine": describe_machine(), "baseline": args.baseline, "floors": FLOORS,
              "bodies": {name: len(body) for name, (body, _) in bodies.items()}, "results": results}  # fmt: skip
    print(markdown(report))
    out = args.out or (None if args.quick else RESULTS)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "serve_hostile.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "serve_hostile.md").write_text(markdown(report))
    found = misses(results["current"])
    for miss in found:
        print(f"floor missed: {miss}", file=sys.stderr)
    return 1 if args.check and found else 0


if __name__ == "__main__":
    raise SystemExit(main())
