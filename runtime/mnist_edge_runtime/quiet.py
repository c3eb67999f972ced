"""Silence what native libraries print straight to file descriptor 2.

TFLite interpreters announce their XNNPACK delegate on stderr from C++, where
no Python setting reaches; that line would sit between a command's output and
its one-line errors. Python exceptions raised inside still propagate.

File descriptor 2 belongs to the whole process, so threads share one redirection:
the first to enter swaps it for /dev/null and the last to leave puts it back, even
after an error. It is used only while a model is being loaded, never per prediction.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_users = 0
_saved: int | None = None


def _enter() -> None:
    global _users, _saved
    with _lock:
        if _users == 0:
            sys.stderr.flush()
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 2)
            finally:
                os.close(devnull)
            _saved = saved
        _users += 1


def _leave() -> None:
    global _users, _saved
    with _lock:
        _users -= 1
        if _users == 0 and _saved is not None:
            os.dup2(_saved, 2)
            os.close(_saved)
            _saved = None


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    try:
        _enter()
    except (OSError, ValueError):  # no real stderr (embedded, some test runners): nothing to silence
        yield
        return
    try:
        yield
    finally:
        _leave()
