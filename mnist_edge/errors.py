"""Errors the user can act on.

Anything raised as a :class:`UserError` is printed by the CLI as one line and
turned into an exit code; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2  # bad options, missing or corrupt input files
EXIT_FAILED = 1  # the job ran but a quality gate failed


class UserError(Exception):
    """A problem with the user's input or environment (exit code 2)."""

    exit_code = EXIT_USAGE


class GateFailedError(UserError):
    """A model or artifact did not reach its quality gate (exit code 1)."""

    exit_code = EXIT_FAILED


class OneLineParser(argparse.ArgumentParser):
    """The parser of a ``python -m mnist_edge.*`` entry point: a usage error is one line naming
    the module, and exit code 2, with no usage block."""

    def error(self, message: str) -> None:
        sys.stderr.write(f"{self.prog.split()[-1]}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)
