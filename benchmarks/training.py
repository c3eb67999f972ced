"""Training speed: where an epoch's time goes, and old defaults against new ones, side by side.

    python benchmarks/training.py [--out benchmarks/results] [--candidate conv2d:8:256:0.003 ...]

In one run on this machine:

1. the machine's float32 peak, measured with a matrix-multiply probe in TensorFlow
   (all threads, like training);
2. a profile of one epoch of each model: the input pipeline alone (shuffle,
   augmentation), the train step alone (on batches prepared beforehand), the
   real epoch (both overlapped, as ``train`` runs it), the per-batch progress
   callback, validation and the checkpoint;
3. full training runs of the previous defaults and the current ones (or the
   ``--candidate`` settings): wall time, images/s, the FLOP rate achieved against
   the probe's peak, the time until the *validation* accuracy first reaches the
   original project's test figure (99.32% / 97.46%), and the final validation and
   test accuracies.

Schedules are chosen on the validation split; the test accuracy is reported,
never used to choose. Writes ``training.json`` and ``training.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from mnist_edge_runtime.machine import describe_machine, one_line  # noqa: E402
from run import count_macs  # noqa: E402  (benchmarks/run.py: MACs per image from the Keras layers)
from script_parser import script_parser  # noqa: E402

from mnist_edge.data import load_mnist  # noqa: E402
from mnist_edge.train import (  # noqa: E402
    DEFAULTS,
    ProgressHooks,
    TrainConfig,
    compile_model,
    epoch_dataset,
    evaluation_dataset,
    train,
)

ORIGINAL = {"conv2d": 0.9932, "flat": 0.9746}
# The defaults before this benchmark existed (mnist-edge 0.1 at commit cdc1eb6), kept to compare against.
PREVIOUS_DEFAULTS = {
    "conv2d": TrainConfig(model="conv2d", epochs=15),
    "flat": TrainConfig(model="flat", epochs=40, learning_rate=1e-3, rotation=8.0, shift=2.0),
}

# The defaults before the models learned handwriting beyond MNIST (commit 5399071): 6 and 20 epochs
# on MNIST alone. Against them, --against mnist-only measures what the handwriting costs in time.
MNIST_ONLY_DEFAULTS = {
    "conv2d": TrainConfig(model="conv2d", epochs=6),
    "flat": TrainConfig(model="flat", epochs=20, learning_rate=1e-3, rotation=8.0, shift=2.0),
}
BASELINES = {"previous": PREVIOUS_DEFAULTS, "mnist-only": MNIST_ONLY_DEFAULTS}


# --- the machine's peak --------------------------------------------------------------------------


def matmul_peak_gflops(size: int = 2048, seconds: float = 3.0) -> float:
    """The best float32 matmul rate TensorFlow reaches here, in GFLOP/s (2 n^3 FLOPs per product)."""
    from mnist_edge.tensorflow_quiet import tf

    a = tf.random.stateless_uniform((size, size), seed=(1, 2))
    b = tf.random.stateless_uniform((size, size), seed=(3, 4))
    tf.matmul(a, b).numpy()  # warm-up
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = max(best, 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


def training_flops_per_image(model) -> int:
    # Forward pass 2 FLOPs per MAC; the backward pass costs about twice the forward one.
    return 3 * 2 * count_macs(model)


# --- one epoch, taken apart ----------------------------------------------------------------------


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def profile_epoch(config: TrainConfig, data, repeats: int = 3) -> dict:
    """Seconds of each part of one epoch, each measured ``repeats`` times (median, min, max).

    Epochs are timed after a warm-up epoch, so tracing is not counted. On a shared or throttled
    machine the same epoch can take very different times; the spread shows it.
    """
    from mnist_edge.tensorflow_quiet import tf
    from mnist_edge.train import _BatchProgress

    steps = math.ceil(len(data.train) / config.batch_size)
    model = compile_model(config, steps)
    validation = evaluation_dataset(data.validation, config.model)
    model.fit(epoch_dataset(data.train, config, 0), epochs=1, verbose=0)  # trace and warm up
    model.evaluate(validation, verbose=0)

    def drain(dataset) -> None:
        for _ in dataset:
            pass

    parts = {
        name: []
        for name in (
            "input_pipeline",
            "train_step",
            "epoch_fit",
            "epoch_fit_with_progress_callback",
            "validation",
            "checkpoint",
        )
    }
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        for r in range(repeats):
            prepared = epoch_dataset(data.train, config, 1 + r).cache()
            parts["input_pipeline"].append(timed(lambda d=prepared: drain(d)))  # also fills the cache
            parts["train_step"].append(timed(lambda d=prepared: model.fit(d, epochs=1, verbose=0)))
            live = epoch_dataset(data.train, config, 10 + r)
            parts["epoch_fit"].append(timed(lambda d=live: model.fit(d, epochs=1, verbose=0)))
            live = epoch_dataset(data.train, config, 20 + r)
            hooks = [_BatchProgress(ProgressHooks())]
            parts["epoch_fit_with_progress_callback"].append(
                timed(lambda d=live, c=hooks: model.fit(d, epochs=1, verbose=0, callbacks=c))
            )
            parts["validation"].append(timed(lambda: model.evaluate(validation, verbose=0)))
            parts["checkpoint"].append(timed(lambda: checkpoint.save(f"{tmp}/ckpt")))
    flops = training_flops_per_image(model) * len(data.train)
    row = {"model": config.model, "batch_size": config.batch_size, "repeats": repeats}
    for name, times in parts.items():
        row[f"{name}_s"] = {
            "median": round(statistics.median(times), 3),
            "min": round(min(times), 3),
            "max": round(max(times), 3),
        }
    row["train_step_gflops_best"] = round(flops / min(parts["train_step"]) / 1e9, 1)
    return row


# --- whole runs ----------------------------------------------------------------------------------


class EpochClock(ProgressHooks):
    def __init__(self) -> None:
        self.metrics: list[dict] = []

    def epoch_finished(self, metrics: dict) -> None:
        self.metrics.append({**metrics, "at_s": time.perf_counter()})


def full_run(label: str, config: TrainConfig, data, peak_gflops: float, keep: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        clock = EpochClock()
        started = time.perf_counter()
        result = train(config, data, keep or Path(tmp), progress=clock)
        wall = time.perf_counter() - started
    flops = training_flops_per_image(result.model) * len(data.train) * config.epochs
    reached = next(
        (m["at_s"] - started for m in clock.metrics if m["val_accuracy"] >= ORIGINAL[config.model]), None
    )
    achieved = flops / wall / 1e9
    row = {
        "label": label,
        "round": None,
        "config": asdict(config),
        "wall_s": round(wall, 1),
        "images_per_s": round(len(data.train) * config.epochs / wall),
        "achieved_gflops": round(achieved, 1),
        "of_peak": round(achieved / peak_gflops, 3),
        "seconds_to_original_on_validation": None if reached is None else round(reached, 1),
        "epoch_seconds_median": round(statistics.median(m["seconds"] for m in clock.metrics), 2),
        "validation_accuracy": result.record["validation_accuracy"],
        "test_accuracy": result.record["test_accuracy"],
    }
    print(json.dumps(row), file=sys.stderr)
    return row


def parse_candidate(text: str) -> TrainConfig:
    """``model:epochs:batch:learning_rate`` on top of that model's current defaults."""
    try:
        model, epochs, batch, rate = text.split(":")
        return replace(DEFAULTS[model], epochs=int(epochs), batch_size=int(batch), learning_rate=float(rate))
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"{text!r}: expected model:epochs:batch:learning_rate") from None


