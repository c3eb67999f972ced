"""Load on ``mnist-edge-runtime serve``: requests/s, latency, errors and the server's memory.

    python benchmarks/serve_load.py [--requests 2000] [--soak 20000] [--out benchmarks/results]

Starts the server (conv2d int8, default settings) on a free local port and sends it requests from
a bounded asyncio client (httpx): at concurrency 1, 4 and 16, canvas-sized PNG drawings and
28x28 JSON arrays made from validation digits. Then a soak of ``--soak`` mixed requests at
concurrency 8. The server's resident memory (VmRSS) and peak (VmHWM) are read from /proc before
and after each phase. Client and server share this machine's cores; the CPU is named in the
results. Writes ``serve_load.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from mnist_edge_runtime.idx import read_images_and_labels
from mnist_edge_runtime.machine import describe_machine, one_line

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runtime" / "tests"))
from serving import running_server  # noqa: E402

MNIST = REPO / "mnist_edge" / "datasets" / "mnist"


def payloads(count: int = 50) -> dict[str, list[tuple[bytes, str, int]]]:
    from PIL import Image

    images, labels = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    images, labels = images[-5000:][:count], labels[-5000:][:count]  # validation digits
    drawings, arrays = [], []
    for digit, label in zip(images, labels, strict=True):
        big = np.asarray(Image.fromarray(digit).resize((280, 280), Image.BICUBIC))
        buffer = io.BytesIO()
        Image.fromarray(np.where(big > 127, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
        drawings.append((buffer.getvalue(), "image/png", int(label)))
        arrays.append((json.dumps({"image": digit.tolist()}).encode(), "application/json", int(label)))
    return {"280x280 PNG drawing": drawings, "28x28 JSON array": arrays}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per input kind and concurrency")
    parser.add_argument("--soak", type=int, default=20000, help="requests in the soak phase")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    with running_server(REPO / "export") as (url, server):
        bodies = payloads()
        asyncio.run(load(url, bodies["28x28 JSON array"], 200, 4))  # warm-up
        start_memory = memory_kib(server.pid)
        rows = []
        for kind, items in bodies.items():
            for concurrency in (1, 4, 16):
                row = {"input": kind, **asyncio.run(load(url, items, args.requests, concurrency))}
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
        before_soak = memory_kib(server.pid)
        mixed = [item for pair in zip(*bodies.values(), strict=True) for item in pair]
        soak = asyncio.run(load(url, mixed, args.soak, 8))
        after_soak = memory_kib(server.pid)
    result = {
        "machine": one_line(describe_machine()),
        "rows": rows,
        "soak": soak,
        "memory_kib": {"after_warm_up": start_memory, "before_soak": before_soak, "after_soak": after_soak},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_load.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "serve_load.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    memory = result["memory_kib"]
    soak = result["soak"]
    lines = [
        f"CPU: **{result['machine']}**; client and server on the same 2 cores, 127.0.0.1.",
        "",
        "| input | concurrency | requests | requests/s | p50 (ms) | p99 (ms) | errors | wrong digits |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['input']} | {r['concurrency']} | {r['requests']} | {r['requests_per_s']} | {r['p50_ms']} "
            f"| {r['p99_ms']} | {r['errors']} | {r['wrong_digits']} |"
        )
    lines += [
        "",
        f"Soak: {soak['requests']:,} mixed requests at concurrency 8: {soak['requests_per_s']} requests/s, "
        f"p99 {soak['p99_ms']} ms, {soak['errors']} errors. Server memory (VmRSS): "
        f"{memory['after_warm_up']['VmRSS'] / 1024:.1f} MiB after warm-up, "
        f"{memory['before_soak']['VmRSS'] / 1024:.1f} MiB before the soak, "
        f"{memory['after_soak']['VmRSS'] / 1024:.1f} MiB after it (peak {memory['after_soak']['VmHWM'] / 1024:.1f} MiB).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
