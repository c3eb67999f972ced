"""The earlier preprocessing (commit cdc1eb6), loaded from git to compare against.

``load_baseline_preprocess("cdc1eb6")`` returns that commit's ``preprocess`` module (it imports
only numpy, Pillow and the runtime's errors), or reads it from a file for a machine without the
repository's history.
"""

from __future__ import annotations

import subprocess
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE_REV = "cdc1eb6"  # before the run-based labelling and the partial sorts
PREPROCESS = "runtime/mnist_edge_runtime/preprocess.py"


def load_baseline_preprocess(rev: str = BASELINE_REV, file: Path | None = None) -> types.ModuleType:
    if file is not None:
        source = Path(file).read_text()
    else:
        shown = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{rev}:{PREPROCESS}"], capture_output=True, text=True
        )
        if shown.returncode != 0:
            raise SystemExit(
                f"cannot read {PREPROCESS} at {rev}: {shown.stderr.strip()} (use --baseline-file)"
            )
        source = shown.stdout
    module = types.ModuleType(f"preprocess_at_{rev}")
    exec(compile(source, f"{rev}:{PREPROCESS}", "exec"), module.__dict__)
    return module
