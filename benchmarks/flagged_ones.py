"""Training candidates judged on validation data only: 1s with a flag and 7s in the training hand
and in a second writer's, 1s whose flag meets the stem in other ways, four independent writers'
digits, and MNIST.

    python benchmarks/flagged_ones.py --bundle NAME=DIR [--bundle ...] [--run NAME=DIR ...] [--count N]
        [--writer-count N] [--long-flags SHARE] [--varied-flags SHARE] [--out DIR]

How a change to training's flagged 1s is chosen without the held-out hands of
``benchmarks/handwriting.py``: for each bundle (the int8 models of one training run), 1s with a
flag drawn by the hand training draws (``Pen strokes (print)``, as the code draws it now, seeds
no training picture uses; ``--long-flags`` of them with a long flag, default a third, and
``--varied-flags`` in one of ``FLAG_CONSTRUCTIONS``, default none, as both models train) on the
page's canvas with its pen, read as an upload, as many 7s of the same hand (what reading more
flags as 1s may cost), and the MNIST validation accuracy of the float model that bundle was made
from (its manifest's ``source``). ``--run`` adds a training run's float Keras model (a
``runs/<model>`` folder), for candidates compared before any export, such as a second training
seed. A second hand checks what the training hand cannot: the simulated writer of the learning
loop (``tests/writer.py``: 1s with a flag reaching more than half the height down, 7s with a
crossbar; a seed the loop does not use), whose pictures no training run draws. A second table
draws a third of ``--count`` flags in each way of joining flag and stem, one set each (the
plain sharp or rounded corner, then each of ``FLAG_CONSTRUCTIONS``), and as many 9s and 4s of the
training hand (what reading hooked flags as 1s may cost). A third table reads the four
independent writers (``handwriting.WRITERS``: one person's digits each, written from a persona
alone by an author who saw no other hand of the project), ``--writer-count`` drawings of each
digit by each: their 1s and 7s, and all ten digits. The held-out cursive hand is never drawn here.

Writes ``flagged-ones-validation.json`` and ``.md`` into ``--out`` (default
``benchmarks/results``). Bad options or bundles exit 2 with one line.
"""

from __future__ import annotations

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
from script_parser import script_parser  # noqa: E402
from writer import writer_digits  # noqa: E402

from mnist_edge import handwriting as hw  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
TRAINING_HAND = "Pen strokes (print)"
SEED = 9001  # training draws from seeds 0 and 1 (TrainConfig.seed and the next): not this one
WRITER_SEED = 777  # benchmarks/learning_loop.py draws the writer from seeds 29 and 290
INDEPENDENT_WRITERS_SEED = 9101  # hw.WRITERS: one seed per writer and digit from here (hw.writer_seed)
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


