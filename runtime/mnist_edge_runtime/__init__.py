"""mnist-edge-runtime: run mnist-edge's exported MNIST classifiers without TensorFlow.

from mnist_edge_runtime import Classifier

classifier = Classifier.open("export/conv2d.int8.tflite")
print(classifier.predict("digit.jpg")[0])
"""

from mnist_edge_runtime.bundle import ORIGINAL_ACCURACY, read_manifest
from mnist_edge_runtime.classifier import Classifier, Prediction
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.preprocess import to_mnist

__version__ = "0.1.0"
__all__ = [
    "ORIGINAL_ACCURACY",
    "Classifier",
    "Prediction",
    "RuntimeInputError",
    "__version__",
    "read_manifest",
    "to_mnist",
]
