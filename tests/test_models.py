"""The two architectures, layer for layer, and the per-sample normalization."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_edge.models import MaxAbsNormalization, build_model, load_model, model_input


def layer_summary(model):
    return [(layer.__class__.__name__, tuple(layer.output.shape[1:])) for layer in model.layers]


def test_conv2d_structure():
    model = build_model("conv2d")
    assert layer_summary(model) == [
        ("InputLayer", (28, 28, 1)),
        ("ZeroPadding2D", (32, 32, 1)),
        ("Conv2D", (29, 29, 32)),
        ("MaxPooling2D", (14, 14, 32)),
        ("Conv2D", (14, 14, 32)),
        ("MaxPooling2D", (7, 7, 32)),
        ("Conv2D", (7, 7, 32)),
        ("MaxPooling2D", (4, 4, 32)),
        ("Conv2D", (4, 4, 32)),
        ("MaxPooling2D", (2, 2, 32)),
        ("Flatten", (128,)),
        ("Dense", (512,)),
        ("Dropout", (512,)),
        ("Dense", (512,)),
        ("Dropout", (512,)),
        ("MaxAbsNormalization", (512,)),
        ("Dense", (10,)),
    ]
    assert model.get_layer("scores").activation.__name__ == "sigmoid"
    # 544 + 3 * 16,416 (convolutions) + 66,048 + 262,656 + 5,130 (dense)
    assert model.count_params() == 383_626


def test_flat_structure():
    model = build_model("flat")
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    assert [layer.units for layer in dense] == [512, 256, 128, 64, 32, 16, 10]
    assert all(layer.activation.__name__ == "relu" for layer in dense[:-1])
    assert model.input_shape == (None, 784)
    assert model.count_params() == 577_178


def test_normalization_is_per_sample():
    x = np.array([[1.0, -4.0, 2.0], [0.5, 0.25, 0.0], [0.0, 0.0, 0.0]], np.float32)
    y = MaxAbsNormalization()(x).numpy()
    np.testing.assert_allclose(y, [[0.25, -1.0, 0.5], [1.0, 0.5, 0.0], [0.0, 0.0, 0.0]])


def test_prediction_does_not_depend_on_batch_companions(mnist):
    model = build_model("conv2d")
    images = model_input("conv2d", mnist.test.images[:32])
    alone = np.concatenate([model(images[i : i + 1]).numpy() for i in range(4)])
    in_batch = model(images).numpy()[:4]
    # Batched kernels may add in another order; the values agree to float rounding.
    np.testing.assert_allclose(alone, in_batch, rtol=1e-5, atol=1e-6)
    bright = images.numpy().copy()
    bright[4:] = 1.0  # change every other image of the batch drastically
    np.testing.assert_allclose(model(bright).numpy()[:4], in_batch, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["conv2d", "flat"])
def test_saved_model_loads_in_safe_mode(tmp_path, name, mnist):
    model = build_model(name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    again = load_model(str(path))
    x = model_input(name, mnist.test.images[:8])
    np.testing.assert_array_equal(model(x).numpy(), again(x).numpy())
