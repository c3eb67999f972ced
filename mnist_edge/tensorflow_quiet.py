"""TensorFlow and tf_keras, imported once without their C++ start-up chatter.

Importing TensorFlow prints a handful of lines (oneDNN notes, CUDA probing) to
the process's stderr from C++, before any Python logging setting applies. They
drown the one-line errors and progress output of the CLI, so the import runs
with file descriptor 2 pointed at /dev/null. A failing import still raises its
Python exception as usual.
"""

from __future__ import annotations

from mnist_edge_runtime.quiet import native_stderr_silenced

with native_stderr_silenced():
    import tensorflow as tf
    import tf_keras as keras

__all__ = ["keras", "tf"]
