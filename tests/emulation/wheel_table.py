"""Which wheels exist on PyPI for each Raspberry Pi OS: the table the runtime README shows.

    python tests/emulation/wheel_table.py [--out tests/emulation/results]

For every OS row (its CPU and its system Python) and every package the runtime and its extras
need, pip is asked for a binary wheel (``pip download --no-deps --only-binary=:all: --platform
... --python-version ...``, into a temporary folder): the newest version it finds, or "none".
Writes ``wheel_table.{json,md}`` with the date it was generated; the README includes the table
(``benchmarks/tables.py``).
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "benchmarks"))  # one-line errors, as the benchmarks give
from script_parser import script_parser  # noqa: E402

_AARCH64 = [f"manylinux{t}_aarch64" for t in ("2014", "_2_17", "_2_24", "_2_26", "_2_27", "_2_28", "_2_31",
                                              "_2_34", "_2_35", "_2_36")]  # fmt: skip
_ARMV7 = ["manylinux_2_17_armv7l", "manylinux_2_31_armv7l", "manylinux_2_34_armv7l", "linux_armv7l"]
ROWS = [  # (OS, CPU, Python, pip platform tags)
    ("Raspberry Pi OS Bookworm 64-bit", "aarch64", "3.11", _AARCH64),
    ("Raspberry Pi OS Bookworm 32-bit", "armv7l", "3.11", _ARMV7),
    ("Raspberry Pi OS Trixie 64-bit", "aarch64", "3.13", [*_AARCH64, "manylinux_2_39_aarch64", "manylinux_2_41_aarch64"]),
    ("Raspberry Pi OS Trixie 32-bit", "armv7l", "3.13", [*_ARMV7, "manylinux_2_39_armv7l", "manylinux_2_41_armv7l"]),
    ("Raspberry Pi OS 32-bit on ARMv6 (Pi Zero, Pi 1)", "armv6l", "3.11", ["linux_armv6l"]),
]  # fmt: skip
PACKAGES = ["numpy", "pillow", "tflite-runtime", "ai-edge-litert", "onnxruntime", "starlette", "uvicorn"]


def newest_wheel(package: str, python: str, platforms: list[str]) -> str | None:
    abi = "cp" + python.replace(".", "")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", tmp,
             *[f"--platform={p}" for p in platforms], "--python-version", python, "--implementation", "cp",
             "--abi", abi, "--abi", "abi3", "--abi", "none", package],
            capture_output=True, text=True,
        )  # fmt: skip
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            return None
        match = re.match(r"[^-]+-([^-]+)-", wheels[0].name)
        return match.group(1) if match else "?"


def markdown(table: dict) -> str:
    lines = [
        f"| system | CPU | Python | {' | '.join(PACKAGES)} |",
        "| --- | --- | --- |" + " --- |" * len(PACKAGES),
    ]
    for row in table["rows"]:
        cells = [row["wheels"][p] or "none" for p in PACKAGES]
        lines.append(f"| {row['system']} | {row['cpu']} | {row['python']} | {' | '.join(cells)} |")
    lines += ["", f"Newest binary wheel on PyPI per system, asked of pip on {table['generated']} with "
              "`python tests/emulation/wheel_table.py`."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    rows = []
    for system, cpu, python, platforms in ROWS:
        wheels = {package: newest_wheel(package, python, platforms) for package in PACKAGES}
        rows.append({"system": system, "cpu": cpu, "python": python, "wheels": wheels})
        print(f"{system}: {wheels}", file=sys.stderr)
    table = {"generated": datetime.date.today().isoformat(), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "wheel_table.json").write_text(json.dumps(table, indent=2) + "\n")
    (args.out / "wheel_table.md").write_text(markdown(table))
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
