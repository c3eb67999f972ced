"""What a user waits for: file (or array) to digit, preprocessing and interpreter timed separately.

    python benchmarks/end_to_end.py [--baseline REV] [--rounds 20] [--model export/conv2d.int8.tflite]
                                    [--out benchmarks/results] [--name end_to_end]

Five inputs, each made from ten validation digits (the first of each class 0-9 among the last
5,000 training images):

* the page's drawing as the page sends it: a 280x280 RGBA PNG, the digit's strokes drawn with the
  page's round 18-pixel pen, black and antialiased on opaque white;
* a 28x28 MNIST array;
* a 640x480 photo of the digit on uneven paper (gray JPEG, quality 90);
* a 1024x768 photo as the page sends one (colour JPEG, quality 90: the page shrinks phone photos
  to 1024 pixels);
* a 4000x3000 photo (gray JPEG, quality 90, as a phone saves it).

In each of ``--rounds`` rounds, every input of every digit is timed once, one thread, in a
shuffled order of: the current preprocessing (the file or array to MNIST form, ``as_mnist_batch``),
the baseline's (``preprocess.py`` at ``--baseline``, read from git, on the same file), and decoding
alone (Pillow's open and load, a JPEG at the reduced size and in the gray the preprocessing asks
for): the floor under any preprocessing that reads the file. Each digit's time is its median over
the rounds; the tables give, per input, the median over the ten digits and their range, the
speed-up (the median of the ten per-digit ratios, and their range), and whether every 28x28 image
equals the baseline's. The interpreter is timed apart on the ten MNIST-form images. Writes
``NAME.{json,md}`` headed by the CPU it ran on.
"""

from __future__ import annotations

import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runtime" / "tests"))

from baseline import BASELINE_REV, load_baseline_preprocess  # noqa: E402
from mnist_edge_runtime.classifier import Classifier  # noqa: E402
from mnist_edge_runtime.decoding import FORMATS, draft_size  # noqa: E402
from mnist_edge_runtime.idx import read_images_and_labels  # noqa: E402
from mnist_edge_runtime.machine import describe_machine  # noqa: E402
from mnist_edge_runtime.preprocess import as_mnist_batch  # noqa: E402
from script_parser import script_parser  # noqa: E402
from synthetic import paper_photo  # noqa: E402

MNIST = REPO / "mnist_edge" / "datasets" / "mnist"
PEN = 18  # the page's pen width on its 280x280 canvas (web/app.js)


def ten_digits() -> tuple[list[np.ndarray], list[int]]:
    """The first validation digit of each class 0-9."""
    images, labels = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    images, labels = images[-5000:], labels[-5000:]
    first = [int(np.flatnonzero(labels == d)[0]) for d in range(10)]
    return [images[i] for i in first], [int(labels[i]) for i in first]


