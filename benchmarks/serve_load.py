"""Load on ``mnist-edge-runtime serve``: requests/s, latency, errors and the server's memory.

    python benchmarks/serve_load.py [--requests 2000] [--soak 20000] [--pictures 200]
        [--baseline REV] [--out benchmarks/results]

Starts the server (conv2d int8, default settings) on a free local port and sends it requests from
a bounded asyncio client (httpx): at concurrency 1, 4 and 16, canvas-sized PNG drawings, phone
photos as the page sends them (1024x768 JPEG of a digit on uneven paper) and 28x28 JSON arrays,
each made from ``--pictures`` distinct validation digits (the requests cycle through them, so a
count of wrong digits is over that many pictures, not over every request). Then a soak of
``--soak`` mixed requests at concurrency 8. The server's resident memory (VmRSS) and peak (VmHWM)
are read from /proc before and after each phase. With ``--baseline REV`` the runtime of commit
REV is started from a copy of that commit and measured the same way in the same run, before the
current one. Client and server share this machine's cores; the CPU and the number of cores the
processes may use are named in the results. Writes ``serve_load.{json,md}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from mnist_edge_runtime.idx import read_images_and_labels
from mnist_edge_runtime.machine import describe_machine, one_line

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runtime" / "tests"))
from script_parser import script_parser  # noqa: E402
from serving import running_server  # noqa: E402
from synthetic import paper_photo  # noqa: E402

MNIST = REPO / "mnist_edge" / "datasets" / "mnist"


def payloads(count: int) -> dict[str, list[tuple[bytes, str, int]]]:
    """``count`` distinct validation digits in each input kind: (body, content type, label)."""
    from PIL import Image

    images, labels = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    images, labels = images[-5000:][:count], labels[-5000:][:count]  # validation digits
    drawings, photos, arrays = [], [], []
    for seed, (digit, label) in enumerate(zip(images, labels, strict=True)):
        big = np.asarray(Image.fromarray(digit).resize((280, 280), Image.BICUBIC))
        drawings.append(
            (_encode(np.where(big > 127, 0, 255).astype(np.uint8), "PNG"), "image/png", int(label))
        )
        photo = paper_photo(digit, (768, 1024), (184, 312, 400, 400), seed=seed)
        photos.append((_encode(photo, "JPEG", quality=85), "image/jpeg", int(label)))
        arrays.append((json.dumps({"image": digit.tolist()}).encode(), "application/json", int(label)))
    return {"280x280 PNG drawing": drawings, "1024x768 JPEG photo": photos, "28x28 JSON array": arrays}


def _encode(array: np.ndarray, format: str, **options) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format, **options)
    return buffer.getvalue()


@contextlib.contextmanager
def runtime_at(rev: str) -> Iterator[Path]:
    """The runtime package of commit ``rev``, extracted from git into a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", rev, "runtime/mnist_edge_runtime"], capture_output=True
        )
        if archive.returncode != 0:
            raise SystemExit(
                f"serve_load: cannot read the runtime at {rev}: {archive.stderr.decode().strip()}"
            )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        yield Path(tmp) / "runtime"


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields


async def load(url: str, bodies: list[tuple[bytes, str, int]], requests: int, concurrency: int) -> dict:
    import httpx

    latencies, errors, wrong = [], 0, 0
    queue = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors, wrong
            for i in queue:
                body, content_type, label = bodies[i % len(bodies)]
                start = time.perf_counter()
                try:
                    response = await client.post(
                        "/api/predict", content=body, headers={"content-type": content_type}
                    )
                    ok = response.status_code == 200
                    wrong += ok and response.json()["digit"] != label
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ms = sorted(t * 1000 for t in latencies)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "requests_per_s": round(requests / wall, 1),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 2),
        "errors": errors,
        "wrong_digits": wrong,
    }


