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
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from mnist_edge_runtime.machine import describe_machine, one_line  # noqa: E402

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
# The defaults before this benchmark existed (mnist-edge 0.1 as of issue 11), kept to compare against.
PREVIOUS_DEFAULTS = {
    "conv2d": TrainConfig(model="conv2d", epochs=15),
    "flat": TrainConfig(model="flat", epochs=40, learning_rate=1e-3, rotation=8.0, shift=2.0),
}


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


def forward_macs(model) -> int:
    """Multiply-accumulates of one image's forward pass: the convolutions and dense layers."""
    macs = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, h, w, c_out = layer.output_shape
            kh, kw = layer.kernel_size
            macs += h * w * c_out * kh * kw * layer.input_shape[-1]
        elif kind == "Dense":
            macs += layer.input_shape[-1] * layer.units
    return macs


def training_flops_per_image(model) -> int:
    # Forward pass 2 FLOPs per MAC; the backward pass costs about twice the forward one.
    return 3 * 2 * forward_macs(model)


# --- one epoch, taken apart ----------------------------------------------------------------------


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def profile_epoch(config: TrainConfig, data) -> dict:
    """Seconds of each part of one epoch (the second one, so tracing is not counted)."""
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

    prepared = epoch_dataset(data.train, config, 1).cache()
    pipeline = timed(lambda: drain(prepared))  # also fills the cache
    step = timed(lambda: model.fit(prepared, epochs=1, verbose=0))
    epoch = timed(lambda: model.fit(epoch_dataset(data.train, config, 2), epochs=1, verbose=0))
    callback = timed(
        lambda: model.fit(
            epoch_dataset(data.train, config, 3),
            epochs=1,
            verbose=0,
            callbacks=[_BatchProgress(ProgressHooks())],
        )
    )
    evaluate = timed(lambda: model.evaluate(validation, verbose=0))
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        save = timed(lambda: checkpoint.save(f"{tmp}/ckpt"))
    flops = training_flops_per_image(model) * len(data.train)
    return {
        "model": config.model,
        "batch_size": config.batch_size,
        "input_pipeline_s": round(pipeline, 2),
        "train_step_s": round(step, 2),
        "epoch_fit_s": round(epoch, 2),
        "epoch_fit_with_progress_callback_s": round(callback, 2),
        "validation_s": round(evaluate, 2),
        "checkpoint_s": round(save, 3),
        "train_step_gflops": round(flops / step / 1e9, 1),
    }


# --- whole runs ----------------------------------------------------------------------------------


class EpochClock(ProgressHooks):
    def __init__(self) -> None:
        self.metrics: list[dict] = []

    def epoch_finished(self, metrics: dict) -> None:
        self.metrics.append({**metrics, "at_s": time.perf_counter()})


def full_run(label: str, config: TrainConfig, data, peak_gflops: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        clock = EpochClock()
        started = time.perf_counter()
        result = train(config, data, Path(tmp), progress=clock)
        wall = time.perf_counter() - started
    flops = training_flops_per_image(result.model) * len(data.train) * config.epochs
    reached = next(
        (m["at_s"] - started for m in clock.metrics if m["val_accuracy"] >= ORIGINAL[config.model]), None
    )
    achieved = flops / wall / 1e9
    row = {
        "label": label,
        "config": asdict(config),
        "wall_s": round(wall, 1),
        "images_per_s": round(len(data.train) * config.epochs / wall),
        "achieved_gflops": round(achieved, 1),
        "of_peak": round(achieved / peak_gflops, 3),
        "seconds_to_original_on_validation": None if reached is None else round(reached, 1),
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
        "## One epoch, taken apart (seconds)",
        "",
        "| model | batch | input pipeline alone | train step alone | epoch (overlapped) "
        "| + progress callback | validation | checkpoint | train step GFLOP/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in result["profile"]:
        lines.append(
            f"| {p['model']} | {p['batch_size']} | {p['input_pipeline_s']} | {p['train_step_s']} "
            f"| {p['epoch_fit_s']} | {p['epoch_fit_with_progress_callback_s']} | {p['validation_s']} "
            f"| {p['checkpoint_s']} | {p['train_step_gflops']} |"
        )
    lines += [
        "",
        "## Whole runs",
        "",
        "| run | model | epochs | batch | lr | wall | images/s | GFLOP/s (of peak) "
        "| to original (val) | val accuracy | test accuracy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["runs"]:
        c = r["config"]
        reached = (
            "never"
            if r["seconds_to_original_on_validation"] is None
            else f"{r['seconds_to_original_on_validation']} s"
        )
        lines.append(
            f"| {r['label']} | {c['model']} | {c['epochs']} | {c['batch_size']} | {c['learning_rate']:g} "
            f"| {r['wall_s']} s | {r['images_per_s']} | {r['achieved_gflops']} ({r['of_peak']:.0%}) "
            f"| {reached} | {r['validation_accuracy']:.2%} | {r['test_accuracy']:.2%} |"
        )
    totals = {}
    for r in result["runs"]:
        totals[r["label"]] = totals.get(r["label"], 0.0) + r["wall_s"]
    if {"previous", "current"} <= totals.keys():
        ratio = totals["previous"] / totals["current"]
        lines += [
            "",
            f"Both models: previous defaults {totals['previous']:.0f} s, current {totals['current']:.0f} s "
            f"(**{ratio:.2f}x faster**).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="Results folder.")
    parser.add_argument(
        "--candidate",
        type=parse_candidate,
        action="append",
        help="Instead of previous vs current defaults, train these (model:epochs:batch:learning_rate).",
    )
    parser.add_argument("--no-profile", action="store_true", help="Skip the one-epoch profile.")
    args = parser.parse_args()

    data = load_mnist()
    peak = matmul_peak_gflops()
    print(f"matmul peak {peak:.0f} GFLOP/s", file=sys.stderr)
    profile = [] if args.no_profile else [profile_epoch(DEFAULTS[m], data) for m in ("conv2d", "flat")]
    for p in profile:
        print(json.dumps(p), file=sys.stderr)
    if args.candidate:
        plan = [("candidate", c) for c in args.candidate]
    else:
        plan = [(label, table[m]) for m in ("conv2d", "flat") for label, table in
                (("previous", PREVIOUS_DEFAULTS), ("current", DEFAULTS))]  # fmt: skip
    runs = [full_run(label, config, data, peak) for label, config in plan]
    result = {
        "machine": one_line(describe_machine()),
        "peak_gflops": round(peak, 1),
        "profile": profile,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "training-candidates" if args.candidate else "training"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
