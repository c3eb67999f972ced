"""The command lines of the benchmarks and of the scripts beside them (CI's emulation harness, the
runtime's examples): argparse, with the project's form of error (one line, exit 2)."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """A bad option gets one line on stderr and exit status 2, without argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def script_parser(doc: str | None) -> OneLineParser:
    """A parser described by the first paragraph of a script's docstring, on one line."""
    return OneLineParser(description=" ".join((doc or "").split("\n\n")[0].split()).replace("`", ""))
