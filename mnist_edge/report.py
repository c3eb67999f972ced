"""The parity report: what every artifact of a bundle does on the test set, in tables and pictures.

Everything is measured here, through the runtime package, on the 10,000 test
images: accuracy, agreement with the float model, one-image latency. The
manifest's figures are only what the measurements are compared with.

Example images follow the original project's tables (predicted digit,
confidence, second best, actual digit), chosen by a fixed rule: the five
*least confident correct* and the five *most confident wrong* predictions of
the model's int8 TFLite artifact. Those show where the model is unsure and
where it is confidently mistaken, rather than a random sample.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mnist_edge_runtime.bundle import ORIGINAL_ACCURACY, parity_tolerance, parity_verdict, read_manifest
from mnist_edge_runtime.classifier import Classifier, format_confidence, predictions_from_scores

from mnist_edge.data import Split
from mnist_edge.errors import UserError
from mnist_edge.files import ensure_writable_dir, write_bytes_atomically, write_json_atomically

EXAMPLES = 5
LATENCY_RUNS = 300


@dataclass
class ArtifactResult:
    name: str
    entry: dict
    scores: np.ndarray
    accuracy: float
    latency_p50_ms: float
    backend: str | None = None

    @property
    def model(self) -> str:
        return self.entry["model"]

    @property
    def predicted(self) -> np.ndarray:
        return self.scores.argmax(axis=1)


def measure_artifact(path: Path, entry: dict, test: Split) -> ArtifactResult:
    classifier = Classifier.open(path, threads=1)
    scores = classifier.scores(test.images)
    single = test.images[:1]
    for _ in range(20):  # warm-up
        classifier.scores(single)
    times = []
    for i in range(LATENCY_RUNS):
        image = test.images[i : i + 1]
        start = time.perf_counter()
        classifier.scores(image)
        times.append(time.perf_counter() - start)
    accuracy = float(np.mean(scores.argmax(axis=1) == test.labels))
    return ArtifactResult(
        path.name, entry, scores, accuracy, float(np.median(times)) * 1000, classifier.backend
    )


def parity_rows(results: list[ArtifactResult]) -> list[dict]:
    floats = {
        r.model: r for r in results if r.entry["precision"] == "float32" and r.entry["format"] == "tflite"
    }
    rows = []
    for r in results:
        reference = floats.get(r.model)
        manifest_accuracy = r.entry.get("validation", {}).get("accuracy")
        tolerance = parity_tolerance(r.backend, r.entry["precision"])
        ok, problems = parity_verdict(r.model, r.accuracy, manifest_accuracy, tolerance)
        rows.append(
            {
                "artifact": r.name,
                "model": r.model,
                "format": r.entry["format"],
                "precision": r.entry["precision"],
                "bytes": r.entry["bytes"],
                "accuracy": round(r.accuracy, 6),
                "delta_to_original_pp": round((r.accuracy - ORIGINAL_ACCURACY[r.model]) * 100, 2),
                "delta_to_float_pp": round((r.accuracy - reference.accuracy) * 100, 2) if reference else None,
                "agreement_with_float": (
                    round(float(np.mean(r.predicted == reference.predicted)), 6) if reference else None
                ),
                "latency_p50_ms_1_thread": round(r.latency_p50_ms, 4),
                "backend": r.backend,
                "status": "pass" if ok else "FAIL",
                "problems": problems,
            }
        )
    return rows


def example_indices(result: ArtifactResult, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 5 least confident correct and the 5 most confident wrong predictions."""
    confidence = result.scores.max(axis=1)
    correct = np.flatnonzero(result.predicted == labels)
    wrong = np.flatnonzero(result.predicted != labels)
    least_sure_right = correct[np.argsort(confidence[correct], kind="stable")[:EXAMPLES]]
    most_sure_wrong = wrong[np.argsort(-confidence[wrong], kind="stable")[:EXAMPLES]]
    return least_sure_right, most_sure_wrong


# --- pictures ---------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    write_bytes_atomically(path, buffer.getvalue())


def plot_examples(result: ArtifactResult, test: Split, path: Path) -> dict:
    plt = _pyplot()
    right, wrong = example_indices(result, test.labels)
    fig, axes = plt.subplots(2, EXAMPLES, figsize=(2.1 * EXAMPLES, 5.2))
    chosen = {"least_confident_correct": right.tolist(), "most_confident_incorrect": wrong.tolist()}
    predictions = predictions_from_scores(result.scores)
    for row, (title, indices) in enumerate(
        [("correct, least confident", right), ("incorrect, most confident", wrong)]
    ):
        for col in range(EXAMPLES):
            ax = axes[row, col]
            ax.axis("off")
            if col >= len(indices):
                continue
            i = int(indices[col])
            p = predictions[i]
            ax.imshow(test.images[i], cmap="gray", vmin=0, vmax=255)
            ax.set_title(
                f"#{i}: predicted {p.digit} ({format_confidence(p.confidence, 2)})\n"
                f"2nd best {p.runner_up} ({format_confidence(p.runner_up_confidence, 2)})\nactual {test.labels[i]}",
                fontsize=8,
                color="black" if row == 0 else "firebrick",
            )
        axes[row, 0].text(
            -0.35, 0.5, title, transform=axes[row, 0].transAxes, rotation=90, va="center", fontsize=9
        )
    fig.suptitle(f"{result.name}: examples from the test set", fontsize=10)
    _save(fig, path)
    return chosen


