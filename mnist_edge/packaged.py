"""The bundle the runtime package carries, so that a plain install works in any folder.

``runtime/mnist_edge_runtime/bundle/`` holds the int8 TFLite models of an export bundle, a
manifest with their entries only, and the 10,000 MNIST test images and labels (about 2.6 MB):
``mnist-edge-runtime predict`` and ``serve`` answer with it, and ``eval`` with no arguments is
the parity check on a device. It is derived from ``export/`` byte for byte (CI compares them);
``mnist-edge package --bundle DIR`` builds a runtime wheel carrying another bundle the same way.

    python -m mnist_edge.packaged --check    # exit 1 if it differs from export/ by a byte
    python -m mnist_edge.packaged --write    # refresh the runtime's copy from export/

Nothing is written without ``--write``: ``--help``, a typo or no option at all never rewrites
the runtime's files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mnist_edge.errors import OneLineParser
from mnist_edge.files import write_bytes_atomically

ROOT = Path(__file__).resolve().parents[1]
EXPORT = ROOT / "export"
MNIST = Path(__file__).resolve().parent / "datasets" / "mnist"
RUNTIME_BUNDLE = ROOT / "runtime" / "mnist_edge_runtime" / "bundle"
PACKAGED_MODELS = ("conv2d.int8.tflite", "flat.int8.tflite")
TEST_SET = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def packaged_files(bundle: Path = EXPORT) -> dict[str, bytes]:
    """File name -> content of the runtime's bundle, derived from ``bundle``."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    missing = [name for name in PACKAGED_MODELS if name not in manifest.get("artifacts", {})]
    if missing:
        raise FileNotFoundError(f"{bundle}: the manifest has no {', '.join(missing)} (run mnist-edge export)")
    subset = {**manifest, "artifacts": {name: manifest["artifacts"][name] for name in PACKAGED_MODELS}}
    files = {"manifest.json": (json.dumps(subset, indent=2) + "\n").encode()}
    files.update({name: (bundle / name).read_bytes() for name in PACKAGED_MODELS})
    files.update({name: (MNIST / name).read_bytes() for name in TEST_SET})
    return files


def differences(target: Path = RUNTIME_BUNDLE, bundle: Path = EXPORT) -> list[str]:
    """What in ``target`` differs from what ``bundle`` makes of it (empty: identical)."""
    expected = packaged_files(bundle)
    found = {p.name for p in target.iterdir() if p.is_file()} if target.is_dir() else set()
    problems = [f"{name}: missing" for name in sorted(set(expected) - found)]
    problems += [f"{name}: not part of the bundle" for name in sorted(found - set(expected))]
    problems += [
        f"{name}: differs from {bundle.name}/" for name in sorted(set(expected) & found)
        if (target / name).read_bytes() != expected[name]
    ]  # fmt: skip
    return problems


def write(target: Path = RUNTIME_BUNDLE, bundle: Path = EXPORT) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name, content in packaged_files(bundle).items():
        write_bytes_atomically(target / name, content)


def main(argv: list[str] | None = None) -> int:

    parser = OneLineParser(
        prog="python -m mnist_edge.packaged",
        allow_abbrev=False,  # --w must not write
        description="The bundle the runtime package carries (runtime/mnist_edge_runtime/bundle/): "
        "export/'s int8 TFLite models, a manifest with their entries only, and the 10,000 MNIST "
        "test images and labels, byte for byte. --check compares it with what export/ makes of it; "
        "--write remakes it from export/ (after an export). "
        "Exit codes: 0 identical or written, 1 it differs (--check), 2 usage error.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="exit 1 if it differs from export/ by a byte")
    action.add_argument("--write", action="store_true", help="remake it from export/")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences()
        for problem in problems:
            print(f"runtime bundle: {problem} (run: python -m mnist_edge.packaged --write)", file=sys.stderr)
        return 1 if problems else 0
    write()
    print(f"wrote {RUNTIME_BUNDLE.relative_to(ROOT)}/ from {EXPORT.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
