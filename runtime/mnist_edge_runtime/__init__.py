"""mnist-edge-runtime: run mnist-edge's exported MNIST classifiers without TensorFlow."""

__version__ = "0.1.0"
