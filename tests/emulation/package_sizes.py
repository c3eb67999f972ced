"""How big each offline package is, and what it installs: the figures the README states.

    python tests/emulation/package_sizes.py [--out tests/emulation/results]

For every target of ``mnist-edge package``: the size of its ``wheels/`` folder (what is copied to
the device), and the size of what installing it offline puts in place: the packages pip installs
for the target's platform (``install_package.install``: no index), without the virtual
environment's own pip and without the system packages a target uses (32-bit: Debian's numpy and
Pillow). Writes ``package_sizes.{json,md}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "benchmarks"))  # one-line errors, as the benchmarks give
from script_parser import script_parser  # noqa: E402

sys.path.insert(0, str(HERE))
from install_package import TARGETS, install  # noqa: E402


def megabytes(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6, 1)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| target | system | wheels | package (wheels/) | installed |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['target']} | {r['system']} | {r['wheels']} | {r['package_mb']} MB | {r['installed_mb']} MB |"
        )
    lines += ["", "Sizes of files (MB = 10^6 bytes), with `python tests/emulation/package_sizes.py`; "
              "installed: what pip puts in place for the target, not the virtual environment's own pip "
              "or Debian's numpy and Pillow on 32-bit."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, target in TARGETS.items():
            folder, site = Path(tmp, name), Path(tmp, f"site-{name}")
            made = subprocess.run([sys.executable, "-m", "mnist_edge", "package", "--target", name, "--out", str(folder)],
                                  capture_output=True, text=True)  # fmt: skip
            if made.returncode != 0:
                sys.exit(f"package_sizes: {made.stderr.strip()}")
            install(name, folder, site)
            wheels = list((folder / "wheels").glob("*.whl"))
            rows.append({"target": name, "system": target.system, "wheels": len(wheels),
                         "package_mb": megabytes(folder / "wheels"), "installed_mb": megabytes(site)})  # fmt: skip
            print(rows[-1], file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "package_sizes.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "package_sizes.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
