"""The learning loop at full budget, as a user runs it: corrections on the device, a better model back.

    python benchmarks/learning_loop.py --runs RUNS --bundle BUNDLE [--corrections 300] [--out DIR]

RUNS and BUNDLE are what ``mnist-edge pipeline`` made (the default models); they are copied into a
temporary folder and left as they are. The steps are the commands of docs/learn.md:

1. ``mnist-edge-runtime serve --collect DIR`` with the bundle's conv2d int8 model; a simulated
   writer (``tests/writer.py``: 1s with a long curved flag, 7s with a hooked top and a crossbar)
   sends ``--corrections`` drawings to ``POST /api/samples`` with their digits;
2. ``mnist-edge-runtime samples DIR --export writer.npz``;
3. ``mnist-edge train --extra-data writer.npz`` (both models, the default fine-tuning budget);
4. ``mnist-edge export --int8`` into the copied bundle (QAT, every gate, before and after); when
   it refuses and names a model whose files all passed, ``export --int8 --model`` that model,
   as its error says.

Figures: from the new manifest, each artifact's MNIST test accuracy before and after and its share
right of the held-out quarter of the collected samples, before and after; and, measured here with
the runtime, 200 new drawings by the same writer that were never sent (another seed), read by the
bundle before and after. Writes ``learning-loop.json`` and ``learning-loop.md`` (docs/learn.md's
table) into ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import NoReturn

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from mnist_edge_runtime.classifier import Classifier, predictions_from_scores  # noqa: E402
from mnist_edge_runtime.machine import describe_machine, one_line  # noqa: E402
from mnist_edge_runtime.preprocess import load_image_bytes, mnist_or_blank  # noqa: E402
from script_parser import script_parser  # noqa: E402
from writer import writer_digits  # noqa: E402

FRESH = 200  # new drawings by the writer, never sent
WRITER_SEED, FRESH_SEED = 29, 290


def run(*command: str, cwd: Path) -> float:
    """Run one command of the loop; its wall seconds."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        failed(command, done)
    return round(time.perf_counter() - started, 1)


def failed(command: tuple[str, ...], done: subprocess.CompletedProcess) -> NoReturn:
    # The command's own one-line error comes last, after its progress lines.
    raise SystemExit(
        f"learning_loop.py: {' '.join(command[:4])} failed (exit {done.returncode}): {last_line(done)}"
    )


def last_line(done: subprocess.CompletedProcess) -> str:
    said = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()] or ["no output"]
    return said[-1]


PUBLISH_ALONE = re.compile(r"`export --model (\w+)`")


