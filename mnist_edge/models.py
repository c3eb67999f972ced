"""The two classifiers of the original project, layer for layer.

Both take float pixels in [0, 1] (the raw uint8 image divided by 255).

* ``conv2d``: pad to 32x32, four 4x4 convolutions with max-pooling, two dense
  layers of 512, a per-sample max-abs normalization, and 10 sigmoid outputs.
* ``flat``: a 784-512-256-128-64-32-16-10 perceptron with a softmax output.

Dropout layers are training-only additions: they are the identity at
inference and disappear in every exported model.
"""

from __future__ import annotations

from mnist_edge.data import IMAGE_SIDE, NUM_CLASSES
from mnist_edge.tensorflow_quiet import keras, tf

MODEL_NAMES = ("conv2d", "flat")


@keras.saving.register_keras_serializable(package="mnist_edge")
class MaxAbsNormalization(keras.layers.Layer):
    """Divide each sample's features by their largest absolute value, so all lie in [-1, 1].

    The original computed that maximum over the whole batch, so one image's
    prediction depended on the images beside it. On a device images come one at
    a time, so here the maximum is taken per sample (over the feature axis):
    a deliberate deviation from the original, documented in docs/training.md.
    """

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        peak = tf.reduce_max(tf.abs(inputs), axis=-1, keepdims=True)
        # An all-zero feature vector stays zero instead of becoming NaN.
        return inputs / tf.maximum(peak, 1e-12)


def build_conv2d(dropout: float = 0.0) -> keras.Model:
    image = keras.Input((IMAGE_SIDE, IMAGE_SIDE, 1), name="image")
    x = keras.layers.ZeroPadding2D(2, name="pad")(image)  # 28 -> 32, background is 0
    x = keras.layers.Conv2D(32, 4, padding="valid", activation="relu", name="conv1")(x)  # 29
    x = keras.layers.MaxPooling2D(2, 2, padding="valid", name="pool1")(x)  # 14
    for i in (2, 3, 4):  # 14 -> 7 -> 4 -> 2
        x = keras.layers.Conv2D(32, 4, padding="same", activation="relu", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, 2, padding="same", name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)  # 2 x 2 x 32 = 128
    x = keras.layers.Dense(512, activation="relu", name="dense1")(x)
    x = keras.layers.Dropout(dropout, name="dropout1")(x)
    x = keras.layers.Dense(512, activation="relu", name="dense2")(x)
    x = keras.layers.Dropout(dropout, name="dropout2")(x)
    x = MaxAbsNormalization(name="normalize")(x)
    scores = keras.layers.Dense(NUM_CLASSES, activation="sigmoid", name="scores")(x)
    return keras.Model(image, scores, name="conv2d")


def build_flat(dropout: float = 0.0) -> keras.Model:
    pixels = keras.Input((IMAGE_SIDE * IMAGE_SIDE,), name="pixels")
    x = pixels
    for units in (512, 256, 128, 64, 32, 16):
        x = keras.layers.Dense(units, activation="relu", name=f"dense{units}")(x)
        if units >= 128:  # the narrow layers are bottlenecks already
            x = keras.layers.Dropout(dropout, name=f"dropout{units}")(x)
    scores = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="scores")(x)
    return keras.Model(pixels, scores, name="flat")


BUILDERS = {"conv2d": build_conv2d, "flat": build_flat}
# The activation of each model's "scores" layer. The int8 models leave it out and output the
# logits (int8 resolution is too coarse for small probabilities: a runner-up's sigmoid score
# would round to 0); the runtime applies it, as their manifest entries say.
OUTPUT_ACTIVATION = {"conv2d": "sigmoid", "flat": "softmax"}


def build_model(name: str, dropout: float = 0.0) -> keras.Model:
    # Dropout then draws its masks from a tf.random.Generator whose state is a
    # variable, saved in every checkpoint: a resumed run draws the same masks
    # as an uninterrupted one.
    keras.backend.experimental.enable_tf_random_generator()
    return BUILDERS[name](dropout)


def model_input(name: str, images_uint8: tf.Tensor | object) -> tf.Tensor:
    """Turn (N, 28, 28) uint8 images into the model's float input."""
    x = tf.cast(images_uint8, tf.float32) / 255.0
    if name == "flat":
        return tf.reshape(x, (-1, IMAGE_SIDE * IMAGE_SIDE))
    return tf.reshape(x, (-1, IMAGE_SIDE, IMAGE_SIDE, 1))


def load_model(path: str) -> keras.Model:
    """Load a trained ``.keras`` model (safe mode: no Python code is deserialized)."""
    return keras.models.load_model(path, safe_mode=True, compile=False)