def _skeleton(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a small boolean mask: the digit's strokes one pixel wide."""
    m = np.pad(mask.astype(bool), 1)
    around = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
    while True:
        changed = False
        for step in (0, 1):
            p = [np.roll(np.roll(m, -dy, 0), -dx, 1) for dy, dx in around]
            neighbours = sum(x.astype(int) for x in p)
            crossings = sum(((~p[i]) & p[(i + 1) % 8]).astype(int) for i in range(8))
            if step == 0:
                corner = ~(p[0] & p[2] & p[4]) & ~(p[2] & p[4] & p[6])
            else:
                corner = ~(p[0] & p[2] & p[6]) & ~(p[0] & p[4] & p[6])
            drop = m & (neighbours >= 2) & (neighbours <= 6) & (crossings == 1) & corner
            if drop.any():
                m &= ~drop
                changed = True
        if not changed:
            return m[1:-1, 1:-1]


def page_drawing(digit: np.ndarray, margin: int = 30) -> bytes:
    """The digit as the page sends a drawing: its strokes traced with the page's round pen on the
    280x280 canvas, black on opaque white, antialiased (drawn at twice the size, then halved),
    saved as an RGBA PNG like ``canvas.toBlob``."""
    from PIL import Image, ImageDraw

    ys, xs = np.nonzero(_skeleton(digit > 100))
    scale = 2 * (280 - 2 * margin - PEN) / max(ys.max() - ys.min(), xs.max() - xs.min(), 1)
    cy, cx = (ys.max() + ys.min()) / 2, (xs.max() + xs.min()) / 2

    def at(y: int, x: int) -> tuple[float, float]:
        return 280 + (x - cx) * scale, 280 + (y - cy) * scale

    big = Image.new("L", (560, 560), 255)
    draw = ImageDraw.Draw(big)
    on = set(zip(ys.tolist(), xs.tolist(), strict=True))
    for y, x in on:
        px, py = at(y, x)
        draw.ellipse([px - PEN, py - PEN, px + PEN, py + PEN], fill=0)
        for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
            if (y + dy, x + dx) in on:
                draw.line([at(y, x), at(y + dy, x + dx)], fill=0, width=2 * PEN)
    gray = np.asarray(big.resize((280, 280), Image.BOX))
    rgba = np.full((280, 280, 4), 255, np.uint8)
    rgba[..., :3] = gray[..., None]
    return _encoded(rgba, "PNG")


def colour_photo(digit: np.ndarray, seed: int) -> bytes:
    """A 1024x768 photo of the digit on paper as the page sends one: colour JPEG at quality 90,
    warm paper under indoor light."""
    gray = paper_photo(digit, (768, 1024), (200, 380, 300, 240), seed=seed).astype(np.float32)
    rgb = np.stack([gray * 1.02, gray * 0.99, gray * 0.93], axis=2)
    return _encoded(np.clip(rgb, 0, 255).astype(np.uint8), "JPEG", quality=90)


def _encoded(array: np.ndarray, format: str, **options) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format, **options)
    return buffer.getvalue()


def make_inputs(digits: list[np.ndarray], folder: Path) -> dict[str, list[object]]:
    """Input name -> one file path (or array) per digit."""
    inputs: dict[str, list[object]] = {name: [] for name in INPUTS}
    for i, digit in enumerate(digits):
        files = {
            "280x280 drawing from the page (RGBA PNG)": page_drawing(digit),
            "640x480 photo (JPEG)": _encoded(
                paper_photo(digit, (480, 640), (140, 250, 200, 160), seed=i), "JPEG", quality=90
            ),
            "1024x768 photo from the page (colour JPEG)": colour_photo(digit, seed=i),
            "4000x3000 photo (JPEG)": _encoded(
                paper_photo(digit, (3000, 4000), (900, 1600, 1200, 900), seed=i), "JPEG", quality=90
            ),
        }
        for name in INPUTS:
            if name == "28x28 MNIST array":
                inputs[name].append(digit)
                continue
            path = folder / f"{i}-{INPUTS.index(name)}.{'png' if 'PNG' in name else 'jpg'}"
            path.write_bytes(files[name])
            inputs[name].append(path)
    return inputs


INPUTS = [
    "280x280 drawing from the page (RGBA PNG)",
    "28x28 MNIST array",
    "640x480 photo (JPEG)",
    "1024x768 photo from the page (colour JPEG)",
    "4000x3000 photo (JPEG)",
]


def decode_only(source: object) -> None:
    """Decoding alone, as the preprocessing decodes: Pillow's open and load, a JPEG in gray at the
    reduced size asked for (``draft``)."""
    from PIL import Image

    with Image.open(source, formats=FORMATS) as image:
        if image.format in ("JPEG", "MPO"):
            image.draft("L", draft_size(image.size))
        image.load()