def plot_confusion(result: ArtifactResult, labels: np.ndarray, path: Path) -> list[list[int]]:
    plt = _pyplot()
    matrix = np.zeros((10, 10), int)
    np.add.at(matrix, (labels, result.predicted), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    off_diagonal = matrix - np.diag(np.diag(matrix))
    ax.imshow(off_diagonal, cmap="Reds")
    for t in range(10):
        for p in range(10):
            if matrix[t, p]:
                ax.text(
                    p,
                    t,
                    str(matrix[t, p]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if t != p else "gray",
                )
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"{result.name}: confusion (colour = errors)", fontsize=10)
    _save(fig, path)
    return matrix.tolist()


def plot_size_vs_accuracy(results: list[ArtifactResult], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = {"tflite": "o", "onnx": "s"}
    colours = {"conv2d": "tab:blue", "flat": "tab:orange"}
    for r in results:
        ax.scatter(
            r.entry["bytes"] / 1024,
            r.accuracy * 100,
            marker=markers.get(r.entry["format"], "x"),
            color=colours.get(r.model, "gray"),
            s=50,
        )
        ax.annotate(
            f"{r.entry['precision']} {r.entry['format']}",
            (r.entry["bytes"] / 1024, r.accuracy * 100),
            fontsize=7,
            xytext=(4, 3 if r.entry["format"] == "tflite" else -10),
            textcoords="offset points",
        )
    for model, accuracy in ORIGINAL_ACCURACY.items():
        ax.axhline(accuracy * 100, color=colours[model], linestyle=":", linewidth=1)
        ax.text(ax.get_xlim()[1], accuracy * 100, f" original {model}", fontsize=7, va="center")
    ax.set_xscale("log")
    ax.set_xlabel("file size (KiB, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("size against accuracy (blue conv2d, orange flat; circle TFLite, square ONNX)", fontsize=9)
    _save(fig, path)


def quantization_changes(int8: ArtifactResult, reference: ArtifactResult, labels: np.ndarray) -> dict:
    int8_right, float_right = int8.predicted == labels, reference.predicted == labels
    return {
        "int8_wrong_float_right": np.flatnonzero(~int8_right & float_right).tolist(),
        "int8_right_float_wrong": np.flatnonzero(int8_right & ~float_right).tolist(),
    }


def plot_quantization_changes(
    changes: dict, int8: ArtifactResult, reference: ArtifactResult, test: Split, path: Path
) -> None:
    plt = _pyplot()
    groups = [
        ("int8 wrong, float right", changes["int8_wrong_float_right"][:8]),
        ("int8 right, float wrong", changes["int8_right_float_wrong"][:8]),
    ]
    columns = max(1, max(len(g) for _, g in groups))
    fig, axes = plt.subplots(2, columns, figsize=(1.9 * columns, 4.8), squeeze=False)
    for row, (title, indices) in enumerate(groups):
        for col in range(columns):
            ax = axes[row, col]
            ax.axis("off")
            if col < len(indices):
                i = indices[col]
                ax.imshow(test.images[i], cmap="gray", vmin=0, vmax=255)
                ax.set_title(
                    f"#{i} actual {test.labels[i]}\nint8 {int8.predicted[i]}, float {reference.predicted[i]}",
                    fontsize=7,
                )
        axes[row, 0].text(
            -0.3, 0.5, title, transform=axes[row, 0].transAxes, rotation=90, va="center", fontsize=8
        )
    fig.suptitle(f"{int8.name} against {reference.name}: the images quantization changed", fontsize=9)
    _save(fig, path)


# --- the report ---------------------------------------------------------------------------------------


def build_report(bundle: Path, out: Path, test: Split, on_step=lambda message: None) -> dict:
    manifest = read_manifest(bundle) if (bundle / "manifest.json").exists() else None
    if manifest is None:
        raise UserError(f"{bundle}: no manifest.json (run `mnist-edge export` first)")
    ensure_writable_dir(out)
    results = []
    for name, entry in manifest["artifacts"].items():
        if (
            entry.get("format") == "tflm"
        ):  # C source for microcontrollers: validated by export, in the manifest
            continue
        on_step(f"measuring {name}")
        results.append(measure_artifact(bundle / name, entry, test))
    rows = parity_rows(results)
    report = {"bundle": str(bundle), "test_images": len(test), "artifacts": rows, "models": {}}
    report["collected_samples"] = collected_sample_rows(manifest)
    figures = []
    for model in sorted({r.model for r in results}):
        by_kind = {(r.entry["format"], r.entry["precision"]): r for r in results if r.model == model}
        int8 = by_kind.get(("tflite", "int8"))
        reference = by_kind.get(("tflite", "float32"))
        if int8 is None:
            continue
        on_step(f"drawing {model}")
        details = {
            "examples": plot_examples(int8, test, out / f"examples_{model}.png"),
            "confusion_int8_tflite": plot_confusion(int8, test.labels, out / f"confusion_{model}.png"),
        }
        figures += [f"examples_{model}.png", f"confusion_{model}.png"]
        if reference is not None:
            details["quantization_changes"] = quantization_changes(int8, reference, test.labels)
            plot_quantization_changes(
                details["quantization_changes"], int8, reference, test, out / f"quantization_{model}.png"
            )
            figures.append(f"quantization_{model}.png")
        report["models"][model] = details
    plot_size_vs_accuracy(results, out / "size_vs_accuracy.png")
    figures.append("size_vs_accuracy.png")
    report["figures"] = figures
    write_json_atomically(out / "report.json", report)
    write_bytes_atomically(out / "REPORT.md", render_markdown(report).encode())
    return report


def collected_sample_rows(manifest: dict) -> list[dict]:
    """Per artifact fine-tuned on collected samples: their held-out share right, before and after."""
    rows = []
    for name, entry in manifest["artifacts"].items():
        learned = entry.get("collected_samples")
        if not learned:
            continue
        rows.append(
            {
                "file": name,
                "held_out": learned["held_out"],
                "before": learned.get("before"),
                "after": learned["after"],
                "mnist_accuracy": entry["validation"]["accuracy"],
                "sets": [s["sha256"] for s in learned["sets"]],
            }
        )
    return rows


def render_markdown(report: dict) -> str:
    lines = [
        "# mnist-edge parity report",
        "",
        f"Bundle `{report['bundle']}`, measured on all {report['test_images']:,} test images through "
        "mnist-edge-runtime. Latency: median of one-image calls on one thread.",
        "",
        "| model | format | precision | size | accuracy | vs original | vs float | agreement with float "
        "| latency p50 | status |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["artifacts"]:
        vs_float = "" if r["delta_to_float_pp"] is None else f"{r['delta_to_float_pp']:+.2f} pp"
        agreement = "" if r["agreement_with_float"] is None else f"{r['agreement_with_float']:.2%}"
        lines.append(
            f"| {r['model']} | {r['format']} | {r['precision']} | {r['bytes'] / 1024:,.0f} KiB | "
            f"{r['accuracy']:.2%} | {r['delta_to_original_pp']:+.2f} pp | {vs_float} | {agreement} | "
            f"{r['latency_p50_ms_1_thread']:.3f} ms | {r['status']} |"
        )
    lines += ["", "![size against accuracy](size_vs_accuracy.png)", ""]
    if report.get("collected_samples"):
        lines += [
            "## Learning from the device: held-out collected samples",
            "",
            "Models fine-tuned on samples collected on devices (mnist-edge train --extra-data). Right: "
            "the right digit, or a doubt for a picture marked 'not a digit', on the quarter of the "
            "samples no training step saw; before: the file this export replaced.",
            "",
            "| file | held-out samples | right before | right after | MNIST accuracy | sample sets (SHA-256) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for row in report["collected_samples"]:
            before = "" if row["before"] is None else f"{row['before']:.1%}"
            lines.append(
                f"| {row['file']} | {row['held_out']} | {before} | {row['after']:.1%} | "
                f"{row['mnist_accuracy']:.2%} | {', '.join(sha[:12] for sha in row['sets'])} |"
            )
        lines.append("")
    for model, details in report["models"].items():
        changes = details.get("quantization_changes", {})
        lines += [
            f"## {model}",
            "",
            "Examples (int8 TFLite): the five least confident correct predictions and the five most "
            "confident wrong ones.",
            "",
            f"![{model} examples](examples_{model}.png)",
            "",
            f"![{model} confusion matrix](confusion_{model}.png)",
            "",
        ]
        if changes:
            lines += [
                f"Quantization, image by image: int8 wrong where float is right on "
                f"{len(changes['int8_wrong_float_right'])} images {changes['int8_wrong_float_right'][:20]}; "
                f"int8 right where float is wrong on {len(changes['int8_right_float_wrong'])} images "
                f"{changes['int8_right_float_wrong'][:20]}.",
                "",
                f"![{model} quantization changes](quantization_{model}.png)",
                "",
            ]
    return "\n".join(lines)
