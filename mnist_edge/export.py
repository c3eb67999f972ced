"""The export run: trained models -> every requested format -> validated on all 10,000 test
images -> a new bundle, published only if every artifact passes its gates.

The formats and their converters are data (``converters.FORMATS``); each artifact is validated
(``validate.py``) before anything in the output folder changes, and the bundle is published by
``publish.py`` in one atomic step: if any gate fails, the previous bundle stays exactly as it was.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from mnist_edge_runtime.backends import apply_activation, open_model, predict_scores

from mnist_edge.converters import (
    FORMATS,
    ExportFormat,
    ExportJob,
    converter_chatter_silenced,
    select_formats,
    tflm_header_name,
    with_output_metadata,
)
from mnist_edge.data import Mnist
from mnist_edge.errors import GateFailedError, UserError
from mnist_edge.files import ensure_writable_dir, read_json
from mnist_edge.learn import check_unchanged, held_out_figures, load_collected
from mnist_edge.models import OUTPUT_ACTIVATION, load_model, model_input
from mnist_edge.publish import (
    ExportedArtifact,
    new_staging,
    publish,
    read_existing_manifest,
    recover_interrupted_swap,
    write_manifest,
)
from mnist_edge.tensorflow_quiet import keras
from mnist_edge.validate import Gates, Validation, judge_scores, validate_artifact

__all__ = ["ExportProgress", "export_models", "load_trained", "select_formats"]


class ExportProgress:
    """What the export reports; the CLI draws it."""

    def step(self, message: str) -> None: ...

    def note(self, message: str) -> None:
        """Something the user should read after the export, not only while it runs."""

    def artifact_done(self, artifact: ExportedArtifact) -> None: ...


def load_trained(model: str, runs: Path) -> tuple[keras.Model, dict]:
    path, record_path = runs / model / "model.keras", runs / model / "run.json"
    if not path.is_file():
        raise UserError(f"{path}: no trained model (run `mnist-edge train --model {model}` first)")
    try:
        float_model = load_model(str(path))
    except Exception as exc:  # a damaged zip, wrong config, foreign file: all mean "not our model"
        raise UserError(f"{path}: cannot load the model ({str(exc).splitlines()[0][:200]})") from None
    record = read_json(record_path) if record_path.is_file() else {}
    return float_model, record


def export_models(
    models: list[str],
    formats: list[ExportFormat],
    data: Mnist,
    runs: Path,
    bundle: Path,
    calibration_size: int,
    qat_provider: Callable[[str, keras.Model, dict], keras.Model],
    progress: ExportProgress | None = None,
    gates: Gates | None = None,
) -> list[ExportedArtifact]:
    """Export, validate, and (only if every gate passes) replace the bundle."""
    progress = progress or ExportProgress()
    gates = gates or Gates()
    if calibration_size < 1:
        raise UserError("--calibration-size must be at least 1")
    bundle = bundle.resolve()  # `--bundle .` has no name to put a staging folder beside
    recover_interrupted_swap(bundle)
    manifest = read_existing_manifest(bundle)
    ensure_writable_dir(bundle.parent)
    jobs = [_job(name, data, runs, calibration_size, qat_provider) for name in models]
    staging = new_staging(bundle)
    try:
        plans = {job.model_name: formats_in_step(formats, manifest, job.model_name) for job in jobs}
        exported = list(_export_all(jobs, plans, staging, progress, gates))
        for job in jobs:
            if job.run_record.get("collected"):
                _judge_learning(
                    job,
                    [a for a in exported if a.validation.model == job.model_name],
                    manifest,
                    bundle,
                    staging,
                    gates,
                    progress,
                )
        failed = [a for a in exported if not a.validation.passed]
        if failed:
            raise GateFailedError(
                "validation failed, bundle left unchanged: "
                + "; ".join(f"{a.filename}: {', '.join(a.validation.failures())}" for a in failed)
                + publishable_alone_hint(exported)
            )
        write_manifest(manifest, jobs, exported, staging, gates)
        publish(staging, bundle)
        _warn_without_flash_figures(exported, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return exported


def _warn_without_flash_figures(exported: list[ExportedArtifact], progress: ExportProgress) -> None:
    """A TFLM source's Cortex-M0+ flash size needs the Arm compiler; without it the manifest
    records none, and a bundle committed so no longer matches one exported where it is installed."""
    from mnist_edge import tflm

    micro = [a.filename for a in exported if a.fmt.format == "tflm"]
    missing = tflm.missing_arm_tools()
    if micro and missing:
        progress.note(
            f"warning: {', '.join(missing)} not found: no Cortex-M0+ flash (.rodata) size recorded for "
            f"{', '.join(micro)} (Debian: apt install gcc-arm-none-eabi)"
        )


def publishable_alone_hint(exported: list[ExportedArtifact]) -> str:
    """When every file of one model passed and the other model failed: how to publish the one
    alone (the bundle keeps the other model's files as they are), so that one model's miss need
    not hold back the other's update."""
    failing = {a.validation.model for a in exported if not a.validation.passed}
    passing = [m for m in dict.fromkeys(a.validation.model for a in exported) if m not in failing]
    if not passing or not failing:
        return ""
    return ". " + "; ".join(
        f"Every {m} file passed: `export --model {m}` with the same options publishes it alone"
        for m in passing
    )


def _judge_learning(
    job: ExportJob,
    exported: list[ExportedArtifact],
    manifest: dict,
    bundle: Path,
    staging: Path,
    gates: Gates,
    progress: ExportProgress,
) -> None:
    """A model fine-tuned on collected samples: each artifact's MNIST accuracy may not fall more
    than ``gates.max_learning_loss`` below the bundle file it replaces, and the held-out samples
    are answered by both files (the manifest records before and after)."""
    record = job.run_record
    collected = load_collected(record["config"]["extra_data"])
    check_unchanged(collected, record["collected"]["sets"], f"runs/{job.model_name}")
    for artifact in exported:
        previous = manifest["artifacts"].get(artifact.filename)
        if previous is not None:
            floor = previous["validation"]["accuracy"] - gates.max_learning_loss
            name = f"MNIST accuracy >= previous bundle's - {gates.max_learning_loss:.1%}"
            artifact.validation.gates.append((name, artifact.validation.accuracy >= floor))
        if artifact.fmt.format == "tflm":
            continue  # the same bytes as the int8 .tflite
        progress.step(f"{artifact.filename}: the held-out collected samples, before and after")
        before = bundle / artifact.filename if previous is not None else None
        artifact.collected = held_out_figures(staging / artifact.filename, before, collected.held_out)


def _job(name: str, data: Mnist, runs: Path, calibration_size: int, qat_provider: Callable) -> ExportJob:
    float_model, record = load_trained(name, runs)
    return ExportJob(
        model_name=name,
        float_model=float_model,
        run_record=record,
        data=data,
        calibration_size=calibration_size,
        qat_provider=lambda: qat_provider(name, float_model, record),
    )


def formats_in_step(formats: list[ExportFormat], manifest: dict, model: str) -> list[ExportFormat]:
    """``formats``, plus the TFLM source where the bundle has one and the int8 .tflite is remade.

    The C array is byte for byte the int8 model; remaking one without the other would leave two
    different int8 models in one bundle.
    """
    kinds = {(f.format, f.precision) for f in formats}
    tflm = next(f for f in FORMATS if f.format == "tflm")
    if (
        ("tflite", "int8") in kinds
        and ("tflm", "int8") not in kinds
        and tflm.filename(model) in manifest["artifacts"]
    ):
        return [*formats, tflm]
    return formats


def _export_all(
    jobs: list[ExportJob],
    plans: dict[str, list[ExportFormat]],
    staging: Path,
    progress: ExportProgress,
    gates: Gates,
) -> Iterator[ExportedArtifact]:
    for job in jobs:
        formats = plans[job.model_name]
        test = job.data.test
        float_scores = job.float_model.predict(
            model_input(job.model_name, test.images), batch_size=1000, verbose=0
        )
        float_accuracy = float(np.mean(float_scores.argmax(axis=1) == test.labels))
        job.float_accuracy = float_accuracy
        for fmt in formats:
            filename = fmt.filename(job.model_name)
            progress.step(f"{filename}: converting")
            path = staging / filename
            with converter_chatter_silenced():
                content = fmt.build(job)
                if fmt.format != "tflm":  # C source says it in its header instead
                    content = with_output_metadata(fmt.format, content, job.model_name, fmt.outputs_logits)
            path.write_bytes(content)
            source_scores, source = float_scores, "float"
            activation = OUTPUT_ACTIVATION[job.model_name] if fmt.outputs_logits else None
            if fmt.format == "tflite" and fmt.precision == "int8":
                logits = job.qat_model.predict(
                    model_input(job.model_name, test.images), batch_size=1000, verbose=0
                )
                source_scores, source = apply_activation(logits, activation), "QAT"
            progress.step(f"{filename}: validating on {len(test)} test images")
            if fmt.format == "tflm":
                (staging / tflm_header_name(job.model_name)).write_bytes(job.micro["header"])
                validation = validate_micro(job, path, float_accuracy, gates, activation)
                artifact = ExportedArtifact(filename, fmt, validation, path.stat().st_size)
                progress.artifact_done(artifact)
                yield artifact
                continue
            validation, _ = validate_artifact(
                str(path),
                job.model_name,
                fmt.format,
                fmt.precision,
                test.images,
                test.labels,
                source_scores,
                source,
                float_accuracy,
                gates,
                activation,
            )
            artifact = ExportedArtifact(filename, fmt, validation, path.stat().st_size)
            progress.artifact_done(artifact)
            yield artifact


def validate_micro(
    job: ExportJob, path: Path, float_accuracy: float, gates: Gates, activation: str
) -> Validation:
    """Run the model *in the C source* through tflite-micro on every test image; compare with LiteRT."""
    from mnist_edge import tflm

    test, micro = job.data.test, job.micro["description"]
    model = tflm.bytes_of_c_source(path.read_text())
    scores = tflm.micro_scores(model, test.images, micro.arena, activation)
    with tempfile.TemporaryDirectory() as tmp:
        same_model = Path(tmp) / "model.tflite"
        same_model.write_bytes(model)
        litert = predict_scores(open_model(same_model, activation=activation), test.images)
    return judge_scores(
        str(path),
        job.model_name,
        "tflm",
        "int8",
        scores,
        test.labels,
        litert,
        "LiteRT",
        float_accuracy,
        gates,
    )
