"""``mnist-edge package``: an offline installation of the runtime for one kind of device.

A target is data (``TARGETS``): the operating system, CPU, Python version and pip platform tags of
a device, the runtime extras it gets, and what its system provides instead of PyPI (32-bit
Raspberry Pi OS: PyPI has no armv7l numpy or Pillow at all, so they come from Debian's
``python3-numpy`` and ``python3-pil`` through ``--system-site-packages``). ``build_package``
writes, into a new folder:

* ``wheels/``: the runtime built with the chosen bundle inside (``mnist_edge.packaged``), and
  every wheel it needs for that platform and Python, fetched with pip's platform options;
* ``install.sh``: makes a virtual environment and installs from ``wheels/`` with ``--no-index``
  (nothing downloaded), then prints the runtime's version;
* ``README.txt``: what to copy, the commands to run, how to check parity, how to run ``serve``
  as a service.

The folder is built beside the destination and renamed into place, so an interrupted run leaves
nothing half-made, and a folder that exists already is never touched.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mnist_edge import packaged
from mnist_edge.errors import UserError

RUNTIME = packaged.ROOT / "runtime"
# pip does not widen --platform to older glibc tags by itself: every manylinux tag up to the OS's glibc.
_MANYLINUX = ("2014", "_2_17", "_2_24", "_2_26", "_2_27", "_2_28", "_2_31", "_2_34", "_2_35", "_2_36")


def _manylinux(machine: str, newest: str = "_2_36") -> tuple[str, ...]:
    tags = _MANYLINUX[: _MANYLINUX.index(newest) + 1]
    return tuple(f"manylinux{tag}_{machine}" for tag in tags)


@dataclass(frozen=True)
class Target:
    name: str
    system: str  # in words, for the README and errors
    machine: str
    python: str  # "3.11": the system Python of that OS
    platforms: tuple[str, ...]  # pip --platform tags
    extras: str  # the runtime's extras installed there
    from_system: tuple[str, ...] = ()  # projects the OS provides (Debian packages), not wheels
    debian_packages: tuple[str, ...] = ()  # to apt install first, for from_system

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")


TARGETS = {
    t.name: t
    for t in (
        Target("pi-bookworm-64", "Raspberry Pi OS Bookworm 64-bit", "aarch64", "3.11",
               _manylinux("aarch64"), "litert,images,serve"),
        Target("pi-trixie-64", "Raspberry Pi OS Trixie 64-bit", "aarch64", "3.13",
               _manylinux("aarch64") + ("manylinux_2_39_aarch64", "manylinux_2_41_aarch64"), "litert,images,serve"),
        Target("pi-bookworm-32", "Raspberry Pi OS Bookworm 32-bit (ARMv7: Pi 2, 3, 4, 5, Zero 2 W)", "armv7l", "3.11",
               ("manylinux_2_34_armv7l", "linux_armv7l"), "tflite,images,serve",
               from_system=("numpy", "pillow"), debian_packages=("python3-numpy", "python3-pil", "python3-venv")),
        Target("linux-x86_64", "Linux x86_64 (glibc 2.28 or later)", "x86_64", "3.11",
               _manylinux("x86_64", "_2_28"), "litert,images,serve"),
    )
}  # fmt: skip


def runtime_requirements(target: Target) -> list[str]:
    """The runtime's requirements with the target's extras, for the target's Python (markers
    evaluated), less what its system provides. Read from runtime/pyproject.toml: one source."""
    # pip's own copies where the libraries are not installed: `python3 -m mnist_edge.package` runs
    # from a checkout with nothing but Python and pip.
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            from pip._vendor import tomli as tomllib
    try:
        from packaging.requirements import Requirement
    except ImportError:
        from pip._vendor.packaging.requirements import Requirement

    project = tomllib.loads((RUNTIME / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in target.extras.split(","):
        wanted += project["optional-dependencies"][extra]
    environment = {"python_version": target.python, "python_full_version": target.python + ".0",
                   "platform_machine": target.machine, "sys_platform": "linux", "extra": ""}  # fmt: skip
    kept: dict[str, str] = {}
    for line in wanted:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        name = requirement.name.lower()
        if name in target.from_system:
            continue
        requirement.marker = None
        kept[name] = f"{kept[name]},{requirement.specifier}" if name in kept else str(requirement)
    return list(kept.values())


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)


def _missing_package(stderr: str) -> str:
    found = re.search(r"No matching distribution found for ([^\s]+)", stderr) or re.search(
        r"Could not find a version that satisfies the requirement ([^\s]+)", stderr
    )
    return found.group(1) if found else stderr.strip().splitlines()[-1] if stderr.strip() else "?"


def build_runtime_wheel(bundle: Path, wheels: Path) -> Path:
    """The runtime's wheel with ``bundle``'s int8 models and the MNIST test set inside."""
    with tempfile.TemporaryDirectory(prefix="mnist-edge-runtime-") as tmp:
        source = Path(tmp) / "runtime"
        shutil.copytree(
            RUNTIME, source,
            ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "tests", ".pytest_cache"),
        )  # fmt: skip
        shutil.rmtree(source / "mnist_edge_runtime" / "bundle", ignore_errors=True)
        packaged.write(source / "mnist_edge_runtime" / "bundle", bundle)
        done = _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(source))
        if done.returncode != 0:
            raise UserError(f"building the runtime's wheel failed: {_missing_package(done.stderr)}")
    return next(wheels.glob("mnist_edge_runtime-*.whl"))


# Interpreter wheels built against numpy: where the system provides numpy, they are fetched alone.
NUMPY_USERS = ("tflite-runtime", "ai-edge-litert", "onnxruntime")


def download_wheels(target: Target, wheels: Path) -> None:
    """Every wheel the runtime needs on ``target``, or a UserError naming the one that is missing."""
    platform = [f"--platform={tag}" for tag in target.platforms]
    common = ["download", "--quiet", "--only-binary=:all:", "--dest", str(wheels), *platform,
              "--python-version", target.python, "--implementation", "cp", "--abi", target.abi, "--abi", "abi3",
              "--abi", "none"]  # fmt: skip
    requirements = runtime_requirements(target)
    alone = [r for r in requirements if target.from_system and r.lower().startswith(NUMPY_USERS)]
    together = [r for r in requirements if r not in alone]
    for group, options in ((together, []), (alone, ["--no-deps"])):
        if not group:
            continue
        done = _pip(*common, *options, *group)
        if done.returncode != 0:
            raise UserError(
                f"{target.name}: no wheel of {_missing_package(done.stderr)} for {target.machine} "
                f"Python {target.python} ({target.system})"
            )


INSTALL_SH = """\
#!/bin/sh
# Offline install of mnist-edge-runtime for {system} ({machine}, Python {python}).
# Nothing is downloaded: every wheel is in wheels/ beside this script.
#   sh install.sh [VENV]     (default VENV: ~/mnist-edge; PYTHON=... to choose the interpreter)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${{1:-"$HOME/mnist-edge"}}
python=${{PYTHON:-python3}}
have=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || {{
    echo "install.sh: no $python here" >&2; exit 2; }}
