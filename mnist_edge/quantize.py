"""Quantization-aware training (QAT) with tensorflow-model-optimization.

A trained float model is turned into a QAT model (fake-quantization of every
weight and activation to int8), its activation ranges are calibrated on
training images, and it is fine-tuned for a short while with a low learning
rate so the weights adapt to the rounding. The TFLite converter then turns the
fake-quantization into a real full-integer model (see ``export.py``).

Two details matter on this stack:

* tfmot starts each activation range at [-6, 6] and moves it by an
  exponential moving average (decay 0.999), so a short fine-tune would end with
  poor ranges. ``calibrate_activation_ranges`` sets them from real data first.
* The conv2d model's per-sample normalization ``x / max(x)`` has no int8
  division kernel in tflite-runtime 2.14. Its QAT form computes
  ``(x * r) * r`` with ``r = rsqrt(max(x))``: REDUCE_MAX, MAXIMUM, RSQRT and
  MUL all have int8 kernels there, and each intermediate tensor gets its own
  fake-quantization so the converter knows its int8 range.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tensorflow_model_optimization as tfmot
from mnist_edge_runtime.bundle import sha256_file

from mnist_edge.data import Mnist, Split
from mnist_edge.errors import UserError
from mnist_edge.files import read_json, write_json_atomically
from mnist_edge.learn import check_unchanged, load_collected
from mnist_edge.models import MaxAbsNormalization, model_input
from mnist_edge.tensorflow_quiet import keras, tf
from mnist_edge.train import TrainConfig, accuracy, default_config, epoch_dataset, loss_for, training_split

quantizers = tfmot.quantization.keras.quantizers

# Below this maximum the features are all but zero; rsqrt must stay finite.
_SMALLEST_PEAK = 1e-3


@keras.saving.register_keras_serializable(package="mnist_edge")
class QuantizedMaxAbsNormalization(keras.layers.Layer):
    """``MaxAbsNormalization`` for non-negative (ReLU) inputs, in an int8-friendly form.

    Each intermediate tensor passes through its own moving-average
    fake-quantizer, the same kind tfmot puts after every other layer.
    """

    STAGES = ("rsqrt", "scaled", "output")

    def build(self, input_shape: tf.TensorShape) -> None:
        self._quantizer = quantizers.MovingAverageQuantizer(
            num_bits=8, per_axis=False, symmetric=False, narrow_range=False
        )
        self._ranges = {stage: self._quantizer.build(None, stage, self) for stage in self.STAGES}
        super().build(input_shape)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        training = bool(training) if training is not None else False
        peak = tf.maximum(tf.reduce_max(inputs, axis=-1, keepdims=True), _SMALLEST_PEAK)
        r = self._quantize(tf.math.rsqrt(peak), "rsqrt", training)
        scaled = self._quantize(inputs * r, "scaled", training)
        return self._quantize(scaled * r, "output", training)

    def _quantize(self, x: tf.Tensor, stage: str, training: bool) -> tf.Tensor:
        return self._quantizer(x, training, self._ranges[stage])


@keras.saving.register_keras_serializable(package="mnist_edge")
class LayerQuantizesItselfConfig(tfmot.quantization.keras.QuantizeConfig):
    """Tells tfmot to leave a layer alone: the layer fake-quantizes its own tensors.

    The class name is unique on purpose: tfmot's registry silently replaces a
    config with the same name.
    """

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


def quantize_scope():
    """The custom objects a saved QAT model needs to load."""
    return tfmot.quantization.keras.quantize_scope(
        {
            "QuantizedMaxAbsNormalization": QuantizedMaxAbsNormalization,
            "LayerQuantizesItselfConfig": LayerQuantizesItselfConfig,
        }
    )


QUANTIZE_LAYER_NAME = {"conv2d": "quantize_layer", "flat": "quantize_layer_1"}


def build_qat_model(float_model: keras.Model) -> keras.Model:
    """Copy ``float_model`` with fake-quantization everywhere; the weights are copied too.

    The copy outputs logits: its last layer has no activation (see ``OUTPUT_ACTIVATION``).
    """
    last = float_model.layers[-1].name

    def annotate(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, MaxAbsNormalization):
            replacement = QuantizedMaxAbsNormalization(name=layer.name)
            return tfmot.quantization.keras.quantize_annotate_layer(
                replacement, quantize_config=LayerQuantizesItselfConfig()
            )
        config = layer.get_config()
        if layer.name == last:
            config["activation"] = "linear"
        return tfmot.quantization.keras.quantize_annotate_layer(layer.__class__.from_config(config))

    annotated = keras.models.clone_model(float_model, clone_function=annotate)
    # Layer by layer: the QAT normalization has range variables the float one lacks.
    for source, copy in zip(float_model.layers, annotated.layers, strict=True):
        if source.weights:
            copy.set_weights(source.get_weights())
    with quantize_scope():
        qat = tfmot.quantization.keras.quantize_apply(annotated)
    # tfmot names its input quantizer "quantize_layer", numbered ("quantize_layer_2") when the
    # process built one before. The name reaches the .tflite's tensor names, so the int8 file would
    # depend on what the process exported first. Each model gets one name whatever came before:
    # the one its published file carries (the pipeline exports conv2d, then flat).
    for layer in qat.layers:
        if re.fullmatch(r"quantize_layer(_\d+)?", layer.name):
            layer._name = QUANTIZE_LAYER_NAME.get(float_model.name, "quantize_layer")
    _fix_input_range(qat)
    return qat


def _fix_input_range(qat: keras.Model) -> None:
    """Pin the input quantizer to exactly [0, 1], so int8 input is raw pixel / 255.

    A device then feeds its 0..255 pixels unchanged (scale 1/255, zero point 0).
    """
    quantize_layer = qat.layers[1]
    for var in quantize_layer.weights:
        if var.name.endswith("_min:0"):
            var.assign(tf.zeros_like(var))
        elif var.name.endswith("_max:0"):
            var.assign(tf.ones_like(var))


def _activation_range_vars(qat: keras.Model) -> list[tf.Variable]:
    """The moving-average range variables (not the weight ranges, not the pinned input)."""
    found = []
    for layer in qat.layers[2:]:
        for var in layer.non_trainable_weights:
            name = var.name.split("/")[-1]
            if name.endswith(("_min:0", "_max:0")) and not name.startswith(("kernel", "depthwise")):
                found.append(var)
    return found


def calibrate_activation_ranges(
    qat: keras.Model, images: tf.Tensor, rounds: int = 3, batch: int = 256
) -> None:
    """Set every activation range from real data instead of tfmot's initial [-6, 6].

    One training-mode forward pass moves each range variable a step of 0.001
    towards the batch's own range (``new = 0.999 old + 0.001 batch``), so the
    batch's range can be read back exactly and assigned. A few rounds let the
    later layers see the earlier layers' settled ranges.
    """
    variables = _activation_range_vars(qat)
    decay = 0.999
    for _ in range(rounds):
        observed = []
        for start in range(0, len(images), batch):
            before = [v.numpy() for v in variables]
            qat(images[start : start + batch], training=True)
            observed.append(
                [(v.numpy() - decay * b) / (1 - decay) for v, b in zip(variables, before, strict=True)]
            )
            for v, b in zip(variables, before, strict=True):
                v.assign(b)
        for i, var in enumerate(variables):
            values = np.stack([batch_values[i] for batch_values in observed])
            # The average batch minimum / maximum: an outlier pixel in one batch
            # should not stretch the range (and coarsen the step) for all.
            var.assign(values.mean(axis=0))


@dataclass(frozen=True)
class QatConfig:
    epochs: int = 2
    learning_rate: float = 5e-5
    batch_size: int = 128
    calibration_size: int = 2048
    seed: int = 0


def quantization_aware_training(
    float_model: keras.Model,
    model_name: str,
    train_config: TrainConfig,
    data: Mnist,
    config: QatConfig = QatConfig(),
    on_epoch: Callable[[dict], None] | None = None,
    collected: Split | None = None,
) -> tuple[keras.Model, dict]:
    """Fine-tune a QAT copy of ``float_model``; returns it with its record.

    A function of its inputs alone, as training is: seeded, and with TensorFlow's op determinism
    switched on (for the rest of the process, as training leaves it), whatever the process ran
    before: an export alone and the pipeline's export give the same bytes.
    """
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    qat = build_qat_model(float_model)
    calibration = model_input(model_name, data.train.images[: config.calibration_size])
    calibrate_activation_ranges(qat, calibration)
    calibrated_val = accuracy(qat, data.validation, model_name)

    train_split = training_split(data.train, train_config, collected)  # what the float model trained on
    steps = math.ceil(len(train_split) / config.batch_size) * config.epochs
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, max(steps, 1))
    qat.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss_for(model_name, from_logits=True))
    # The QAT model trains with the float model's augmentation, at a lower rate.
    augment = TrainConfig(
        **{**asdict(train_config), "batch_size": config.batch_size, "seed": config.seed + 1}
    )
    history = []
    for epoch in range(config.epochs):
        fit = qat.fit(epoch_dataset(train_split, augment, epoch), epochs=1, verbose=0).history
        val = accuracy(qat, data.validation, model_name)
        history.append({"epoch": epoch + 1, "loss": round(fit["loss"][0], 6), "val_accuracy": round(val, 6)})
        if on_epoch:
            on_epoch(history[-1])
    record = {
        "config": asdict(config),
        "calibrated_val_accuracy": round(calibrated_val, 6),
        "history": history,
        "validation_accuracy": history[-1]["val_accuracy"] if history else calibrated_val,
    }
    return qat, record


def qat_paths(runs: Path, model_name: str) -> tuple[Path, Path]:
    return runs / model_name / "qat-logits.weights.h5", runs / model_name / "qat.json"


def load_qat_model(float_model: keras.Model, weights: Path) -> keras.Model:
    """Rebuild the QAT model from its float model and load the fine-tuned weights.

    Only weights are stored: a whole tfmot model does not load back from the
    ``.keras`` format (its QuantizeLayer variables are named differently on load).
    """
    qat = build_qat_model(float_model)
    qat.load_weights(weights)
    return qat


def load_or_train_qat(
    model_name: str,
    float_model: keras.Model,
    run_record: dict,
    data: Mnist,
    runs: Path,
    config: QatConfig = QatConfig(),
    on_epoch: Callable[[dict], None] | None = None,
    retrain: bool = False,
) -> keras.Model:
    """The QAT model of ``runs/<model>``: reused when made from this very float model, data and settings.

    The cache is keyed on the float model file's SHA-256, the data checksums and ``config``
    (not on modification times, which a copy or a checkout changes), and trained again otherwise.
    """
    model_path, record_path = qat_paths(runs, model_name)
    key = {
        "float_model_sha256": sha256_file(runs / model_name / "model.keras"),
        "data": data.checksums,
        "qat_config": asdict(config),
    }
    if not retrain and model_path.is_file() and record_path.is_file():
        try:
            cached = read_json(record_path)
            if cached.get("cache_key") == key:
                qat = load_qat_model(float_model, model_path)
                run_record["qat"] = cached
                return qat
        except (OSError, ValueError, UserError):
            pass  # a damaged cache is not an error: train it again below
    try:
        train_config = (
            TrainConfig(**run_record["config"]) if "config" in run_record else default_config(model_name)
        )
    except TypeError:
        raise UserError(
            f"{runs / model_name / 'run.json'}: its config does not match this version's settings; "
            "train the model again"
        ) from None
    collected = None
    if train_config.extra_data:  # fine-tuned on collected samples: QAT sees them too
        found = load_collected(train_config.extra_data)
        check_unchanged(found, run_record.get("collected", {}).get("sets", []), str(runs / model_name))
        collected = found.train
    qat, record = quantization_aware_training(
        float_model, model_name, train_config, data, config, on_epoch, collected
    )
    record["cache_key"] = key
    save_qat(qat, record, model_path, record_path)
    run_record["qat"] = record
    return qat


def save_qat(qat: keras.Model, record: dict, model_path: Path, record_path: Path) -> None:
    tmp = model_path.with_name(f".partial.{model_path.name}")
    qat.save_weights(tmp)
    os.replace(tmp, model_path)
    write_json_atomically(record_path, record)
