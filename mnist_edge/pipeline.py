"""The whole job in one call: train both models, QAT, export every format, validate, report.

Each stage picks up what an earlier, interrupted run left: training resumes
from its last epoch checkpoint (a finished model is only re-evaluated), QAT
weights newer than their float model are reused, and export and report are
quick enough to redo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mnist_edge.data import Mnist
from mnist_edge.models import MODEL_NAMES


@dataclass(frozen=True)
class PipelinePaths:
    runs: Path = Path("runs")
    bundle: Path = Path("export")
    reports: Path = Path("reports")


def run_pipeline(
    data: Mnist,
    paths: PipelinePaths,
    stage_started: Callable[[int, int, str], None],
    train_progress: Callable[[str], object],
    export_progress: object,
    qat_epoch: Callable[[str], Callable[[dict], None]],
    calibration_size: int = 1000,
) -> dict:
    from mnist_edge.export import export_models, select_formats
    from mnist_edge.quantize import load_or_train_qat
    from mnist_edge.report import build_report
    from mnist_edge.train import default_config, train

    stages = [f"train {name}" for name in MODEL_NAMES] + ["QAT + export + validate", "report"]
    step = iter(range(1, len(stages) + 1))
    for name in MODEL_NAMES:
        stage_started(next(step), len(stages), f"train {name}")
        train(default_config(name), data, paths.runs, resume=True, progress=train_progress(name))

    stage_started(next(step), len(stages), stages[-2])

    def qat_provider(name, float_model, record):
        return load_or_train_qat(name, float_model, record, data, paths.runs, on_epoch=qat_epoch(name))

    export_models(
        list(MODEL_NAMES), select_formats("all", int8=True), data, paths.runs, paths.bundle,
        calibration_size, qat_provider, export_progress,
    )  # fmt: skip
    stage_started(next(step), len(stages), "report")
    return build_report(paths.bundle, paths.reports, data.test)