if [ "$have" != "{python}" ]; then
    echo "install.sh: this package is for Python {python} ({system}); $python is $have" >&2; exit 2
fi
{system_check}if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ]; then
    echo "install.sh: $venv exists and is not a virtual environment; name another folder" >&2; exit 2
fi
"$python" -m venv {venv_options}"$venv" || {{
    echo "install.sh: cannot make a virtual environment (sudo apt install python3-venv)" >&2; exit 2; }}
"$venv/bin/python" -m pip install --quiet --no-index --find-links "$here/wheels" "mnist-edge-runtime[{extras}]"
"$venv/bin/mnist-edge-runtime" --version
echo "installed: $venv/bin/mnist-edge-runtime   (parity check: $venv/bin/mnist-edge-runtime eval)"
"""

SYSTEM_CHECK = """\
"$python" -c 'import numpy, PIL' 2>/dev/null || {{
    echo "install.sh: needs Debian's numpy and Pillow: sudo apt install {packages}" >&2; exit 2; }}
"""

README_TXT = """\
mnist-edge-runtime, offline installation for {system}
{rule}

Target {name}: {machine}, Python {python}. Runtime {runtime} with its bundle inside
({bundle}). Nothing is downloaded on the device.

1. Copy this whole folder to the device (scp -r, a USB stick, ...).
{system_step}2. On the device, in the folder:

       sh install.sh                # makes ~/mnist-edge (or: sh install.sh /opt/mnist-edge)

