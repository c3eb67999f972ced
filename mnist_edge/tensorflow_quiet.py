"""TensorFlow and tf_keras, imported once without their C++ start-up chatter.

Importing TensorFlow prints a handful of lines (oneDNN notes, CUDA probing) to
the process's stderr from C++, before any Python logging setting applies. They
drown the one-line errors and progress output of the CLI, so the import runs
with file descriptor 2 pointed at /dev/null. A failing import still raises its
Python exception as usual.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def _stderr_fd_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _stderr_fd_silenced():
    import tensorflow as tf
    import tf_keras as keras

__all__ = ["keras", "tf"]
