"""Errors a device user can act on: printed as one line, exit code 2."""


class RuntimeInputError(Exception):
    """A bad model file, image, array or option."""

    exit_code = 2
