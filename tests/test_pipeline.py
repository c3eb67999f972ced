"""``mnist-edge pipeline`` picks up where an interrupted run stopped: finished training is not
redone, an interrupted one resumes from its last epoch checkpoint, and the later stages run.

Training is real but tiny (2 epochs on 1,024 images); QAT, export and report are stand-ins that
record their calls (their own resumption is tested in test_export.py and test_train.py)."""

from __future__ import annotations

import hashlib

import pytest

import mnist_edge.export
import mnist_edge.report
import mnist_edge.train
from mnist_edge.data import Mnist
from mnist_edge.files import read_json
from mnist_edge.pipeline import PipelinePaths, run_pipeline


class Recorder:
    """What a pipeline run did: stages begun, epochs begun per model, notes, export and report calls."""

    def __init__(self, interrupt_at: tuple[str, int, int] | None = None, interrupt_export: bool = False):
        self.interrupt_at, self.interrupt_export = interrupt_at, interrupt_export
        self.stages: list[str] = []
        self.epochs: list[tuple[str, int]] = []
        self.notes: list[str] = []
        self.exports: list[list[str]] = []
        self.reports = 0

    def stage(self, number: int, total: int, title: str) -> None:
        self.stages.append(f"{number}/{total} {title}")

    def training(self, name: str) -> object:
        recorder = self

        class Hooks(mnist_edge.train.ProgressHooks):
            def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
                recorder.epochs.append((name, epoch))

            def batch_finished(self, step: int, loss: float) -> None:
                if recorder.interrupt_at == (name, recorder.epochs[-1][1], step):
                    raise KeyboardInterrupt  # Ctrl-C in the middle of this epoch

            def note(self, message: str) -> None:
                recorder.notes.append(message)

        return Hooks()

    def export(self, models: list[str], *args: object) -> list:
        if self.interrupt_export:
            raise KeyboardInterrupt
        self.exports.append(list(models))
        return []

    def report(self, *args: object) -> dict:
        self.reports += 1
        return {"artifacts": []}

    def run(self, data: Mnist, paths: PipelinePaths, monkeypatch: pytest.MonkeyPatch) -> dict:
        monkeypatch.setattr(mnist_edge.export, "export_models", self.export)
        monkeypatch.setattr(mnist_edge.report, "build_report", self.report)
        return run_pipeline(data, paths, self.stage, self.training, object(), lambda name: lambda m: None)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_interrupted_pipeline_resumes_where_it_stopped(tmp_path, mnist, monkeypatch):
    small = Mnist(mnist.train.take(1024), mnist.validation.take(128), mnist.test.take(128), "subset")
    default_config = mnist_edge.train.default_config
    monkeypatch.setattr(
        mnist_edge.train, "default_config", lambda name: default_config(name, epochs=2, batch_size=64)
    )
    paths = PipelinePaths(tmp_path / "runs", tmp_path / "export", tmp_path / "reports")
    stages = ["1/4 train conv2d", "2/4 train flat", "3/4 QAT + export + validate", "4/4 report"]

    # Ctrl-C in the second epoch of the second model.
    first = Recorder(interrupt_at=("flat", 1, 3))
    with pytest.raises(KeyboardInterrupt):
        first.run(small, paths, monkeypatch)
    assert first.epochs == [("conv2d", 0), ("conv2d", 1), ("flat", 0), ("flat", 1)]
    assert first.stages == stages[:2] and not first.exports and not first.reports
    conv2d = digest(paths.runs / "conv2d" / "model.keras")
    assert not (paths.runs / "flat" / "run.json").exists()

    # Rerun, interrupted while exporting: conv2d is not retrained, flat trains its second epoch only.
    second = Recorder(interrupt_export=True)
    with pytest.raises(KeyboardInterrupt):
        second.run(small, paths, monkeypatch)
    assert second.epochs == [("flat", 1)]
    assert any(note.startswith("conv2d: already trained") for note in second.notes), second.notes
    assert second.stages == stages[:3]
    assert digest(paths.runs / "conv2d" / "model.keras") == conv2d
    record = read_json(paths.runs / "flat" / "run.json")
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    flat = digest(paths.runs / "flat" / "model.keras")

    # Rerun: no training at all, export and report run.
    third = Recorder()
    assert third.run(small, paths, monkeypatch) == {"artifacts": []}
    assert third.epochs == [] and third.stages == stages
    assert third.exports == [["conv2d", "flat"]] and third.reports == 1
    assert digest(paths.runs / "conv2d" / "model.keras") == conv2d
    assert digest(paths.runs / "flat" / "model.keras") == flat
