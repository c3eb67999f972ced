"""Errors a device user can act on: printed as one line, exit code 2."""


class RuntimeInputError(Exception):
    """A bad model file, image, array or option."""

    exit_code = 2


class NoDigitError(RuntimeInputError):
    """The picture holds no ink to read: blank, or specks that vanish at MNIST's size."""


def permission_problem(exc: PermissionError) -> str:
    """A ``PermissionError`` as the one line a user reads: the path and what was refused."""
    return f"{exc.filename}: permission denied" if exc.filename else f"permission denied ({exc})"
