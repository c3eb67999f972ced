"""`mnist-edge package` proven under emulation: the offline installation installs and passes parity.

    python tests/emulation/install_package.py [--targets pi-bookworm-64,pi-bookworm-32] [--images N]
        [--native-litert-python P1] [--native-tflite-python P2] [--json FILE]

For each target, ``mnist-edge package --target T`` writes its folder; then, with no index (only
the folder's ``wheels/``), the runtime is installed for the target's platform into a folder the
emulated Pi imports from, and the zero-argument ``mnist-edge-runtime eval`` runs there from an
empty folder:

* ``pi-bookworm-64``: ``qemu-aarch64 -cpu cortex-a72`` (a Pi 4) with Debian bookworm arm64's
  Python 3.11; ``pip install --no-index --find-links wheels/ "mnist-edge-runtime[litert,images,
  serve]"`` resolves every dependency from the folder alone;
* ``pi-bookworm-32``: ``qemu-arm -cpu cortex-a7`` (ARMv7) with Debian bookworm armhf's Python 3.11,
  python3-numpy 1.24 and python3-pil 9.4 (as ``--system-site-packages`` gives them on the device);
  every wheel of the folder is installed, and the runtime's serve dependencies must import;
* ``linux-x86_64``: natively, through the folder's own ``install.sh`` (a virtual environment made
  with this Python, installed from ``wheels/`` with ``--no-index``).

With all 10,000 images (the default) the runtime's own parity verdict must pass: the manifest's
accuracy exactly on ai-edge-litert, within tflite-runtime's tolerance. With ``--images N`` (CI)
the predictions on the first N images are compared with the same interpreter's on this CPU
(identical for ai-edge-litert; within the tolerance for tflite-runtime). Exit 1 on a miss. The
emulator and sysroots are fetched and cached by the scripts beside this one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
from mnist_edge.package import TARGETS  # noqa: E402

TOLERANCE = {"litert": 0.0, "tflite-runtime": 0.0005}  # mnist_edge_runtime.bundle.parity_tolerance, int8
EMULATION = {  # target -> (qemu binary, -cpu, sysroot arch, OpenBLAS core, backend)
    "pi-bookworm-64": ("qemu-aarch64", "cortex-a72", "arm64", "CORTEXA72", "litert"),
    "pi-bookworm-32": ("qemu-arm", "cortex-a7", "armhf", "ARMV7", "tflite-runtime"),
    "linux-x86_64": (None, "native", None, None, "litert"),  # install.sh itself, on this machine
}


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **options)
    if done.returncode not in (0, 1):
        sys.exit(
            f"install_package: {' '.join(map(str, command[:6]))} ... failed ({done.returncode}):\n{done.stderr[-2000:]}"
        )
    return done


def install(target_name: str, folder: Path, site: Path) -> None:
    """The folder's wheels, for the target's platform, into ``site``: offline (``--no-index``)."""
    target = TARGETS[target_name]
    platform = [arg for tag in target.platforms for arg in ("--platform", tag)]
    common = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--only-binary=:all:",
              "--target", str(site), *platform, "--python-version", target.python, "--implementation", "cp",
              "--abi", target.abi]  # fmt: skip
    if target.from_system:  # numpy and Pillow are the system's: every wheel, each without its deps
        wheels = sorted(str(w) for w in (folder / "wheels").glob("*.whl"))
        done = run([*common, "--no-deps", *wheels])
    else:
        done = run([*common, "--find-links", str(folder / "wheels"), f"mnist-edge-runtime[{target.extras}]"])
    if done.returncode != 0:
        sys.exit(f"install_package: {target_name}: offline install failed:\n{done.stderr[-2000:]}")


def installed_eval(folder: Path, images: int, predictions: Path, tmp: Path) -> tuple[list, float]:
    """linux-x86_64: the folder's own install.sh makes a virtual environment, offline; eval runs there."""
    venv = tmp / "venv-linux-x86_64"
    done = subprocess.run(["sh", str(folder / "install.sh"), str(venv)], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable})  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"install_package: install.sh failed:\n{done.stderr[-2000:]}")
    env = {k: v for k, v in os.environ.items() if k != "MNIST_EDGE_BUNDLE"}
    limit = [] if images >= 10_000 else ["--limit", str(images)]
    with tempfile.TemporaryDirectory() as empty:
        started = time.perf_counter()
        done = run([str(venv / "bin/mnist-edge-runtime"), "eval", "--json", "--predictions", str(predictions),
                    *limit], env=env, cwd=empty)  # fmt: skip
    return json.loads(done.stdout), time.perf_counter() - started


