"""Training candidates judged on validation data only: 1s with a flag and 7s in the training hand, and MNIST.

    python benchmarks/flagged_ones.py --bundle NAME=DIR [--bundle NAME=DIR ...] [--count N] [--out DIR]

How a change to training's flagged 1s is chosen without the held-out hands of
``benchmarks/handwriting.py``: for each bundle (the int8 models of one training run), 1s with a
flag drawn by the hand training draws (``Pen strokes (print)``, as the code draws it now, seeds no training
picture uses) on the page's canvas with its pen, read as an upload, and the MNIST validation
accuracy of the float model that bundle was made from (its manifest's ``source``). The held-out
cursive hand is never drawn here.

Writes ``flagged-ones-validation.json`` and ``.md`` into ``--out`` (default
``benchmarks/results``). Bad options or bundles exit 2 with one line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from handwriting import judged, open_bundles, page_png, positive, read_all, share  # noqa: E402
from mnist_edge_runtime.errors import RuntimeInputError  # noqa: E402
from mnist_edge_runtime.machine import describe_machine, one_line  # noqa: E402

from mnist_edge import handwriting as hw  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
TRAINING_HAND = "Pen strokes (print)"
SEED = 9001  # training draws from seeds 0 and 1 (TrainConfig.seed and the next): not this one
MAX_COUNT = 100_000  # drawings are held in memory (each 280x280)


SEVENS = tuple((7, variant) for variant in hw.VARIANTS[7])


def measure(bundles: list[str], count: int) -> dict:
    ones = hw.draw_digits(count, SEED, (TRAINING_HAND,), variants=hw.FLAGGED_ONES)
    # The price of reading more flags as 1s: 7s (plain, crossbar, curved stem) of the same hand
    # read as 1.
    sevens = hw.draw_digits(count, SEED + 1, (TRAINING_HAND,), variants=SEVENS)
    images = read_all([page_png(d.image) for d in ones])
    seven_images = read_all([page_png(d.image) for d in sevens])
    rows = {}
    for column, classifier in open_bundles(bundles).items():
        predictions = judged(classifier, images)
        seven_digits = [p.digit for p in judged(classifier, seven_images)]
        source = (classifier.manifest_entry or {}).get("source") or {}
        row = {"mnist_validation": source.get("validation_accuracy"), "flagged_ones": {}}
        for variant in ("flag", "flag and base"):
            picked = [p for p, d in zip(predictions, ones, strict=True) if d.variant == variant]
            row["flagged_ones"][variant] = {
                "pictures": len(picked),
                "accuracy": share(p.digit == 1 for p in picked),
                "read_as": dict(Counter(str(p.digit) for p in picked).most_common()),
            }
        row["flagged_ones"]["all"] = share(p.digit == 1 for p in predictions)
        row["sevens"] = {
            "accuracy": share(d == 7 for d in seven_digits),
            "read_as_1": share(d == 1 for d in seven_digits),
        }
        rows[column] = row
    return rows


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def markdown(report: dict) -> str:
    lines = [
        f"Measured on {one_line(report['machine'])}. Command: `{report['command']}`. "
        f"{report['count']:,} 1s with a flag drawn by the training hand ({TRAINING_HAND}, seed {SEED}) "
        "on the page's 280x280 canvas with its 18-pixel pen, read as an upload; the int8 model of each "
        "bundle. MNIST validation: the float model's accuracy on the 5,000 validation images, from the "
        "bundle's manifest. 7s: as many 7s of the same hand (seed "
        f"{SEED + 1}; plain, with a crossbar, with a curved stem), read the same way. No held-out picture is used.",
        "",
        "| model, bundle | MNIST validation | flagged 1s | flag | flag and base | flag read as | 7s | 7s read as 1 |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for column, row in report["rows"].items():
        flag, based = row["flagged_ones"]["flag"], row["flagged_ones"]["flag and base"]
        wrong = ", ".join(f"{k}: {v}" for k, v in flag["read_as"].items() if k != "1") or "-"
        lines.append(
            f"| {column} | {pct(row['mnist_validation'], 2)} | {pct(row['flagged_ones']['all'])} "
            f"| {pct(flag['accuracy'])} | {pct(based['accuracy'])} | {wrong} "
            f"| {pct(row['sevens']['accuracy'])} | {pct(row['sevens']['read_as_1'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()).replace("`", ""))
    parser.add_argument(
        "--bundle", action="append", required=True, metavar="NAME=DIR", help="a bundle folder (repeatable)"
    )
    parser.add_argument(
        "--count", type=positive, default=600, help="flagged 1s drawn, and as many 7s (default 600)"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)"
    )
    args = parser.parse_args()
    if args.count > MAX_COUNT:
        parser.error(f"--count: at most {MAX_COUNT:,}")
    started = time.perf_counter()
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        rows = measure(args.bundle, args.count)
    except (RuntimeInputError, OSError) as exc:
        print(f"flagged_ones.py: {exc}", file=sys.stderr)
        return 2
    command = "python benchmarks/flagged_ones.py " + " ".join(f"--bundle {b}" for b in args.bundle)
    if args.count != 600:
        command += f" --count {args.count}"
    report = {
        "command": command,
        "machine": describe_machine(),
        "count": args.count,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    text = markdown(report)
    print(text)
    try:
        for name, content in (("flagged-ones-validation.json", json.dumps(report, indent=2) + "\n"),
                              ("flagged-ones-validation.md", text)):  # fmt: skip
            partial = args.out / (name + ".partial")
            partial.write_text(content)
            partial.replace(args.out / name)
    except OSError as exc:
        print(f"flagged_ones.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