def export_learned(*command: str, cwd: Path) -> tuple[float, str | None, str | None]:
    """``export --int8`` as a user runs it, and when a gate refuses the bundle but every file of
    one model passed, the command the refusal names next (``--model`` that model): the wall
    seconds of both, the refusal and the model published alone."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    refusal = alone = None
    if done.returncode == 1 and (named := PUBLISH_ALONE.search(last_line(done))):
        refusal, alone = last_line(done), named.group(1)
        run(*command, "--model", alone, cwd=cwd)
    elif done.returncode != 0:
        failed(command, done)
    return round(time.perf_counter() - started, 1), refusal, alone


@contextlib.contextmanager
def serving(model: Path, collect: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "mnist_edge_runtime", "serve", "--model-file", str(model)]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--collect", str(collect)], stdout=subprocess.PIPE, text=True
    )
    try:
        if "serving" not in process.stdout.readline():
            raise SystemExit("learning_loop.py: serve did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(60)


def send_corrections(url: str, count: int) -> dict:
    """The writer's drawings to the running server, each with its digit; the server's answers."""
    right = 0
    for digit, png in writer_digits(count, WRITER_SEED):
        request = urllib.request.Request(
            f"{url}/api/samples?label={digit}", png, {"Content-Type": "image/png"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            right += json.loads(response.read())["answer"]["digit"] == digit
    return {"sent": count, "answered_right_while_collecting": right}


def fresh_drawings_right(bundle: Path) -> dict:
    """Each int8 model's share of the writer's new drawings read right, and read right and sure."""
    drawings = writer_digits(FRESH, FRESH_SEED)
    images = np.stack([mnist_or_blank(load_image_bytes(png, "drawing"), "drawing") for _, png in drawings])
    digits = np.array([digit for digit, _ in drawings])
    figures = {}
    for model in ("conv2d", "flat"):
        classifier = Classifier.open(bundle / f"{model}.int8.tflite")
        answers = predictions_from_scores(classifier.scores(images), images)
        figures[f"{model}.int8.tflite"] = {
            "right": round(float(np.mean([a.digit == d for a, d in zip(answers, digits, strict=True)])), 4),
            "right_and_sure": round(
                float(np.mean([a.digit == d and a.sure for a, d in zip(answers, digits, strict=True)])), 4
            ),
        }
    return figures


def main() -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--runs", type=Path, required=True, help="the runs folder mnist-edge pipeline wrote")
    parser.add_argument("--bundle", type=Path, required=True, help="the bundle mnist-edge pipeline wrote")
    parser.add_argument(
        "--corrections", type=int, default=300, help="drawings the writer sends (default 300)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    for folder in (args.runs, args.bundle):
        if not folder.is_dir():
            parser.error(f"{folder}: no such folder")
    work = Path(tempfile.mkdtemp(prefix="learning-loop-"))
    try:
        runs, bundle = work / "runs", work / "bundle"
        shutil.copytree(args.runs, runs)
        shutil.copytree(args.bundle, bundle)
        before_manifest = json.loads((bundle / "manifest.json").read_text())["artifacts"]
        before_fresh = fresh_drawings_right(bundle)
        seconds = {}
        started = time.perf_counter()
        with serving(bundle / "conv2d.int8.tflite", work / "samples") as url:
            sent = send_corrections(url, args.corrections)
        seconds["collect"] = round(time.perf_counter() - started, 1)
        runtime = [sys.executable, "-m", "mnist_edge_runtime"]
        toolchain = [sys.executable, "-m", "mnist_edge"]
        seconds["samples --export"] = run(*runtime, "samples", "samples", "--export", "writer.npz", cwd=work)
        seconds["train --extra-data"] = run(
            *toolchain, "train", "--runs", "runs", "--extra-data", "writer.npz", cwd=work
        )
        seconds["export --int8"], refusal, published_alone = export_learned(
            *toolchain, "export", "--int8", "--runs", "runs", "--bundle", "bundle", cwd=work
        )
        after_manifest = json.loads((bundle / "manifest.json").read_text())["artifacts"]
        if published_alone:
            kept = [n for n in before_manifest if not n.startswith(f"{published_alone}.")]
            moved = [
                n for n in kept if after_manifest.get(n, {}).get("sha256") != before_manifest[n].get("sha256")
            ]
            if moved:
                raise SystemExit(
                    f"learning_loop.py: export --model {published_alone} changed {', '.join(moved)}"
                )
        after_fresh = fresh_drawings_right(bundle)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    artifacts = {}
    for name, entry in after_manifest.items():
        learned = entry.get("collected_samples")
        if not learned:
            continue
        artifacts[name] = {
            "mnist_before": before_manifest[name]["validation"]["accuracy"],
            "mnist_after": entry["validation"]["accuracy"],
            "held_out": learned["held_out"],
            "held_out_before": learned.get("before"),
            "held_out_after": learned["after"],
            "fresh_before": before_fresh.get(name),
            "fresh_after": after_fresh.get(name),
        }
    sets = next(iter(after_manifest.values())).get("collected_samples", {}).get("sets", [])
    results = {
        # The folders by name: those mnist-edge pipeline writes in the folder it runs in.
        "command": f"python benchmarks/learning_loop.py --runs {args.runs.name} --bundle {args.bundle.name}"
        + ("" if args.corrections == 300 else f" --corrections {args.corrections}"),
        "machine": describe_machine(),
        "cpu_count": os.cpu_count(),
        "collected": {**sent, "sets": sets},
        "fresh_drawings": FRESH,
        "seconds": seconds,
        "export_refusal": refusal,
        "published_alone": published_alone,
        "artifacts": artifacts,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learning-loop.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "learning-loop.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    collected = results["collected"]
    sets = collected["sets"][0] if collected["sets"] else {}
    lines = [
        "# The learning loop at full budget",
        "",
        f"`{results['command']}`, on {one_line(results['machine'])} ({results['cpu_count']} cores). The writer sent "
        f"{collected['sent']} corrections ({sets.get('train', '?')} trained on, {sets.get('held_out', '?')} held out); "
        f"the served conv2d model read {collected['answered_right_while_collecting']} of them right while collecting. "
        f"New drawings: {results['fresh_drawings']} more by the same writer, never sent.",
        "",
        "| model file | MNIST test before | after | held-out samples right before | after "
        "| new drawings right before | after | right and sure before | after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def pct(value: float | None, digits: int = 1) -> str:
        return "" if value is None else f"{value:.{digits}%}"

    for name, a in results["artifacts"].items():
        fresh_b, fresh_a = a["fresh_before"] or {}, a["fresh_after"] or {}
        lines.append(
            f"| {name} | {pct(a['mnist_before'], 2)} | {pct(a['mnist_after'], 2)} | {pct(a['held_out_before'])} "
            f"| {pct(a['held_out_after'])} | {pct(fresh_b.get('right'))} | {pct(fresh_a.get('right'))} "
            f"| {pct(fresh_b.get('right_and_sure'))} | {pct(fresh_a.get('right_and_sure'))} |"
        )
    if results.get("published_alone"):
        lines += [
            "",
            f'`export --int8` refused the bundle ("{results["export_refusal"].removeprefix("mnist-edge: error: ")}"); '
            f"the loop then ran what the refusal names, `export --int8 --model {results['published_alone']}`: "
            f"{results['published_alone']}'s files (the rows above and its TFLM source) were published, and every other "
            "file of the bundle kept its SHA-256. The export step's time covers both commands.",
        ]
    lines += [
        "",
        "Wall time of each step (seconds): "
        + ", ".join(f"{k} {v}" for k, v in results["seconds"].items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