def emulated_eval(
    target_name: str, site: Path, images: int, qemu: Path, predictions: Path
) -> tuple[list, float]:
    binary, cpu, arch, openblas, _ = EMULATION[target_name]
    sysroot = Path(run([str(HERE / "build_sysroot.sh"), arch]).stdout.strip()) / "sysroot"
    env = {k: v for k, v in os.environ.items() if k != "MNIST_EDGE_BUNDLE"}
    env |= {"PYTHONPATH": str(site), "OPENBLAS_CORETYPE": openblas}
    python = [str(qemu / binary), "-cpu", cpu, "-L", str(sysroot), str(sysroot / "usr/bin/python3.11")]
    with tempfile.TemporaryDirectory() as empty:
        if target_name == "pi-bookworm-32":  # serve's dependencies and Debian's numpy and Pillow
            code = "import numpy, PIL, starlette, uvicorn, mnist_edge_runtime.serve"
            check = run([*python, "-c", code], env=env, cwd=empty)
            if check.returncode != 0:
                sys.exit(f"install_package: {target_name}: {check.stderr.strip().splitlines()[-1]}")
        limit = [] if images >= 10_000 else ["--limit", str(images)]
        started = time.perf_counter()
        done = run([*python, "-m", "mnist_edge_runtime", "eval", "--json", "--predictions", str(predictions),
                    *limit], env=env, cwd=empty)  # fmt: skip
        seconds = time.perf_counter() - started
    if not done.stdout.strip():
        sys.exit(f"install_package: {target_name}: eval printed nothing:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout), seconds


def native_predictions(python: str, images: int, out: Path) -> dict:
    python = os.path.abspath(python) if os.sep in python else python  # it runs from an empty folder
    env = {k: v for k, v in os.environ.items() if k != "MNIST_EDGE_BUNDLE"}
    limit = [] if images >= 10_000 else ["--limit", str(images)]
    with tempfile.TemporaryDirectory() as empty:
        run(
            [python, "-m", "mnist_edge_runtime", "eval", "--json", "--predictions", str(out), *limit],
            env=env,
            cwd=empty,
        )
    return json.loads(out.read_text())


def markdown(result: dict) -> str:
    lines = [
        "| target | emulated CPU | model | interpreter | images | accuracy | manifest | parity | seconds |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['target']} | {r['emulated_cpu']} | {r['artifact']} | {r['backend']} | {r['images']:,} "
            f"| {r['accuracy']:.2%} | {r['manifest_accuracy']:.2%} | {r['parity']} | {r['seconds']} |"
        )
    lines += ["", f"Emulated on {result['host']} with `python tests/emulation/install_package.py`."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()).replace("`", ""))
    parser.add_argument("--targets", default=",".join(EMULATION), help="comma-separated (default: both)")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--native-litert-python", default=sys.executable, help="for --images < 10000")
    parser.add_argument("--native-tflite-python", help="for --images < 10000 with pi-bookworm-32")
    parser.add_argument(
        "--toolchain-python", default=sys.executable, help="the Python that runs mnist-edge package"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    qemu = Path(run([str(HERE / "fetch_qemu.sh")]).stdout.strip())
    results, failed = [], False
    with tempfile.TemporaryDirectory() as tmp:
        for target_name in args.targets.split(","):
            folder, site = Path(tmp, target_name), Path(tmp, f"site-{target_name}")
            made = run([args.toolchain_python, "-m", "mnist_edge", "package", "--target", target_name,
                        "--out", str(folder)])  # fmt: skip
            if made.returncode != 0:
                sys.exit(f"install_package: {made.stderr.strip()}")
            predictions = Path(tmp, f"{target_name}.json")
            if EMULATION[target_name][0] is None:
                rows, seconds = installed_eval(folder, args.images, predictions, Path(tmp))
            else:
                install(target_name, folder, site)
                rows, seconds = emulated_eval(target_name, site, args.images, qemu, predictions)
            backend = EMULATION[target_name][4]
            for row in rows:
                row |= {
                    "target": target_name,
                    "emulated_cpu": EMULATION[target_name][1],
                    "seconds": round(seconds, 1),
                }
                failed |= row["backend"] != backend
            if args.images >= 10_000:
                failed |= any(row["parity"] != "pass" for row in rows)
            else:
                native_python = (
                    args.native_litert_python if backend == "litert" else args.native_tflite_python
                )
                if native_python is None:
                    sys.exit(
                        f"install_package: --native-tflite-python is needed for {target_name} with --images"
                    )
                native = native_predictions(
                    native_python, args.images, Path(tmp, f"{target_name}-native.json")
                )
                emulated = json.loads(predictions.read_text())
                for row in rows:
                    differ = sum(
                        a != b
                        for a, b in zip(native[row["artifact"]], emulated[row["artifact"]], strict=True)
                    )
                    allowed = int(TOLERANCE[backend] * args.images + 1e-9)
                    row |= {"differences_from_native": differ, "allowed": allowed}
                    failed |= differ > allowed
            for row in rows:
                print(
                    f"{target_name:15} {row['emulated_cpu']:11} {row['artifact']:20} {row['backend']:15}"
                    f" {row['images']:6} {row['accuracy']:.2%}  manifest {row['manifest_accuracy']:.2%}"
                    f"  parity {row['parity']}"
                    + (
                        f"  differences from native {row['differences_from_native']}/{row['allowed']} allowed"
                        if "differences_from_native" in row
                        else ""
                    )  # fmt: skip
                )
            results += rows
    if args.json:
        from mnist_edge_runtime.machine import describe_machine, one_line

        result = {"images": args.images, "host": one_line(describe_machine()), "rows": results}
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        args.json.with_suffix(".md").write_text(markdown(result))
    print("offline install and parity under emulation: " + ("FAILED" if failed else "pass"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
