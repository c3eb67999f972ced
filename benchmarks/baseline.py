"""The earlier preprocessing (commit cdc1eb6 by default), loaded from git to compare against.

``load_baseline_preprocess(rev)`` returns that commit's ``preprocess`` module. Since the split
into ``decoding`` and ``reading``, ``preprocess`` imports those two: they are loaded from the same
commit (a baseline made of the revision's ``preprocess`` over today's modules would measure
today's code). The runtime's ``errors`` stay today's, so a caller's ``except NoDigitError`` catches
the baseline's too. ``file=`` reads a lone ``preprocess.py`` instead, for a machine without the
repository's history.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE_REV = "cdc1eb6"  # before the run-based labelling and the partial sorts
PACKAGE = "runtime/mnist_edge_runtime"
PREPROCESS = f"{PACKAGE}/preprocess.py"
# In import order: each may import the ones before it.
PIPELINE = ("reading", "decoding", "preprocess")


def _show(rev: str, path: str) -> tuple[str | None, str]:
    """The file at ``rev``, or None and git's reason."""
    shown = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{path}"], capture_output=True, text=True)
    if shown.returncode != 0:
        return None, (shown.stderr.strip().splitlines() or ["git show failed"])[-1]
    return shown.stdout, ""


def _module(name: str, source: str, origin: str) -> types.ModuleType:
    module = types.ModuleType(f"mnist_edge_runtime.{name}")
    module.__file__ = origin
    exec(compile(source, origin, "exec"), module.__dict__)
    return module


def load_baseline_preprocess(rev: str = BASELINE_REV, file: Path | None = None) -> types.ModuleType:
    if file is not None:
        return _module("preprocess", Path(file).read_text(), str(file))
    shown = {name: _show(rev, f"{PACKAGE}/{name}.py") for name in PIPELINE}
    sources = {name: source for name, (source, _) in shown.items()}
    if sources["preprocess"] is None:
        # A revision git does not know is a usage error: one line, exit 2.
        sys.stderr.write(
            f"cannot read {PREPROCESS} at {rev}: {shown['preprocess'][1]} (use --baseline-file)\n"
        )
        raise SystemExit(2)
    # The revision's modules stand in for today's while they import one another, then today's
    # are put back: each loaded module keeps the names it imported.
    today = {name: sys.modules.get(f"mnist_edge_runtime.{name}") for name in PIPELINE}
    loaded: dict[str, types.ModuleType] = {}
    try:
        for name in PIPELINE:
            if sources[name] is not None:
                loaded[name] = _module(name, sources[name], f"{rev}:{PACKAGE}/{name}.py")
                sys.modules[f"mnist_edge_runtime.{name}"] = loaded[name]
    finally:
        for name, module in today.items():
            if module is None:
                sys.modules.pop(f"mnist_edge_runtime.{name}", None)
            else:
                sys.modules[f"mnist_edge_runtime.{name}"] = module
    return loaded["preprocess"]
