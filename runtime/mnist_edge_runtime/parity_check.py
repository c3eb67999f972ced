"""The parity check (``mnist-edge-runtime eval``): each model on the test images, against the
accuracy its manifest recorded (less its interpreter's tolerance) and the original project's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_edge_runtime.bundle import ORIGINAL_ACCURACY, parity_tolerance, parity_verdict
from mnist_edge_runtime.classifier import Classifier
from mnist_edge_runtime.idx import content_sha256
from mnist_edge_runtime.machine import one_line

NOT_COMPARABLE = "n/a (not the manifest's test set)"


def measure(
    paths: list[Path],
    images: np.ndarray,
    labels: np.ndarray,
    backend: str | None,
    threads: int | None,
    full: bool,
) -> tuple[list[dict], dict[str, list[int]]]:
    """One row per model file (accuracy, the manifest's, parity "pass", "FAIL" or not comparable,
    and why), and each file's predictions. ``full``: these are all of the images given, so the
    manifest's figure applies if they are its test set."""
    rows, predictions = [], {}
    checksum = content_sha256(images, labels)
    for path in paths:
        classifier = Classifier.open(path, backend if path.suffix == ".tflite" else None, threads)
        predicted = classifier.scores(images).argmax(axis=1)
        accuracy = float(np.mean(predicted == labels))
        entry = classifier.manifest_entry or {}
        model = entry.get("model") or path.name.split(".")[0]
        manifest_accuracy = (entry.get("validation") or {}).get("accuracy")
        same_images = full and _same_test_set(entry.get("validation") or {}, checksum, len(labels))
        tolerance = parity_tolerance(classifier.backend, entry.get("precision"))
        ok, problems = (
            parity_verdict(model, accuracy, manifest_accuracy, tolerance) if same_images else (True, [])
        )
        predictions[path.name] = predicted.tolist()
        rows.append(
            {
                "artifact": path.name,
                "manifest_measured_on": (entry.get("validation") or {}).get("measured_on"),
                "backend": classifier.backend,
                "images": len(labels),
                "accuracy": accuracy,
                "manifest_accuracy": manifest_accuracy,
                "original_accuracy": ORIGINAL_ACCURACY.get(model),
                "parity": ("pass" if ok else "FAIL") if same_images else NOT_COMPARABLE,
                "problems": problems,
            }
        )
    return rows, predictions


def _same_test_set(validation: dict, checksum: str, count: int) -> bool:
    """Are these the images the manifest's figure was measured on? By checksum; by count for old bundles."""
    if "test_data_sha256" in validation:
        return validation["test_data_sha256"] == checksum
    return validation.get("test_images") == count


def print_machines(here: dict, rows: list[dict]) -> None:
    """This machine beside the one(s) the manifest's figures were measured on."""
    print(f"this machine:         {one_line(here)}")
    recorded = []
    for row in rows:
        if row["manifest_measured_on"] not in recorded:
            recorded.append(row["manifest_measured_on"])
    for machine in recorded:
        print(f"manifest measured on: {one_line(machine)}")


def _pp(value: float | None) -> str:
    return "" if value is None else f"{value * 100:+.2f} pp"


def print_table(rows: list[dict]) -> None:
    print(
        f"{'artifact':<24} {'backend':<14} {'images':>6} {'accuracy':>9} {'manifest':>9} {'vs manifest':>12} "
        f"{'vs original':>12}  parity"
    )
    for r in rows:
        comparable = r["parity"] != NOT_COMPARABLE
        manifest = r["manifest_accuracy"] if comparable else None
        original = r["original_accuracy"] if comparable else None
        print(
            f"{r['artifact']:<24} {r['backend']:<14} {r['images']:>6} {r['accuracy']:>9.2%} "
            f"{(f'{manifest:.2%}' if manifest is not None else '-'):>9} "
            f"{_pp(r['accuracy'] - manifest if manifest is not None else None):>12} "
            f"{_pp(r['accuracy'] - original if original else None):>12}  "
            f"{r['parity']}{': ' + '; '.join(r['problems']) if r['problems'] else ''}"
        )