def markdown(result: dict) -> str:
    lines = [
        "# Training speed",
        "",
        f"Machine: {result['machine']}",
        f"Matmul probe (float32, 2048x2048, all threads): **{result['peak_gflops']:.0f} GFLOP/s**",
        "",
        "## One epoch, taken apart (seconds: median, and min to max over the repeats)",
        "",
        "| model | batch | input pipeline alone | train step alone | epoch as trained (overlapped) "
        "| + progress callback | validation | checkpoint | best train step GFLOP/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cell(part: dict) -> str:
        return f"{part['median']:g} ({part['min']:g}-{part['max']:g})"

    for p in result["profile"]:
        lines.append(
            f"| {p['model']} | {p['batch_size']} | {cell(p['input_pipeline_s'])} | {cell(p['train_step_s'])} "
            f"| {cell(p['epoch_fit_s'])} | {cell(p['epoch_fit_with_progress_callback_s'])} "
            f"| {cell(p['validation_s'])} | {cell(p['checkpoint_s'])} | {p['train_step_gflops_best']} |"
        )
    if not result["profile"]:
        lines = lines[:5]
    if not result["runs"]:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        "## Whole runs",
        "",
        "| round | run | model | epochs | batch | lr | wall | median epoch | images/s | GFLOP/s (of peak) "
        "| to original (val) | val accuracy | test accuracy |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["runs"]:
        c = r["config"]
        reached = (
            "never"
            if r["seconds_to_original_on_validation"] is None
            else f"{r['seconds_to_original_on_validation']} s"
        )
        lines.append(
            f"| {r.get('round') or ''} | {r['label']} | {c['model']} | {c['epochs']} | {c['batch_size']} | {c['learning_rate']:g} "
            f"| {r['wall_s']} s | {r.get('epoch_seconds_median', '')} s | {r['images_per_s']} "
            f"| {r['achieved_gflops']} ({r['of_peak']:.0%}) "
            f"| {reached} | {r['validation_accuracy']:.2%} | {r['test_accuracy']:.2%} |"
        )
    totals = {}
    for r in result["runs"]:
        totals[r["label"]] = totals.get(r["label"], 0.0) + r["wall_s"]
    baselines = {"previous": "previous defaults", "mnist-only": "MNIST-only defaults of 5399071"}
    for label, name in baselines.items():
        if {label, "current"} <= totals.keys():
            before, now = totals[label], totals["current"]
            verdict = f"{before / now:.2f}x faster" if now <= before else f"{now / before:.2f}x the time"
            lines += ["", f"Both models: {name} {before:.0f} s, current {now:.0f} s (**{verdict}**)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="Results folder.")
    parser.add_argument(
        "--candidate",
        type=parse_candidate,
        action="append",
        help="Instead of previous vs current defaults, train these (model:epochs:batch:learning_rate).",
    )
    parser.add_argument("--no-profile", action="store_true", help="Skip the one-epoch profile.")
    parser.add_argument("--profile-only", action="store_true", help="Only the one-epoch profile.")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="Rounds of previous vs current; every other round runs current first.",
    )
    parser.add_argument("--keep-current", type=Path, help="Train the current defaults into this runs folder.")
    parser.add_argument(
        "--against",
        choices=sorted(BASELINES),
        default="previous",
        help="The defaults the current ones run beside: previous (15 and 40 epochs) or mnist-only "
        "(5399071's 6 and 20 epochs on MNIST alone; results named training-vs-mnist-only).",
    )
    args = parser.parse_args()

    data = load_mnist()
    peak = matmul_peak_gflops()
    print(f"matmul peak {peak:.0f} GFLOP/s", file=sys.stderr)
    profile = [] if args.no_profile else [profile_epoch(DEFAULTS[m], data) for m in ("conv2d", "flat")]
    for p in profile:
        print(json.dumps(p), file=sys.stderr)
    if args.profile_only:
        plan = []
    elif args.candidate:
        plan = [("candidate", c) for c in args.candidate]
    else:
        # The machine may run slower for minutes at a time (see docs/speed.md, "Training time"), so
        # previous and current alternate in order, round after round, and their totals compare.
        plan = []
        for r in range(args.rounds):
            for m in ("conv2d", "flat"):
                pair = [(args.against, BASELINES[args.against][m]), ("current", DEFAULTS[m])]
                plan += [(label, config, r + 1) for label, config in (pair if r % 2 == 0 else pair[::-1])]
    runs = []
    for label, config, *round_ in plan:
        keep = args.keep_current if label == "current" else None
        runs.append({**full_run(label, config, data, peak, keep), "round": round_[0] if round_ else None})
    result = {
        "machine": one_line(describe_machine()),
        "peak_gflops": round(peak, 1),
        "profile": profile,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = (
        "training-profile"
        if args.profile_only
        else "training-candidates"
        if args.candidate
        else "training"
        if args.against == "previous"
        else f"training-vs-{args.against}"
    )
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
