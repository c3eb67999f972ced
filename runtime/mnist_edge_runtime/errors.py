"""Errors a device user can act on: printed as one line, exit code 2."""

from __future__ import annotations

from pathlib import Path


class RuntimeInputError(Exception):
    """A bad model file, image, array or option."""

    exit_code = 2


class NoDigitError(RuntimeInputError):
    """The picture holds no ink to read: blank, or specks that vanish at MNIST's size."""


def permission_problem(exc: PermissionError) -> str:
    """A ``PermissionError`` as the one line a user reads: the path and what was refused."""
    return f"{exc.filename}: permission denied" if exc.filename else f"permission denied ({exc})"


def not_a_file(path: Path, kind: str = "file") -> RuntimeInputError:
    """The error for a ``path`` that is not a regular file: missing, or a folder, pipe or device."""
    if path.exists():
        return RuntimeInputError(f"{path}: not a regular file (a folder, a pipe or a device)")
    return RuntimeInputError(f"{path}: no such {kind}")
