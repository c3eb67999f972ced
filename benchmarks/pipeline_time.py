"""The whole pipeline's time: an earlier revision's against the working tree's, side by side.

    python benchmarks/pipeline_time.py --against 5399071 [--rounds 1] [--out benchmarks/results] [--name NAME]

``mnist-edge pipeline`` (train both models, QAT, export every format, validate each on the
10,000 test images, report) from an empty folder, for each side in turn, the order alternating
from round to round: the revision's code (a ``git worktree`` of it, its toolchain and runtime
first on the path, in this same Python environment) and the working tree's. Nothing is reused
between runs (no checkpoint, no QAT cache). Per run: the wall time and the int8 TFLite test
accuracies from the bundle's manifest; the ratio is the working tree's time over the revision's.
Writes ``NAME.json`` and ``NAME.md`` (default ``pipeline-vs-REV``) headed by the CPU. Each round
takes as long as both pipelines: about 15 minutes on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from mnist_edge_runtime.machine import describe_machine, one_line  # noqa: E402
from script_parser import script_parser  # noqa: E402


def run_pipeline(code: Path, folder: Path) -> dict:
    """One ``mnist-edge pipeline`` of the code at ``code`` into ``folder``: wall time, accuracies."""
    env = {**os.environ, "PYTHONPATH": f"{code}{os.pathsep}{code / 'runtime'}"}
    args = [
        "--runs",
        str(folder / "runs"),
        "--bundle",
        str(folder / "export"),
        "--reports",
        str(folder / "reports"),
    ]
    start = time.perf_counter()
    # From the empty folder: the working directory must not put another checkout first on the path.
    done = subprocess.run(
        [sys.executable, "-m", "mnist_edge", "pipeline", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"pipeline of {code} failed (exit {done.returncode}): {tail[0]}")
    artifacts = json.loads((folder / "export" / "manifest.json").read_text())["artifacts"]
    accuracy = {
        name.split(".")[0]: entry["validation"]["accuracy"]
        for name, entry in artifacts.items()
        if name.endswith(".int8.tflite")
    }
    return {"seconds": round(seconds, 1), "int8_tflite_test_accuracy": accuracy}


def markdown(result: dict) -> str:
    rev = result["against"]
    lines = [
        f"Machine: {result['machine']}. Command: `{result['command']}`.",
        "",
        "| round | run | wall | conv2d int8 TFLite test | flat int8 TFLite test |",
        "| ---: | --- | ---: | ---: | ---: |",
    ]
    for run in result["runs"]:
        acc = run["int8_tflite_test_accuracy"]
        lines.append(
            f"| {run['round']} | {run['side']} | {run['seconds']:.0f} s | {acc['conv2d']:.2%} | {acc['flat']:.2%} |"
        )
    lines += [
        "",
        f"The working tree's pipeline took **{result['ratio']:.2f}x** the time of {rev}'s (sums over the rounds).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--against", required=True, help="the git revision to compare with")
    parser.add_argument("--rounds", type=int, default=1, help="pipelines of each side (default 1)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--name", help="results file name without suffix (default pipeline-vs-REV)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    name = args.name or f"pipeline-vs-{args.against}"
    runs = []
    with tempfile.TemporaryDirectory(prefix="pipeline-time-") as scratch:
        worktree = Path(scratch) / "revision"
        added = subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.against],
            capture_output=True,
            text=True,
        )
        if added.returncode != 0:
            parser.exit(2, f"pipeline_time.py: cannot check out {args.against}: {added.stderr.strip()}\n")
        try:
            for round_ in range(1, args.rounds + 1):
                sides = [(args.against, worktree), ("working tree", REPO)]
                for side, code in sides if round_ % 2 else sides[::-1]:
                    folder = Path(scratch) / f"{round_}-{'revision' if code == worktree else 'now'}"
                    folder.mkdir()
                    print(f"round {round_}: pipeline of {side} ...", flush=True)
                    runs.append({"round": round_, "side": side, **run_pipeline(code, folder)})
                    print(f"  {runs[-1]['seconds']:.0f} s", flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False
            )
    then = sum(r["seconds"] for r in runs if r["side"] == args.against)
    now = sum(r["seconds"] for r in runs if r["side"] == "working tree")
    result = {
        "command": "python benchmarks/pipeline_time.py " + " ".join(sys.argv[1:]),
        "machine": one_line(describe_machine()),
        "against": args.against,
        "runs": runs,
        "ratio": now / then,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
