"""``mnist-edge-runtime bench --compare``: int8 against float32 on the CPU at hand, side by side.

Whether an int8 model is faster than its float32 twin depends on the CPU (8-bit dot-product
instructions: VNNI on x86, ``asimddp`` on Arm) and on how the interpreter splits the graph, so it
is measured where it matters instead of assumed. Every file runs through the runtime, as
``predict`` and ``serve`` run it, in interleaved rounds: each round times every file, in an order
rotated from round to round, so a machine whose speed changes during the run (shared cores,
throttling) slows every file alike instead of the one that happened to run then.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from mnist_edge_runtime.backends import missing_backend
from mnist_edge_runtime.bundle import PACKAGED_BUNDLE, read_manifest
from mnist_edge_runtime.classifier import Classifier
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.machine import describe_machine, one_line

PRECISIONS = ("int8", "float32")
FORMATS = ("tflite", "onnx")
BATCH = 256
BATCHES_PER_ROUND = 3
# Ratios nearer to 1 than this are reported as "as fast": on a shared or throttling machine the
# rounds of one file spread by more than that, so a 3% "win" would be noise dressed as a result.
SAME_WITHIN = 0.05


@dataclass(frozen=True)
class Pair:
    """An int8 file and its float32 twin, same model, same format."""

    model: str
    format: str
    int8: Path
    float32: Path


@dataclass
class Timing:
    """One file's measurements, pooled over the rounds."""

    path: Path
    backend: str
    single_s: list[float] = field(default_factory=list)  # every timed one-image call
    batch_s: list[float] = field(default_factory=list)  # every timed call of a batch

    @property
    def single_p50_s(self) -> float:
        return float(np.percentile(self.single_s, 50))

    @property
    def batch_rate(self) -> float:
        """Images per second at the median batch call: a call the scheduler preempted (a shared
        machine does, for milliseconds) drops out of a median, where it would weigh in a total."""
        return BATCH / statistics.median(self.batch_s)


def pairs_in(bundle: Path) -> tuple[list[Pair], list[str]]:
    """The int8/float32 pairs of ``bundle`` that can run here, and one line for each that cannot."""
    files: dict[str, dict[tuple[str, str], Path]] = {}
    for name, entry in read_manifest(bundle)["artifacts"].items():
        entry = entry if isinstance(entry, dict) else {}
        parts = name.split(".")
        model = str(entry.get("model") or parts[0])
        precision = str(entry.get("precision") or (parts[1] if len(parts) > 2 else ""))
        form = str(entry.get("format") or parts[-1])
        if form in FORMATS and precision in PRECISIONS:
            files.setdefault(model, {})[form, precision] = bundle / name
    pairs, notes = [], []
    for model, found in files.items():
        for form in FORMATS:
            present = {
                p: found[form, p] for p in PRECISIONS if (form, p) in found and found[form, p].is_file()
            }
            if not present:
                continue
            if len(present) < len(PRECISIONS):
                (have,) = present
                lacking = next(p for p in PRECISIONS if p != have)
                notes.append(
                    f"{model}: no {model}.{lacking}.{form} in {bundle}, so {present[have].name} has nothing "
                    f"to be compared with{_packaged_hint(bundle)}"
                )
                continue
            pairs.append(Pair(model, form, present["int8"], present["float32"]))
    runnable = []
    for form in FORMATS:
        of_form = [p for p in pairs if p.format == form]
        why = missing_backend(of_form[0].int8) if of_form else None
        if why:
            notes.append(f"the .{form} files are not timed: {why}")
        else:
            runnable += of_form
    order = list(files)  # the manifest's order of models, each model's formats in FORMATS order
    runnable.sort(key=lambda p: (order.index(p.model), FORMATS.index(p.format)))
    return runnable, notes


def _packaged_hint(bundle: Path) -> str:
    if Path(bundle).resolve() != PACKAGED_BUNDLE.resolve():
        return ""
    return (
        " (the bundle this package carries holds the int8 .tflite models only; name a full export "
        "bundle, such as the repository's export/, with --bundle)"
    )


