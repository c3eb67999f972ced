"""The committed bundle's tables, written from export/manifest.json (never typed by hand).

    python benchmarks/bundle_tables.py           # write benchmarks/results/bundle-*.md
    python benchmarks/bundle_tables.py --check   # exit 1 when a file differs from the manifest (CI)

``bundle-models.md`` is the README's accuracy table, ``bundle-artifacts.md`` every artifact
(docs/export.md), ``bundle-tflm.md`` the microcontroller C sources (docs/microcontrollers.md);
``benchmarks/tables.py`` then copies them into those pages.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from script_parser import script_parser

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ORIGINAL = {"conv2d": "99.32%", "flat": "97.46%"}  # the original project's, after 100 epochs
DESCRIBED = {"conv2d": "4 convolutions", "flat": "7 dense layers"}


def pct(value: float) -> str:
    return f"{value:.2%}"


def measured_on(artifacts: dict) -> str:
    cpu = next(iter(artifacts.values()))["validation"]["measured_on"]["cpu"]
    return f"{cpu['model']} ({cpu['machine']}; {' '.join(cpu['features'])})"


def models_table(artifacts: dict) -> str:
    lines = [
        "| model | original project (100 epochs) | ours, float32 | ours, int8 TFLite | our epochs |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for model in ("conv2d", "flat"):
        float32, int8 = artifacts[f"{model}.float32.tflite"], artifacts[f"{model}.int8.tflite"]
        source = int8["source"]
        lines.append(
            f"| {model} ({DESCRIBED[model]}, {source['parameters']:,} parameters) | {ORIGINAL[model]} "
            f"| **{pct(float32['validation']['accuracy'])}** | **{pct(int8['validation']['accuracy'])}** "
            f"| {source['config']['epochs']} |"
        )
    return "\n".join(lines) + f"\n\nMeasured on {measured_on(artifacts)}.\n"


def artifacts_table(artifacts: dict) -> str:
    lines = [
        "| artifact | size | test accuracy | top-1 agreement | max \\|diff\\| | compared with |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in artifacts.items():
        if entry["format"] == "tflm":
            continue
        v = entry["validation"]
        size = f"{entry['bytes']:,} B"
        if entry["precision"] == "int8" and entry["format"] == "tflite":
            float_bytes = artifacts[name.replace(".int8.", ".float32.")]["bytes"]
            size += f" ({entry['bytes'] / float_bytes:.2f}x)"
        source = {"QAT": "Keras QAT", "float": "Keras float"}.get(v["compared_with"], v["compared_with"])
        lines.append(
            f"| {name} | {size} | {pct(v['accuracy'])} | {v['agreement']:.2%} | {v['max_abs_diff']:.2g} | {source} |"
        )
    return "\n".join(lines) + f"\n\nMeasured on {measured_on(artifacts)}.\n"


def tflm_table(artifacts: dict) -> str:
    lines = [
        "| artifact | test accuracy | top-1 agreement with LiteRT | max \\|score diff\\| | arena measured | arena in the header |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in artifacts.items():
        if entry["format"] != "tflm":
            continue
        v, micro = entry["validation"], entry["tflm"]
        litert = artifacts[name.replace(".tflm.c", ".tflite")]["validation"]["accuracy"]
        lines.append(
            f"| {name} | {pct(v['accuracy'])} (LiteRT: {pct(litert)}) | {v['agreement']:.2%} "
            f"| {v['max_abs_diff']:.2g} | {micro['arena_bytes_measured']:,} B "
            f"| {micro['arena_bytes']:,} B ({micro['arena_bytes'] // 1024} KiB) |"
        )
    return "\n".join(lines) + f"\n\nMeasured on {measured_on(artifacts)}.\n"


def tables(manifest: Path) -> dict[str, str]:
    artifacts = json.loads(manifest.read_text())["artifacts"]
    return {
        "bundle-models.md": models_table(artifacts),
        "bundle-artifacts.md": artifacts_table(artifacts),
        "bundle-tflm.md": tflm_table(artifacts),
    }


def main() -> int:
    parser = script_parser(__doc__)
    parser.add_argument(
        "--manifest", type=Path, default=ROOT / "export" / "manifest.json", help="the bundle's manifest"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a file differs from the manifest")
    args = parser.parse_args()
    stale = []
    for name, text in tables(args.manifest).items():
        path = RESULTS / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"bundle_tables.py: {', '.join(stale)} differ from {args.manifest}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
