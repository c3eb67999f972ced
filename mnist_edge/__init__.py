"""mnist-edge: train, quantize, export and validate MNIST classifiers for small devices."""

import os

# tensorflow-model-optimization only works with Keras 2 (tf_keras). TensorFlow
# reads this variable once, when it is first imported, so it is set here, before
# any module of this package can import TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow logs C++ noise (CUDA probing, oneDNN notes) to stderr; real failures
# still surface as Python exceptions.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
