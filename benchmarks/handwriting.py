"""Handwriting beyond MNIST: held-out pen styles drawn on the page's canvas, each bundle's models side by side.

    python benchmarks/handwriting.py [--bundle DIR ...] [--count N] [--out DIR]
    python benchmarks/handwriting.py --quick --check --min-accuracy 90 ...   # CI: floors, nothing written

Digits and non-digits of ``mnist_edge.handwriting``'s held-out families only (font families and
the pen-stroke hand no training picture comes from) are drawn with the page's pen: a 280x280
canvas, a round pen 18 pixels wide, black on white, saved as the page sends it (an opaque RGBA
PNG), and read as ``serve`` reads an upload (``load_image_bytes``, ``mnist_or_blank``), then
classified and judged as ``Classifier.predict`` does (``predictions_from_scores``). For every int8
model of every bundle: accuracy per digit and per style, 1s with a flag (a set of their own: read
right, and read wrong yet called sure), the
share of right answers the "not sure" rule doubts and of wrong answers it still calls sure; the
same drawings "shrunk to 28x28 by their owner" (cropped square around the ink, resized to fill
28x28, saved as a gray PNG); the share of letters, shapes, scribbles, fragments of digits and two
digits side by side that are doubted; and MNIST validation digits (the first 500; never the test
set) in every input form of ``runtime/tests/forms.py``: accuracy and right answers doubted.

Writes ``handwriting.json`` and ``handwriting.md`` (the table docs/input-forms.md shows) into
``--out`` (default ``benchmarks/results``; nothing with ``--quick`` unless ``--out`` is given).
``--check`` exits 1 when a model misses a floor given by the ``--min-*`` / ``--max-*`` options
(percentages); bad options or bundles exit 2 with one line.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runtime" / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from forms import DIGIT_FORMS, mnist_forms  # noqa: E402
from input_forms import validation_digits  # noqa: E402
from mnist_edge_runtime.bundle import MANIFEST  # noqa: E402
from mnist_edge_runtime.classifier import Classifier, predictions_from_scores  # noqa: E402
from mnist_edge_runtime.errors import RuntimeInputError  # noqa: E402
from mnist_edge_runtime.machine import describe_machine, one_line  # noqa: E402
from mnist_edge_runtime.preprocess import load_image_bytes, mnist_or_blank  # noqa: E402
from script_parser import script_parser  # noqa: E402

from mnist_edge import handwriting as hw  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
DEFAULT_BUNDLES = ["packaged=runtime/mnist_edge_runtime/bundle"]
# Seeds of the benchmark's own drawings (held-out families: no training picture shares them).
SEED_DIGITS, SEED_FLAGGED, SEED_NON_DIGITS = 1001, 1002, 1003
KIND_NAMES = {
    "letter": "letters (not digit-like)",
    "shape": "shapes",
    "scribble": "scribbles",
    "fragment": "fragments of digits",
    "two digits": "two digits side by side",
}
# --check floors: option -> (result key, "min" or "max", what it is)
FLOORS = {
    "min_accuracy": ("accuracy", "min", "held-out digits: accuracy"),
    "min_flagged_ones": ("flagged_ones", "min", "1s with a flag: accuracy"),
    "min_shrunk": ("shrunk_accuracy", "min", "shrunk to 28x28: accuracy"),
    "max_right_doubted": ("doubted_right", "max", "held-out digits: right answers doubted"),
    "min_letters_doubted": ("doubted_letter", "min", "letters doubted"),
    "min_shapes_doubted": ("doubted_shape", "min", "shapes doubted"),
    "max_mnist_right_doubted": (
        "mnist_doubted_right_max",
        "max",
        "MNIST forms: right answers doubted (worst form)",
    ),
}


def page_png(drawing: np.ndarray) -> bytes:
    """The drawing as the page sends it: the canvas's PNG, RGBA and opaque."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(drawing).convert("RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def shrunk_png(drawing: np.ndarray) -> bytes:
    """The drawing as its owner might shrink it to MNIST's size: a square around the ink (on the
    white canvas), resized to 28x28 so that the digit fills the frame, saved as a gray PNG."""
    from PIL import Image

    rows, cols = np.flatnonzero((drawing < 128).any(axis=1)), np.flatnonzero((drawing < 128).any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = max(bottom - top, right - left)
    square = np.full((side, side), 255, np.uint8)
    y, x = (side - (bottom - top)) // 2, (side - (right - left)) // 2
    square[y : y + bottom - top, x : x + right - left] = drawing[top:bottom, left:right]
    buffer = io.BytesIO()
    Image.fromarray(square).resize((28, 28), Image.LANCZOS).save(buffer, format="PNG")
    return buffer.getvalue()


def read_upload(data: bytes) -> np.ndarray:
    """An uploaded picture as ``serve`` reads it (a blank one all black)."""
    return mnist_or_blank(load_image_bytes(data, "upload"), "upload")


def read_all(pictures: list[bytes]) -> np.ndarray:
    return np.stack([read_upload(data) for data in pictures]) if pictures else np.zeros((0, 28, 28), np.uint8)


def bundle_models(bundle: Path) -> dict[str, Path]:
    """The int8 TFLite models a bundle's manifest lists: model name -> file."""
    manifest = bundle / MANIFEST
    if not manifest.is_file():
        raise RuntimeInputError(f"{bundle}: no {MANIFEST}; not a bundle")
    try:
        artifacts = json.loads(manifest.read_text())["artifacts"]
        models = {
            str(a.get("model", a["file"])): bundle / a["file"]
            for a in artifacts.values()
            if a.get("format") == "tflite" and a.get("precision") == "int8"
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        raise RuntimeInputError(f"{manifest}: not a bundle manifest") from None
    if not models:
        raise RuntimeInputError(f"{manifest}: no int8 TFLite model listed")
    return dict(sorted(models.items()))


def bundle_at(rev: str, folder: str) -> Path:
    """The bundle ``folder`` of commit ``rev``, extracted from git into a temporary folder that is
    removed when the benchmark ends."""
    import atexit
    import shutil
    import subprocess
    import tempfile

    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, folder], capture_output=True)
    if archive.returncode != 0:
        raise RuntimeInputError(f"{rev}:{folder}: {archive.stderr.decode().strip() or 'not in git'}")
    target = Path(tempfile.mkdtemp(prefix="handwriting-bundle-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    unpacked = subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, capture_output=True)
    if unpacked.returncode != 0:
        raise RuntimeInputError(f"{rev}:{folder}: cannot unpack: {unpacked.stderr.decode().strip()}")
    return target / folder


def open_bundles(specs: list[str]) -> dict[str, Classifier]:
    """``[NAME=]DIR`` each (a relative DIR from the repository root, or ``REV:DIR`` for that
    folder at a git commit) -> "model, NAME" -> its classifier (NAME defaults to DIR)."""
    classifiers = {}
    for spec in specs:
        name, _, folder = spec.rpartition("=")
        name = name or folder
        path = Path(folder) if Path(folder).is_absolute() else REPO / folder
        if not path.exists() and ":" in folder:  # REV:DIR, a bundle as an earlier commit had it
            path = bundle_at(*folder.split(":", 1))
        for model, file in bundle_models(path).items():
            column = f"{model}, {name}"
            if column in classifiers:
                raise RuntimeInputError(f"{spec}: a second bundle named {name!r}; give it another NAME=")
            classifiers[column] = Classifier.open(file)
    return classifiers


def judged(classifier: Classifier, images: np.ndarray) -> list:
    return predictions_from_scores(classifier.scores(images), images) if len(images) else []


def share(flags) -> float | None:
    flags = list(flags)
    return float(np.mean(flags)) if flags else None


def digit_figures(predictions: list, labels: list[int]) -> dict:
    right = [p.digit == label for p, label in zip(predictions, labels, strict=True)]
    return {
        "pictures": len(labels),
        "accuracy": share(right),
        "doubted_right": share(not p.sure for p, r in zip(predictions, right, strict=True) if r),
        "sure_wrong": share(p.sure and not r for p, r in zip(predictions, right, strict=True)),
    }


def measure(classifier: Classifier, data: dict) -> dict:
    """Every figure of one model, on the pictures ``data`` holds (read once for all models)."""
    digits, flagged, others = data["digits"], data["flagged"], data["non_digits"]
    predictions = judged(classifier, digits["images"])
    labels = [d.label for d in digits["drawings"]]
    result = digit_figures(predictions, labels)
    result["by_digit"] = {
        str(k): digit_figures(
            *zip(*[(p, d) for p, d in zip(predictions, labels, strict=True) if d == k], strict=True)
        )
        for k in range(10)
        if k in labels
    }
    result["by_style"] = {}
    for family in hw.HELD_OUT_FAMILIES:
        pairs = [
            (p, d.label) for p, d in zip(predictions, digits["drawings"], strict=True) if d.family == family
        ]
        if pairs:
            result["by_style"][family] = digit_figures(*map(list, zip(*pairs, strict=True)))
    ones = judged(classifier, flagged["images"])
    result["flagged_ones"] = share(p.digit == 1 for p in ones)
    result["flagged_ones_read_as"] = dict(Counter(str(p.digit) for p in ones).most_common())
    result["flagged_ones_doubted"] = share(not p.sure for p in ones)
    result["flagged_ones_sure_wrong"] = share(p.sure and p.digit != 1 for p in ones)
    shrunk = judged(classifier, digits["shrunk"])
    shrunk_figures = digit_figures(shrunk, labels)
    result["shrunk_accuracy"] = shrunk_figures["accuracy"]
    result["shrunk_doubted_right"] = shrunk_figures["doubted_right"]
    answers = judged(classifier, others["images"])
    result["non_digits"] = {}
    for kind in hw.NON_DIGIT_KINDS:
        picked = [(p, d) for p, d in zip(answers, others["drawings"], strict=True) if d.kind == kind]
        if not picked:
            continue
        sure = Counter(f"{d.variant} -> {p.digit}" for p, d in picked if p.sure)
        result["non_digits"][kind] = {
            "pictures": len(picked),
            "doubted": share(not p.sure for p, _ in picked),
            "reasons": dict(sorted(Counter(str(p.doubt) if p.doubt else "sure" for p, _ in picked).items())),
            "most_often_sure": dict(sure.most_common(8)),
        }
        result[f"doubted_{kind.replace(' ', '_')}"] = result["non_digits"][kind]["doubted"]
    result["mnist_forms"] = {}
    for name, images in data["mnist"]["forms"].items():
        figures = digit_figures(judged(classifier, images), data["mnist"]["labels"])
        result["mnist_forms"][name] = {k: figures[k] for k in ("accuracy", "doubted_right")}
    worst = [r["doubted_right"] for r in result["mnist_forms"].values() if r["doubted_right"] is not None]
    result["mnist_doubted_right_max"] = max(worst) if worst else None
    return result


def draw_and_read(count: int, flagged: int, mnist: int) -> dict:
    """The benchmark's pictures, drawn, encoded and read back once (the reading does not depend
    on the model)."""
    families = hw.HELD_OUT_FAMILIES
    started = time.perf_counter()
    digits = hw.draw_digits(count, SEED_DIGITS, families)
    ones = hw.draw_digits(flagged, SEED_FLAGGED, families, variants=hw.FLAGGED_ONES)
    others = hw.draw_non_digits(count, SEED_NON_DIGITS, families)
    drawn = time.perf_counter()
    data = {
        "digits": {
            "drawings": digits,
            "images": read_all([page_png(d.image) for d in digits]),
            "shrunk": read_all([shrunk_png(d.image) for d in digits]),
        },
        "flagged": {"drawings": ones, "images": read_all([page_png(d.image) for d in ones])},
        "non_digits": {"drawings": others, "images": read_all([page_png(d.image) for d in others])},
    }
    read = time.perf_counter()
    validation, labels = validation_digits(mnist)
    data["mnist"] = {
        "labels": [int(v) for v in labels],
        "forms": {
            name: mnist_forms(make, validation, range(len(labels))) for name, make in DIGIT_FORMS.items()
        },
    }
    data["seconds"] = {
        "drawing": round(drawn - started, 1),
        "encoding_and_reading": round(read - drawn, 1),
        "mnist_forms": round(time.perf_counter() - read, 1),
    }
    return data


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def markdown(report: dict) -> str:
    columns = report["columns"]
    models = [report["models"][c] for c in columns]
    rule = "|---|" + "---:|" * len(columns)

    def header(first: str) -> str:
        return f"| {first} | " + " | ".join(columns) + " |"

    counts = report["pictures"]
    lines = [
        f"Measured on {one_line(report['machine'])}. Command: `{report['command']}`. Columns: each int8 "
        "model of each bundle (model, bundle: "
        + ", ".join(f"{k} = `{v}`" for k, v in report["bundles"].items())
        + ").",
        "",
        f"Held-out digits drawn on the page ({counts['digits']:,}; `mnist_edge.handwriting`'s held-out "
        "families, 280x280 canvas, 18-pixel pen, read as an upload): accuracy per digit.",
        "",
        header("digit"),
        rule,
        "| all" + "".join(f" | {pct(m['accuracy'])}" for m in models) + " |",
    ]
    for k in map(str, range(10)):
        lines.append(
            f"| {k}" + "".join(f" | {pct(m['by_digit'].get(k, {}).get('accuracy'))}" for m in models) + " |"
        )
    lines += [
        "",
        "The same digits by style (font family or pen-stroke hand, none of them seen in training), 1s "
        f"with a flag ({counts['flagged_ones']:,} of their own), the drawings shrunk to 28x28 by their "
        'owner, and what the "not sure" rule makes of the answers.',
        "",
        header("style"),
        rule,
    ]
    for family in hw.HELD_OUT_FAMILIES:
        lines.append(
            f"| {family}"
            + "".join(f" | {pct(m['by_style'].get(family, {}).get('accuracy'))}" for m in models)
            + " |"
        )
    lines += [
        "| 1 with a flag" + "".join(f" | {pct(m['flagged_ones'])}" for m in models) + " |",
        "| 1 with a flag, wrong and called sure"
        + "".join(f" | {pct(m['flagged_ones_sure_wrong'])}" for m in models)
        + " |",
        "| shrunk to 28x28 by their owner"
        + "".join(f" | {pct(m['shrunk_accuracy'])}" for m in models)
        + " |",
        "| right answers doubted" + "".join(f" | {pct(m['doubted_right'])}" for m in models) + " |",
        "| wrong answers called sure (share of all digits)"
        + "".join(f" | {pct(m['sure_wrong'])}" for m in models)
        + " |",
        "",
        f'Not digits drawn on the page ({counts["non_digits"]:,}, held-out families): the share the "not '
        'sure" rule doubts (the rest get a sure digit).',
        "",
        header("not a digit"),
        rule,
    ]
    for kind, name in KIND_NAMES.items():
        lines.append(
            f"| {name}"
            + "".join(f" | {pct(m['non_digits'].get(kind, {}).get('doubted'))}" for m in models)
            + " |"
        )
    lines += [
        "",
        f"MNIST validation digits (the first {counts['mnist_per_form']}) in every input form of "
        "`runtime/tests/forms.py`: accuracy / right answers doubted.",
        "",
        header("form"),
        rule,
    ]
    for form in DIGIT_FORMS:
        cells = "".join(
            f" | {pct(m['mnist_forms'][form]['accuracy'])} / {pct(m['mnist_forms'][form]['doubted_right'])}"
            for m in models
        )
        lines.append(f"| {form}{cells} |")
    return "\n".join(lines) + "\n"


def misses(report: dict, floors: dict[str, float]) -> list[str]:
    found = []
    for column, result in report["models"].items():
        for option, limit in floors.items():
            key, direction, what = FLOORS[option]
            value = result.get(key)
            if value is None:
                found.append(f"{column}: {what}: not measured")
            elif (direction == "min" and 100 * value < limit) or (direction == "max" and 100 * value > limit):
                found.append(
                    f"{column}: {what} {100 * value:.1f}% {'<' if direction == 'min' else '>'} {limit:g}%"
                )
    return found


def percent(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"a percentage from 0 to 100, got {text}")
    return value


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"a count of at least 1, got {text}")
    return value


def main() -> int:
    parser = script_parser(__doc__)
    parser.add_argument(
        "--bundle",
        action="append",
        metavar="[NAME=]DIR",
        help="a bundle folder, or REV:DIR for that folder at a git commit, named NAME in the tables (repeatable; default: "
        "packaged=runtime/mnist_edge_runtime/bundle, the models the runtime package carries)",
    )
    parser.add_argument(
        "--count", type=positive, help="held-out digits and non-digits each (default 2000; 200 with --quick)"
    )
    parser.add_argument(
        "--out", type=Path, help="results folder (default: benchmarks/results; none with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="small counts (CI)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a model misses a floor given below")
    for option, (_, direction, what) in FLOORS.items():
        parser.add_argument(
            "--" + option.replace("_", "-"),
            type=percent,
            metavar="PCT",
            help=f"{'lowest' if direction == 'min' else 'highest'} {what} (percent) that --check accepts",
        )
    args = parser.parse_args()
    floors = {option: getattr(args, option) for option in FLOORS if getattr(args, option) is not None}
    if args.check and not floors:
        parser.error("--check needs at least one floor (--min-* or --max-*)")
    if floors and not args.check:
        parser.error("floors are checked only with --check")
    count = args.count or (200 if args.quick else 2000)
    flagged, mnist = max(count // 4, 50), 100 if args.quick else 500
    try:
        classifiers = open_bundles(args.bundle or DEFAULT_BUNDLES)
    except RuntimeInputError as exc:
        print(f"handwriting.py: {exc}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    data = draw_and_read(count, flagged, mnist)
    command = "python benchmarks/handwriting.py" + "".join(
        f" {flag}"
        for flag, on in (
            (" ".join(f"--bundle {b}" for b in args.bundle or []), args.bundle),
            (f"--count {args.count}", args.count),
            ("--quick", args.quick),
        )
        if on
    )
    report = {
        "command": command,
        "machine": describe_machine(),
        "families": list(hw.HELD_OUT_FAMILIES),
        "pictures": {"digits": count, "flagged_ones": flagged, "non_digits": count, "mnist_per_form": mnist},
        "bundles": dict(
            spec.rpartition("=")[::2] if "=" in spec else (spec, spec)
            for spec in args.bundle or DEFAULT_BUNDLES
        ),
        "columns": list(classifiers),
        "models": {},
    }
    for column, classifier in classifiers.items():
        sha256 = (classifier.manifest_entry or {}).get("sha256")
        report["models"][column] = {"file": str(classifier.path.relative_to(REPO)) if classifier.path.is_relative_to(REPO) else str(classifier.path),
                                    "sha256": sha256, "backend": classifier.backend, **measure(classifier, data)}  # fmt: skip
    report["seconds"] = {**data["seconds"], "total": round(time.perf_counter() - started, 1)}
    text = markdown(report)
    print(text)
    out = args.out or (None if args.quick else RESULTS)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "handwriting.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "handwriting.md").write_text(text)
    found = misses(report, floors)
    for miss in found:
        print(f"floor missed: {miss}", file=sys.stderr)
    return 1 if args.check and found else 0


if __name__ == "__main__":
    raise SystemExit(main())