@contextlib.contextmanager
def python_path(folder: Path) -> Iterator[None]:
    """Servers started inside import the runtime from ``folder`` first."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), saved]))
    try:
        yield
    finally:
        os.environ.pop("PYTHONPATH")
        if saved is not None:
            os.environ["PYTHONPATH"] = saved


def measure(requests: int, soak_requests: int, bodies: dict) -> dict:
    """Every phase against one server started from the runtime Python imports now."""
    with running_server(REPO / "export") as (url, server):
        asyncio.run(load(url, bodies["28x28 JSON array"], 200, 4))  # warm-up
        start_memory = memory_kib(server.pid)
        rows = []
        for kind, items in bodies.items():
            for concurrency in (1, 4, 16):
                row = {"input": kind, **asyncio.run(load(url, items, requests, concurrency))}
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
        before_soak = memory_kib(server.pid)
        mixed = [item for group in zip(*bodies.values(), strict=True) for item in group]
        soak = asyncio.run(load(url, mixed, soak_requests, 8))
        after_soak = memory_kib(server.pid)
    memory = {"after_warm_up": start_memory, "before_soak": before_soak, "after_soak": after_soak}
    return {"rows": rows, "soak": soak, "memory_kib": memory}


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per input kind and concurrency")
    parser.add_argument("--soak", type=int, default=20000, help="requests in the soak phase")
    parser.add_argument("--pictures", type=int, default=200, help="distinct validation digits per input kind")
    parser.add_argument("--baseline", metavar="REV", help="also measure the runtime of this commit, first")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    # ``python -m`` puts the working folder first on the server's path: from runtime/ it would
    # shadow the runtime chosen below.
    os.chdir(REPO)
    bodies = payloads(args.pictures)
    runs = {}
    if args.baseline:
        with runtime_at(args.baseline) as old_runtime, python_path(old_runtime):
            runs[args.baseline] = measure(args.requests, args.soak, bodies)
    with python_path(REPO / "runtime"):  # this checkout's runtime, whatever is installed
        runs["current"] = measure(args.requests, args.soak, bodies)
    result = {
        "machine": one_line(describe_machine()),
        "cores": len(os.sched_getaffinity(0)),
        "pictures": args.pictures,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_load.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "serve_load.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    cores = result["cores"]
    lines = [
        f"CPU: **{result['machine']}**; client and server on the same {cores} core{'s' * (cores > 1)}, "
        f"127.0.0.1. Each input kind cycles through {result['pictures']} distinct validation digits: "
        "a wrong digit would repeat once per cycle.",
        "",
        "| runtime | input | concurrency | requests | requests/s | p50 (ms) | p99 (ms) | errors | wrong digits |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, run in result["runs"].items():
        for r in run["rows"]:
            lines.append(
                f"| {name} | {r['input']} | {r['concurrency']} | {r['requests']} | {r['requests_per_s']} "
                f"| {r['p50_ms']} | {r['p99_ms']} | {r['errors']} | {r['wrong_digits']} |"
            )
    lines.append("")
    for name, run in result["runs"].items():
        memory, soak = run["memory_kib"], run["soak"]
        lines.append(
            f"* {name}: soak of {soak['requests']:,} mixed requests at concurrency 8: "
            f"{soak['requests_per_s']} requests/s, p99 {soak['p99_ms']} ms, {soak['errors']} errors, "
            f"{soak['wrong_digits']} wrong digits. Server memory (VmRSS): "
            f"{memory['after_warm_up']['VmRSS'] / 1024:.1f} MiB after warm-up, "
            f"{memory['before_soak']['VmRSS'] / 1024:.1f} MiB before the soak, "
            f"{memory['after_soak']['VmRSS'] / 1024:.1f} MiB after it "
            f"(peak {memory['after_soak']['VmHWM'] / 1024:.1f} MiB)."
        )
    if len(result["runs"]) == 2:
        (old, before), (_, after) = result["runs"].items()
        ratios = [
            f"{a['input']} at {a['concurrency']}: {a['requests_per_s'] / b['requests_per_s']:.2f}x"
            for b, a in zip(before["rows"], after["rows"], strict=True)
        ]
        lines += ["", f"Requests/s, current against {old}: " + "; ".join(ratios) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