def measure(
    classifiers: dict[Path, Classifier],
    rounds: int,
    repeat: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[Path, Timing]:
    """Time every classifier: per round, ``repeat`` one-image calls and a few batches of 256."""
    images = np.random.default_rng(0).integers(0, 256, size=(BATCH, 28, 28), dtype=np.uint8)
    timings = {path: Timing(path, c.backend) for path, c in classifiers.items()}
    for c in classifiers.values():  # first calls allocate and pack weights: not timed
        c.scores(images[:1])
        c.scores(images)
    paths = list(classifiers)
    for r in range(rounds):
        for path in paths[r % len(paths) :] + paths[: r % len(paths)]:
            c, timing = classifiers[path], timings[path]
            # A change of batch size reallocates the interpreter's tensors: one untimed call each.
            c.scores(images[:1])
            for i in range(repeat):
                one = images[i % BATCH : i % BATCH + 1]
                start = clock()
                c.scores(one)
                timing.single_s.append(clock() - start)
            c.scores(images)
            for _ in range(BATCHES_PER_ROUND):
                start = clock()
                c.scores(images)
                timing.batch_s.append(clock() - start)
    return timings


def how_much(ratio: float) -> str:
    """``2.31x faster``, ``1.59x slower`` or ``as fast (within 5%)``: how int8 did, given
    ``ratio`` = float32's time / int8's time."""
    if ratio >= 1 + SAME_WITHIN:
        return f"{ratio:.2f}x faster"
    if ratio <= 1 / (1 + SAME_WITHIN):
        return f"{1 / ratio:.2f}x slower"
    return f"as fast (within {SAME_WITHIN:.0%})"


def verdict(model: str, pairs: list[Pair], timings: dict[Path, Timing], cpu: str) -> str:
    """One line: is int8 faster than float32 for ``model`` on this CPU, one image and in batches."""
    parts = []
    for n, pair in enumerate(pairs):
        i8, f32 = timings[pair.int8], timings[pair.float32]
        single = how_much(f32.single_p50_s / i8.single_p50_s)
        batch = how_much(i8.batch_rate / f32.batch_rate)
        if n == 0:  # the first pair carries the sentence: "int8 is 1.40x faster than float32 ..."
            single = single.replace("as fast", "as fast as float32", 1) if single.startswith("as") else single
            single = single if single.startswith("as") else f"{single} than float32"
            parts.append(
                f"int8 is {single} on this CPU ({cpu}) for one image on {i8.backend}, "
                f"{batch} in batches of {BATCH}"
            )
        else:
            parts.append(f"on {i8.backend} {single} for one image, {batch} in batches of {BATCH}")
    return f"{model}: " + "; ".join(parts)


def table(pairs: list[Pair], timings: dict[Path, Timing]) -> list[str]:
    lines = [
        f"| model | precision | file | backend | 1 image p50 (µs) | batch of {BATCH} (images/s) |",
        "| --- | --- | --- | --- | ---: | ---: |",
    ]
    for pair in pairs:
        for precision in PRECISIONS:
            t = timings[getattr(pair, precision)]
            lines.append(
                f"| {pair.model} | {precision} | {t.path.name} | {t.backend} | "
                f"{t.single_p50_s * 1e6:.1f} | {t.batch_rate:,.0f} |"
            )
    return lines


def compare(
    bundle: Path,
    backend: str | None = None,
    threads: int = 1,
    rounds: int = 10,
    repeat: int = 200,
    out: TextIO | None = None,
    err: TextIO | None = None,
    opener: Callable[..., Classifier] = Classifier.open,
    clock: Callable[[], float] = time.perf_counter,
) -> int:
    """Time every int8/float32 pair of ``bundle``, print the table and one verdict per model.

    Returns 0; raises ``RuntimeInputError`` (exit 2) when no pair can be compared here.
    """
    out, err = out or sys.stdout, err or sys.stderr
    if backend == "onnxruntime":
        raise RuntimeInputError(
            "--compare: --backend names the TFLite interpreter (.onnx files run on onnxruntime)"
        )
    pairs, notes = pairs_in(bundle)
    for note in notes:
        err.write(note + "\n")
    if not pairs:
        raise RuntimeInputError(f"{bundle}: no model has both an int8 and a float32 file that can run here")
    classifiers = {}
    for pair in pairs:
        for path in (pair.int8, pair.float32):
            # Checked as every command checks a file: its manifest entry and its own digest.
            classifiers[path] = opener(path, backend if path.suffix == ".tflite" else None, threads)
    timings = measure(classifiers, rounds, repeat, clock)
    machine = describe_machine()
    cpu = machine["cpu"]["model"]
    print(f"CPU: {one_line(machine)}", file=out)
    print(
        f"Bundle {bundle}; each file through the runtime, {threads} thread{'s' if threads > 1 else ''}, "
        f"{rounds} interleaved round{'s' if rounds > 1 else ''}: 1 image p50 of {rounds * repeat:,} calls, "
        f"batch of {BATCH}: the median of {rounds * BATCHES_PER_ROUND:,} calls.",
        file=out,
    )
    print("", file=out)
    for line in table(pairs, timings):
        print(line, file=out)
    print("", file=out)
    for model in dict.fromkeys(p.model for p in pairs):
        print(verdict(model, [p for p in pairs if p.model == model], timings, cpu), file=out)
    return 0