def spread(values: list[float]) -> dict:
    """Median, min and max of per-digit values (ms or ratios)."""
    return {"median": float(np.median(values)), "min": float(np.min(values)), "max": float(np.max(values))}


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--model", type=Path, default=REPO / "export" / "conv2d.int8.tflite")
    parser.add_argument("--rounds", type=int, default=20, help="timings of each digit and input (default 20)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--name", default="end_to_end", help="results file name, without suffix")
    parser.add_argument(
        "--baseline", default=BASELINE_REV, help="Git revision whose preprocessing to compare."
    )
    parser.add_argument(
        "--baseline-file", type=Path, help="That preprocess.py as a file (no git history here)."
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    baseline = load_baseline_preprocess(args.baseline, args.baseline_file)
    digits, labels = ten_digits()
    classifier = Classifier.open(args.model, threads=1)
    shuffle = random.Random(0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(digits, Path(tmp))
        for name, sources in inputs.items():
            calls = {"now": lambda s: as_mnist_batch(s), "baseline": lambda s: baseline.as_mnist_batch(s)}
            if name != "28x28 MNIST array":
                calls["decoding"] = decode_only
            for source in sources:  # warm-up: imports, Pillow's plugins, first allocations
                for call in calls.values():
                    call(source)
            times: dict[str, list[list[float]]] = {k: [[] for _ in sources] for k in calls}
            for _ in range(args.rounds):
                for i, source in enumerate(sources):
                    for kind in shuffle.sample(list(calls), len(calls)):
                        start = time.perf_counter()
                        calls[kind](source)
                        times[kind][i].append((time.perf_counter() - start) * 1000)
            per_digit = {k: [float(np.median(t)) for t in v] for k, v in times.items()}
            forms = [as_mnist_batch(s)[0][0] for s in sources]
            same = sum(
                np.array_equal(baseline.as_mnist_batch(s)[0][0], f)
                for s, f in zip(sources, forms, strict=True)
            )
            interpreter = []
            for _ in range(args.rounds * 10):
                for form in forms:
                    start = time.perf_counter()
                    classifier.scores(form[None])
                    interpreter.append((time.perf_counter() - start) * 1000)
            predicted = [int(p.digit) if p.digit is not None else None for p in classifier.predict(sources)]
            row = {
                "input": name,
                "preprocess_ms": spread(per_digit["now"]),
                "baseline_preprocess_ms": spread(per_digit["baseline"]),
                "speedup": spread(
                    [b / n for b, n in zip(per_digit["baseline"], per_digit["now"], strict=True)]
                ),
                "same_mnist_form_as_baseline": f"{same}/{len(sources)}",
                "interpreter_ms": float(np.median(interpreter)),
                "right": f"{sum(p == y for p, y in zip(predicted, labels, strict=True))}/{len(labels)}",
                "per_digit_ms": per_digit,
            }
            if "decoding" in per_digit:
                row["decoding_ms"] = spread(per_digit["decoding"])
                row["over_decoding"] = spread(
                    [n / d for n, d in zip(per_digit["now"], per_digit["decoding"], strict=True)]
                )
            rows.append(row)
            print(f"  {name}: {row['speedup']['median']:.1f}x", file=sys.stderr, flush=True)
    result = {
        "cpu": describe_machine()["cpu"],
        "cores": os.cpu_count(),
        "load_average_at_start": load,
        "model": args.model.name,
        "backend": classifier.backend,
        "baseline": args.baseline,
        "rounds": args.rounds,
        "labels": labels,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(result))
    print(markdown(result))


def _ms(s: dict) -> str:
    return f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})"


def markdown(result: dict) -> str:
    cpu = result["cpu"]
    load = result.get("load_average_at_start")
    lines = [
        f"CPU: **{cpu['model']}** ({cpu['machine']}; {' '.join(cpu['features'])}), {result['cores']} cores"
        + (f", load average {load:.1f} at the start" if load is not None else "")
        + f". {result['model']} on {result['backend']}, one thread. Each digit's time is its median"
        f" over {result['rounds']} interleaved rounds; shown: the median over the ten digits (0-9)"
        " and, in brackets, their range. Baseline: the preprocessing at"
        f" {result['baseline']}, timed in the same rounds; decoding alone: Pillow's open and load.",
        "",
        f"| input | load + preprocess (ms) | at {result['baseline']} (ms) | speed-up "
        "| decoding alone (ms) | load + preprocess / decoding | same 28x28 | interpreter (ms) | right |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        s = r["speedup"]
        decoding = _ms(r["decoding_ms"]) if "decoding_ms" in r else "-"
        over = f"{r['over_decoding']['median']:.1f}x" if "over_decoding" in r else "-"
        lines.append(
            f"| {r['input']} | {_ms(r['preprocess_ms'])} | {_ms(r['baseline_preprocess_ms'])} "
            f"| {s['median']:.1f}x ({s['min']:.1f}-{s['max']:.1f}) | {decoding} | {over} "
            f"| {r['same_mnist_form_as_baseline']} | {r['interpreter_ms']:.3f} | {r['right']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