3. Check parity, on the device, from any folder (the models and the 10,000 MNIST test images
   are in the package; exit 1 if an accuracy differs from the manifest's):

       ~/mnist-edge/bin/mnist-edge-runtime eval

4. Recognize a digit:

       ~/mnist-edge/bin/mnist-edge-runtime predict digit.jpg
       ~/mnist-edge/bin/mnist-edge-runtime serve --host 0.0.0.0   # then open http://<device>.local:8000/

Run serve as a service (starts at boot, restarts on failure, memory capped, no root):

       ~/mnist-edge/bin/mnist-edge-runtime serve --host 0.0.0.0 --systemd-unit \\
           | sudo tee /etc/systemd/system/mnist-edge.service
       sudo systemctl daemon-reload && sudo systemctl enable --now mnist-edge

Wheels ({count}):
{wheel_list}
"""


def build_package(
    target_name: str, bundle: Path, out: Path, on_step: Callable[[str], None] = lambda step: None
) -> list[Path]:
    """Write the offline installation for ``target_name`` into ``out`` (a new folder); its wheels."""
    target = TARGETS.get(target_name)
    if target is None:
        raise UserError(f"unknown target {target_name!r}; choose one of: {', '.join(TARGETS)}")
    if out.exists():
        raise UserError(f"{out}: already exists; name a new folder (nothing was changed)")
    if not (bundle / "manifest.json").is_file():
        raise UserError(f"{bundle}: no manifest.json (is it an export bundle? run mnist-edge export)")
    try:
        packaged.packaged_files(bundle)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        wheels = staging / "wheels"
        wheels.mkdir()
        on_step("building the runtime's wheel with the bundle inside")
        runtime = build_runtime_wheel(bundle, wheels)
        on_step(f"fetching the wheels for {target.machine} Python {target.python}")
        download_wheels(target, wheels)
        files = sorted(wheels.glob("*.whl"))
        _write_scripts(target, staging, runtime, bundle, files)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / "wheels" / f.name for f in files]


def _write_scripts(target: Target, folder: Path, runtime: Path, bundle: Path, wheels: list[Path]) -> None:
    import hashlib

    system_check = (
        SYSTEM_CHECK.format(packages=" ".join(target.debian_packages)) if target.from_system else ""
    )
    install = folder / "install.sh"
    install.write_text(
        INSTALL_SH.format(
            system=target.system, machine=target.machine, python=target.python, extras=target.extras,
            system_check=system_check,
            venv_options="--system-site-packages " if target.from_system else "",
        )
    )  # fmt: skip
    install.chmod(0o755)
    # The hash `mnist-edge-runtime --version` prints: the packaged manifest's.
    manifest_hash = hashlib.sha256(packaged.packaged_files(bundle)["manifest.json"]).hexdigest()[:12]
    system_step = (
        f"   First, with the internet or from a Debian mirror: sudo apt install {' '.join(target.debian_packages)}\n"
        f"   (PyPI has no {target.machine} wheel of {' or '.join(target.from_system)}: the system's are used.)\n"
        if target.from_system
        else ""
    )
    title = f"mnist-edge-runtime, offline installation for {target.system}"
    (folder / "README.txt").write_text(
        README_TXT.format(
            system=target.system, rule="=" * len(title), name=target.name, machine=target.machine,
            python=target.python, runtime=runtime.name.split("-")[1],
            bundle=f"manifest {manifest_hash}: {', '.join(packaged.PACKAGED_MODELS)}",
            system_step=system_step, count=len(wheels), wheel_list="\n".join(f"  {w.name}" for w in wheels),
        )
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """``python3 -m mnist_edge.package``: the same as ``mnist-edge package``, from a checkout of this
    repository with nothing but Python and pip (no TensorFlow)."""
    import argparse

    class OneLineParser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # one line and exit 2, no usage block
            sys.stderr.write(f"mnist_edge.package: error: {message}\n")
            raise SystemExit(2)

    parser = OneLineParser(
        prog="python3 -m mnist_edge.package",
        description="Write an offline installation of the runtime for one device: wheels/, install.sh "
        "and README.txt (the same as mnist-edge package, from a checkout of this repository with "
        "nothing but Python and pip, no TensorFlow). Exit codes: 0 written, 2 usage error, missing "
        "bundle, folder exists, or a wheel the target needs does not exist.",
    )
    parser.add_argument(
        "--target", required=True, choices=list(TARGETS), help="the device's OS, CPU and Python"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="a new folder for wheels/, install.sh, README.txt"
    )
    parser.add_argument(
        "--bundle", type=Path, default=packaged.EXPORT, help="the export bundle (default: export/)"
    )
    args = parser.parse_args(argv)
    try:
        wheels = build_package(
            args.target, args.bundle, args.out, on_step=lambda step: print(step, file=sys.stderr)
        )
    except UserError as exc:
        print(f"mnist_edge.package: error: {exc}", file=sys.stderr)
        return exc.exit_code
    size = sum(w.stat().st_size for w in wheels) / 1e6
    print(
        f"{args.out}/: {len(wheels)} wheels ({size:.1f} MB), install.sh, README.txt for {TARGETS[args.target].system}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
