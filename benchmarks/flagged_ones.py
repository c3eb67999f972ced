"""Training candidates judged on validation data only: 1s with a flag and 7s in the training hand
and in a second writer's, and MNIST.

    python benchmarks/flagged_ones.py --bundle NAME=DIR [--bundle ...] [--run NAME=DIR ...] [--count N]
        [--long-flags SHARE] [--out DIR]

How a change to training's flagged 1s is chosen without the held-out hands of
``benchmarks/handwriting.py``: for each bundle (the int8 models of one training run), 1s with a
flag drawn by the hand training draws (``Pen strokes (print)``, as the code draws it now, seeds
no training picture uses; ``--long-flags`` of them, default a third as conv2d trains, with a long
flag) on the page's canvas with its pen, read as an upload, as many 7s of the same hand
(what reading more flags as 1s may cost), and the MNIST validation accuracy of the float model
that bundle was made from (its manifest's ``source``). ``--run`` adds a training run's float
Keras model (a ``runs/<model>`` folder), for candidates compared before any export, such as a
second training seed. A second hand checks what the training hand cannot: the simulated writer of
the learning loop (``tests/writer.py``: 1s with a flag reaching more than half the height down,
7s with a crossbar; a seed the loop does not use), whose pictures no training run draws. The held-out
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

from handwriting import judged, open_bundles, page_png, positive, read_all, share  # noqa: E402
from mnist_edge_runtime.errors import RuntimeInputError  # noqa: E402
from mnist_edge_runtime.machine import describe_machine, one_line  # noqa: E402
from writer import writer_digits  # noqa: E402

from mnist_edge import handwriting as hw  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
TRAINING_HAND = "Pen strokes (print)"
SEED = 9001  # training draws from seeds 0 and 1 (TrainConfig.seed and the next): not this one
WRITER_SEED = 777  # benchmarks/learning_loop.py draws the writer from seeds 29 and 290
MAX_COUNT = 100_000  # drawings are held in memory (each 280x280)


SEVENS = tuple((7, variant) for variant in hw.VARIANTS[7])


class FloatRun:
    """A training run's float Keras model (``runs/<model>``: ``model.keras`` and ``run.json``),
    read as the bundles' int8 models are: its scores, then the runtime's verdict."""

    def __init__(self, folder: Path):
        try:
            record = json.loads((folder / "run.json").read_text())
            self.model = record["model"]
            validation = record.get("validation_accuracy")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RuntimeInputError(f"{folder}: not a training run ({exc})") from None
        from mnist_edge.models import load_model  # TensorFlow, only when a run is given

        try:
            self.keras_model = load_model(str(folder / "model.keras"))
        except Exception as exc:  # a damaged or foreign file: all mean "not a run's model"
            raise RuntimeInputError(
                f"{folder / 'model.keras'}: cannot load ({str(exc).splitlines()[0][:200]})"
            ) from None
        self.manifest_entry = {"source": {"validation_accuracy": validation}}

    def scores(self, images: np.ndarray) -> np.ndarray:
        from mnist_edge.models import model_input

        return np.asarray(self.keras_model.predict(model_input(self.model, images), verbose=0))


def open_runs(specs: list[str]) -> dict[str, FloatRun]:
    """``NAME=DIR`` each (a relative DIR from the repository root) -> "model float, NAME" -> its
    float model."""
    runs = {}
    for spec in specs:
        name, _, folder = spec.rpartition("=")
        run = FloatRun(Path(folder) if Path(folder).is_absolute() else REPO / folder)
        runs[f"{run.model} float, {name or folder}"] = run
    return runs


def measure(bundles: list[str], runs: list[str], count: int, long_flags: float) -> dict:
    models = {**open_bundles(bundles), **open_runs(runs)}  # a bad folder is refused before drawing
    ones = hw.draw_digits(count, SEED, (TRAINING_HAND,), variants=hw.FLAGGED_ONES, long_flags=long_flags)
    # The price of reading more flags as 1s: 7s (plain, crossbar, curved stem) of the same hand
    # read as 1.
    sevens = hw.draw_digits(count, SEED + 1, (TRAINING_HAND,), variants=SEVENS, long_flags=long_flags)
    images = read_all([page_png(d.image) for d in ones])
    seven_images = read_all([page_png(d.image) for d in sevens])
    writer = writer_digits(count, WRITER_SEED)  # 1s and 7s in turn
    writer_images = read_all([png for _, png in writer])
    rows = {}
    for column, classifier in models.items():
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
        read = [(d, p.digit) for (d, _), p in zip(writer, judged(classifier, writer_images), strict=True)]
        row["writer"] = {
            str(digit): {
                "pictures": sum(d == digit for d, _ in read),
                "accuracy": share(got == digit for d, got in read if d == digit),
                "read_as": dict(Counter(str(got) for d, got in read if d == digit).most_common()),
            }
            for digit in (1, 7)
        }
        rows[column] = row
    return rows


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def misread(counts: dict, digit: int) -> str:
    """What pictures of ``digit`` were read as, the right answer left out: "7: 3, 9: 1"."""
    return ", ".join(f"{k}: {v}" for k, v in counts["read_as"].items() if k != str(digit)) or "-"


def share_words(share: float) -> str:
    return {0.0: "none", 1 / 3: "a third"}.get(share, f"{share:.0%}")


def markdown(report: dict) -> str:
    lines = [
        f"Measured on {one_line(report['machine'])}. Command: `{report['command']}`. "
        f"{report['count']:,} 1s with a flag drawn by the training hand ({TRAINING_HAND}, seed {SEED}; "
        f"{share_words(report['long_flags'])} of the flags long) on the page's 280x280 canvas with its "
        "18-pixel pen, read as an upload; the int8 model of each "
        "bundle, and the float model of each training run (rows marked float: before QAT and export). "
        "MNIST validation: the float model's accuracy on the 5,000 validation images, from the "
        "bundle's manifest or the run's record. Flag: the 1s drawn with a flag and no base. 7s: as many 7s "
        f"of the same hand (seed {SEED + 1}; plain, with a crossbar, with a curved stem), read the same way. "
        f"Writer: {report['count']:,} drawings of `tests/writer.py`'s hand (seed {WRITER_SEED}), 1s with a "
        "long flag and 7s with a crossbar in turn, drawn as the page draws. No held-out picture is used.",
        "",
        "| model, bundle | MNIST validation | flagged 1s | flag | flag and base | flag read as | 7s | 7s read as 1 "
        "| writer's 1s | writer's 1s read as | writer's 7s |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for column, row in report["rows"].items():
        flag, based, writer = row["flagged_ones"]["flag"], row["flagged_ones"]["flag and base"], row["writer"]
        lines.append(
            f"| {column} | {pct(row['mnist_validation'], 2)} | {pct(row['flagged_ones']['all'])} "
            f"| {pct(flag['accuracy'])} | {pct(based['accuracy'])} | {misread(flag, 1)} "
            f"| {pct(row['sevens']['accuracy'])} | {pct(row['sevens']['read_as_1'])} "
            f"| {pct(writer['1']['accuracy'])} | {misread(writer['1'], 1)} | {pct(writer['7']['accuracy'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()).replace("`", ""))
    parser.add_argument(
        "--bundle", action="append", required=True, metavar="NAME=DIR", help="a bundle folder (repeatable)"
    )
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a runs/<model> folder: its float model (repeatable)",
    )
    parser.add_argument(
        "--count",
        type=positive,
        default=3000,
        help="flagged 1s drawn, as many 7s, and as many drawings by the writer (default 3000)",
    )
    parser.add_argument(
        "--long-flags",
        type=float,
        default=hw.LONG_FLAG_SHARE,
        metavar="SHARE",
        help="the share of the training hand's flags drawn long, 0 to 1 (default 1/3, as conv2d trains)",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)"
    )
    args = parser.parse_args()
    if not 0 <= args.long_flags <= 1:
        parser.error(f"--long-flags: a share from 0 to 1, not {args.long_flags}")
    if args.count > MAX_COUNT:
        parser.error(f"--count: at most {MAX_COUNT:,}")
    started = time.perf_counter()
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        rows = measure(args.bundle, args.run, args.count, args.long_flags)
    except (RuntimeInputError, OSError) as exc:
        print(f"flagged_ones.py: {exc}", file=sys.stderr)
        return 2
    command = "python benchmarks/flagged_ones.py " + " ".join(
        [*(f"--bundle {b}" for b in args.bundle), *(f"--run {r}" for r in args.run)]
    )
    if args.count != 3000:
        command += f" --count {args.count}"
    if args.long_flags != hw.LONG_FLAG_SHARE:
        command += f" --long-flags {args.long_flags}"
    report = {
        "command": command,
        "machine": describe_machine(),
        "count": args.count,
        "long_flags": args.long_flags,
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