def measure(
    bundles: list[str], runs: list[str], count: int, long_flags: float, varied_flags: float, writer_count: int
) -> dict:
    models = {**open_bundles(bundles), **open_runs(runs)}  # a bad folder is refused before drawing
    hand = {"long_flags": long_flags, "varied_flags": varied_flags}
    ones = hw.draw_digits(count, SEED, (TRAINING_HAND,), variants=hw.FLAGGED_ONES, **hand)
    # The price of reading more flags as 1s: 7s (plain, crossbar, curved stem) of the same hand
    # read as 1.
    sevens = hw.draw_digits(count, SEED + 1, (TRAINING_HAND,), variants=SEVENS, **hand)
    images = read_all([page_png(d.image) for d in ones])
    seven_images = read_all([page_png(d.image) for d in sevens])
    writer = writer_digits(count, WRITER_SEED)  # 1s and 7s in turn
    writer_images = read_all([png for _, png in writer])
    joins = joined_sets(max(1, count // 3), long_flags)
    writers = writer_sets(writer_count)
    rows = {}
    for column, classifier in models.items():
        predictions = judged(classifier, images)
        seven_digits = [p.digit for p in judged(classifier, seven_images)]
        source = (classifier.manifest_entry or {}).get("source") or {}
        row = {"mnist_validation": source.get("validation_accuracy"), "flagged_ones": {}}
        for variant in ("flag", "flag and base"):
            picked = [p.digit for p, d in zip(predictions, ones, strict=True) if d.variant == variant]
            row["flagged_ones"][variant] = tally(picked, 1)
        row["flagged_ones"]["all"] = share(p.digit == 1 for p in predictions)
        row["sevens"] = {
            "accuracy": share(d == 7 for d in seven_digits),
            "read_as_1": share(d == 1 for d in seven_digits),
        }
        read = [(d, p.digit) for (d, _), p in zip(writer, judged(classifier, writer_images), strict=True)]
        row["writer"] = {str(digit): tally([got for d, got in read if d == digit], digit) for digit in (1, 7)}
        row["joins"] = {
            name: {"digit": digit, **tally([p.digit for p in judged(classifier, pictures)], digit)}
            for name, (digit, pictures) in joins.items()
        }
        row["writers"] = {}
        for name, (labels, pictures) in writers.items():
            read = [p.digit for p in judged(classifier, pictures)]
            row["writers"][name] = {
                "all": share(got == label for got, label in zip(read, labels, strict=True)),
                **{
                    f"{d}s": tally([got for got, label in zip(read, labels, strict=True) if label == d], d)
                    for d in (1, 7)
                },
            }
        rows[column] = row
    return rows


def tally(answers: list[int], digit: int) -> dict:
    """How pictures of ``digit`` were read: how many, the share read right, and every answer's count."""
    return {
        "pictures": len(answers),
        "accuracy": share(a == digit for a in answers),
        "read_as": dict(Counter(str(a) for a in answers).most_common()),
    }


JOINS = ("plain", *hw.FLAG_CONSTRUCTIONS)


def joined_sets(count: int, long_flags: float) -> dict[str, tuple[int, np.ndarray]]:
    """``count`` 1s with a flag (no base) for each way of joining flag and stem, each set in one
    way only, and as many 9s and 4s: name -> (digit, pictures read as uploads)."""
    sets = {}
    for offset, name in enumerate(JOINS, start=10):
        drawn = hw.draw_digits(
            count,
            SEED + offset,
            (TRAINING_HAND,),
            variants=((1, "flag"),),
            long_flags=long_flags,
            flag_construction=None if name == "plain" else name,  # plain: the sharp or rounded corner
        )
        sets[name] = (1, read_all([page_png(d.image) for d in drawn]))
    for offset, digit in ((20, 9), (21, 4)):
        variants = tuple((digit, v) for v in hw.VARIANTS[digit])
        drawn = hw.draw_digits(count, SEED + offset, (TRAINING_HAND,), variants=variants)
        sets[f"{digit}s"] = (digit, read_all([page_png(d.image) for d in drawn]))
    return sets


def writer_sets(count: int) -> dict[str, tuple[list[int], np.ndarray]]:
    """``count`` drawings of each digit by each of ``hw.WRITERS``, on the page's canvas with its
    pen: writer -> (digits, pictures read as uploads)."""
    sets = {}
    for name in hw.WRITERS:
        labels, pictures = [], []
        for digit in range(10):
            seed = hw.writer_seed(name, INDEPENDENT_WRITERS_SEED, digit)
            for drawing in hw.draw_writer_digits(count, seed, name, digit):
                labels.append(digit)
                pictures.append(page_png(drawing.image))
        sets[name] = (labels, read_all(pictures))
    return sets


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def misread(counts: dict, digit: int) -> str:
    """What pictures of ``digit`` were read as, the right answer left out: "7: 3, 9: 1"."""
    return ", ".join(f"{k}: {v}" for k, v in counts["read_as"].items() if k != str(digit)) or "-"


def ones_misread(tallies: list[dict]) -> str:
    """What 1s were read as over several tallies, the right answer left out: "7: 3, 9: 1"."""
    misreads = Counter()
    for counts in tallies:
        misreads.update({k: v for k, v in counts["read_as"].items() if k != "1"})
    return ", ".join(f"{k}: {v}" for k, v in misreads.most_common()) or "-"


def share_words(share: float) -> str:
    return {0.0: "none", 1 / 3: "a third", 0.5: "half"}.get(share, f"{share:.0%}")


def markdown(report: dict) -> str:
    varied = report.get("varied_flags", 0.0)
    varied = f", {share_words(varied)} joined to the stem in one of the other constructions" if varied else ""
    lines = [
        f"Measured on {one_line(report['machine'])}. Command: `{report['command']}`. "
        f"{report['count']:,} 1s with a flag drawn by the training hand ({TRAINING_HAND}, seed {SEED}; "
        f"{share_words(report['long_flags'])} of the flags long{varied}) on the page's 280x280 canvas with its "
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
    first = next(iter(report["rows"].values()))["joins"]
    lines += [
        "",
        f"Flags joined to the stem in one way per set ({first['plain']['pictures']:,} 1s with a flag and no "
        f"base each, seeds {SEED + 10}-{SEED + 10 + len(JOINS) - 1}; plain: the sharp or rounded corner, the others "
        "`handwriting.FLAG_CONSTRUCTIONS`), and as many 9s and 4s of the same hand (seeds "
        f"{SEED + 20}, {SEED + 21}; every variant), read the same way. Mean: of the four constructions.",
        "",
        "| model, bundle | " + " | ".join(JOINS) + " | mean | read as (all sets of 1s) | 9s | 4s |",
        "| --- | " + "---: | " * (len(JOINS) + 1) + "--- | ---: | ---: |",
    ]
    for column, row in report["rows"].items():
        joins = row["joins"]
        mean = sum(joins[name]["accuracy"] for name in JOINS[1:]) / len(JOINS[1:])
        lines.append(
            f"| {column} | "
            + " | ".join(pct(joins[name]["accuracy"]) for name in JOINS)
            + f" | {pct(mean)} | {ones_misread([joins[name] for name in JOINS])} "
            f"| {pct(joins['9s']['accuracy'])} | {pct(joins['4s']['accuracy'])} |"
        )
    names = list(next(iter(report["rows"].values()))["writers"])
    short = [name.removeprefix("Writer (").removesuffix(")") for name in names]
    lines += [
        "",
        f"Independent writers (`handwriting.WRITERS`, each written from a persona alone by an author who saw no other "
        f"hand of the project): {report['writer_count']:,} drawings of each digit by each (seeds "
        f"`handwriting.writer_seed(writer, {INDEPENDENT_WRITERS_SEED}, digit)`), "
        "drawn and read the same way. For each writer: 1s read right / 7s read right / all ten digits read right. "
        "Mean: of the writers' 1s.",
        "",
        "| model, bundle | " + " | ".join(short) + " | mean 1s | 1s read as (all writers) |",
        "| --- | " + "---: | " * (len(names) + 1) + "--- |",
    ]
    for column, row in report["rows"].items():
        hands = row["writers"]
        cells = [
            f"{pct(hands[n]['1s']['accuracy'])} / {pct(hands[n]['7s']['accuracy'])} / {pct(hands[n]['all'])}"
            for n in names
        ]
        mean = sum(hands[n]["1s"]["accuracy"] for n in names) / len(names)
        lines.append(
            f"| {column} | " + " | ".join(cells) + f" | {pct(mean)} "
            f"| {ones_misread([hands[n]['1s'] for n in names])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = script_parser(__doc__)
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
        help="flagged 1s drawn, as many 7s, as many drawings by the writer, and a third as many "
        "for each set of the second table (default 3000)",
    )
    parser.add_argument(
        "--writer-count",
        type=positive,
        default=300,
        help="drawings of each digit by each independent writer (default 300)",
    )
    parser.add_argument(
        "--long-flags",
        type=float,
        default=hw.LONG_FLAG_SHARE,
        metavar="SHARE",
        help="the share of the training hand's flags drawn long, 0 to 1 (default 1/3, as conv2d trains)",
    )
    parser.add_argument(
        "--varied-flags",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="the share of the training hand's flags joined to the stem in one of the other "
        "constructions, 0 to 1 (default 0, as both models train)",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)"
    )
    args = parser.parse_args()
    for option in ("long_flags", "varied_flags"):
        if not 0 <= getattr(args, option) <= 1:  # nan too
            parser.error(f"--{option.replace('_', '-')}: a share from 0 to 1, not {getattr(args, option)}")
    if args.count > MAX_COUNT:
        parser.error(f"--count: at most {MAX_COUNT:,}")
    if 10 * len(hw.WRITERS) * args.writer_count > MAX_COUNT:
        parser.error(f"--writer-count: at most {MAX_COUNT // (10 * len(hw.WRITERS)):,}")
    started = time.perf_counter()
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        rows = measure(
            args.bundle, args.run, args.count, args.long_flags, args.varied_flags, args.writer_count
        )
    except (RuntimeInputError, OSError) as exc:
        print(f"flagged_ones.py: {exc}", file=sys.stderr)
        return 2
    command = "python benchmarks/flagged_ones.py " + " ".join(
        [*(f"--bundle {b}" for b in args.bundle), *(f"--run {r}" for r in args.run)]
    )
    if args.count != 3000:
        command += f" --count {args.count}"
    if args.writer_count != 300:
        command += f" --writer-count {args.writer_count}"
    if args.long_flags != hw.LONG_FLAG_SHARE:
        command += f" --long-flags {args.long_flags}"
    if args.varied_flags:
        command += f" --varied-flags {args.varied_flags}"
    report = {
        "command": command,
        "machine": describe_machine(),
        "count": args.count,
        "writer_count": args.writer_count,
        "long_flags": args.long_flags,
        "varied_flags": args.varied_flags,
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
