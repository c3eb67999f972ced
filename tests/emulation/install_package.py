"""`mnist-edge package` proven the way a device installs it: each package's own install.sh, offline, on the target's CPU and Python (emulated Raspberry Pis), with an upgrade.

    python tests/emulation/install_package.py [--targets pi-bookworm-64,pi-bookworm-32,linux-x86_64,pi-trixie-64]
        [--images N] [--native-litert-python P1] [--native-tflite-python P2] [--json FILE]

Each target's package is built once (``python -m mnist_edge package``). Then:

* ``pi-bookworm-64`` and ``pi-bookworm-32``: the package's ``install.sh`` itself runs with
  ``PYTHON=`` Debian bookworm's ``python3.11`` for arm64 (``qemu-aarch64 -cpu cortex-a72``, a
  Pi 4) or armhf (``qemu-arm -cpu cortex-a7``, 32-bit Raspberry Pi OS on ARMv7, with
  python3-numpy 1.24 and python3-pil 9.4): a virtual environment with
  ``--system-site-packages`` on 32-bit, the wheels installed by the package's pip with their
  hashes, and install.sh's own check, ``mnist-edge-runtime eval`` on all 10,000 images. The
  emulator runs every ARM program the script starts, as the kernel would on a Pi: a
  ``binfmt_misc`` entry for ARM ELF files in a user namespace of this process's own (Linux 6.7
  or later; nothing of the host's changes). Then serve's dependencies must import and ``pip
  check`` must find every requirement met, on the emulated CPU;
* ``linux-x86_64``, natively: an upgrade. The previous package (the same runtime with another
  bundle) installed the way the earlier install.sh did (the folder itself a virtual
  environment), a file of the user's in the folder, then the new package's install.sh run with
  a hostile environment (``PIP_FIND_LINKS`` to a folder with a doctored ``idna`` wheel,
  ``PIP_INDEX_URL``, ``PIP_TARGET``, pip configuration files of the user's and of the system's
  (``XDG_CONFIG_DIRS``) naming them, ``PYTHONPATH``, an exported ``CDPATH``, a umask of 077):
  it must print the old and the new bundle, install the package's ``idna``, send nothing
  elsewhere and keep the user's file. A copy with one damaged wheel is refused in one line with
  the installation unchanged, the same package again switches to a new environment, and the
  32-bit package is refused on this CPU in one line;
* ``pi-trixie-64``: built, and its wheels resolved by pip for Python 3.13 on aarch64 with no
  index (every requirement met by the package's wheels, none left over), as for the other
  64-bit targets.

With ``--images N`` below 10,000 (CI), the predictions of the first N images in each installed
runtime are compared with the same interpreter's on this CPU (identical for ai-edge-litert;
within the tolerance for tflite-runtime), and the emulated Pi 4's install.sh checks itself on
those N images (``--check-images N``: all 10,000 take minutes under emulation); the others check
all 10,000. Exit 1 on any miss. The emulator and the sysroots are
fetched and cached by the scripts beside this one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # one-line errors, as the benchmarks give
from script_parser import script_parser  # noqa: E402

sys.path.insert(0, str(REPO))
from mnist_edge.package import TARGETS  # noqa: E402

TOLERANCE = {"litert": 0.0, "tflite-runtime": 0.0005}  # mnist_edge_runtime.bundle.parity_tolerance, int8
EMULATION = {  # target -> (qemu binary, -cpu, sysroot arch, backend); None: natively
    "pi-bookworm-64": ("qemu-aarch64", "cortex-a72", "arm64", "litert"),
    "pi-bookworm-32": ("qemu-arm", "cortex-a7", "armhf", "tflite-runtime"),
    "linux-x86_64": (None, "native", None, "litert"),
    "pi-trixie-64": (None, None, None, None),  # built and resolved
}
# binfmt_misc's magic and mask for ELF executables and shared objects of each ARM architecture
ELF = {
    "qemu-arm": (
        r"\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00",
        r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
    "qemu-aarch64": (
        r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00",
        r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
}
# Mounts binfmt_misc in the new user and mount namespace, registers the ARM ELF entry, runs the rest.
BINFMT = r"""set -eu
mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
printf '%s' ":mnist-edge:M::$1:$2:$3:" > /proc/sys/fs/binfmt_misc/register
shift 3
exec "$@"
"""
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home()), "LC_ALL": "C.UTF-8"}


def run(command: list[str], codes: tuple[int, ...] = (0, 1), **options) -> subprocess.CompletedProcess:
    """The command's result; exit (this script's failure) on an exit code not in ``codes``."""
    done = subprocess.run(command, capture_output=True, text=True, **options)
    if done.returncode not in codes:
        sys.exit(
            f"install_package: {' '.join(map(str, command[:6]))} ... failed ({done.returncode}):\n"
            f"{done.stdout[-1500:]}{done.stderr[-2000:]}"
        )
    return done


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"install_package: {message}")


def install(target_name: str, folder: Path, site: Path) -> None:
    """The folder's wheels, for the target's platform, into ``site``: offline (``--no-index``).
    (``package_sizes.py`` measures what a package installs with it.)"""
    target = TARGETS[target_name]
    platform = [arg for tag in target.platforms for arg in ("--platform", tag)]
    common = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--only-binary=:all:",
              "--target", str(site), *platform, "--python-version", target.python, "--implementation", "cp",
              "--abi", target.abi]  # fmt: skip
    if target.from_system:  # numpy and Pillow are the system's: every wheel, each without its deps
        wheels = sorted(str(w) for w in (folder / "wheels").glob("*.whl"))
        done = run([*common, "--no-deps", *wheels], env=CLEAN_ENV | {"PIP_CONFIG_FILE": os.devnull})
    else:
        done = run([*common, "--find-links", str(folder / "wheels"), f"mnist-edge-runtime[{target.extras}]"],
                   env=CLEAN_ENV | {"PIP_CONFIG_FILE": os.devnull})  # fmt: skip
    check(done.returncode == 0, f"{target_name}: offline install failed:\n{done.stderr[-2000:]}")


def resolve(target_name: str, folder: Path, tmp: Path) -> str:
    """pip's resolver on the package's wheels alone, for the target's Python and platform: every
    requirement of the runtime met, every wheel used (install.sh installs them with --no-deps)."""
    target = TARGETS[target_name]
    platform = [arg for tag in target.platforms for arg in ("--platform", tag)]
    report = tmp / f"{target_name}-resolved.json"
    done = run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed", "--no-index",
                "--only-binary=:all:", "--target", str(tmp / "never"), *platform, "--python-version", target.python,
                "--implementation", "cp", "--abi", target.abi, "--find-links", str(folder / "wheels"),
                "--report", str(report), f"mnist-edge-runtime[{target.extras}]"],
               env=CLEAN_ENV | {"PIP_CONFIG_FILE": os.devnull})  # fmt: skip
    check(done.returncode == 0, f"{target_name}: the package's wheels do not resolve:\n{done.stderr[-2000:]}")
    resolved = {Path(item["download_info"]["url"]).name for item in json.loads(report.read_text())["install"]}
    present = {p.name for p in (folder / "wheels").glob("*.whl")}
    check(
        resolved == present, f"{target_name}: resolved {sorted(resolved ^ present)} differently from wheels/"
    )
    return f"{len(resolved)} wheels resolve for Python {target.python} on {target.machine}"


def checksums_hold(folder: Path) -> None:
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        check(
            hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest,
            f"{folder.name}: {name} differs",
        )


class Emulated:
    """Runs commands with every ARM program of the target executed by qemu-user, as a Pi's kernel
    would run it: a binfmt_misc entry in a user and mount namespace of the command's own."""

    def __init__(self, target_name: str, qemu: Path, tmp: Path) -> None:
        binary, cpu, arch, _ = EMULATION[target_name]
        self.sysroot = Path(run([str(HERE / "build_sysroot.sh"), arch]).stdout.strip()) / "sysroot"
        self.python = self.sysroot / "usr" / "bin" / "python3.11"
        tmp.mkdir(parents=True, exist_ok=True)
        self.interpreter = tmp / f"{binary}-{cpu}"
        self.interpreter.write_text(
            f'#!/bin/sh\nexec "{qemu / binary}" -cpu {cpu} -L "{self.sysroot}" "$@"\n'
        )
        self.interpreter.chmod(0o755)
        self.binfmt = tmp / "binfmt.sh"
        self.binfmt.write_text(BINFMT)
        self.magic, self.mask = ELF[binary]

    def __call__(
        self, command: list[str], env: dict[str, str], cwd: Path | None = None
    ) -> subprocess.CompletedProcess:
        wrapped = ["unshare", "--user", "--map-root-user", "--mount", "--fork", "sh", str(self.binfmt),
                   self.magic, self.mask, str(self.interpreter), *command]  # fmt: skip
        done = subprocess.run(wrapped, capture_output=True, text=True, env=env, cwd=cwd)
        if done.returncode != 0 and ("unshare:" in done.stderr or "/proc/sys/fs/binfmt_misc" in done.stderr):
            sys.exit(
                "install_package: running ARM programs needs a user namespace with its own binfmt_misc "
                f"(Linux 6.7 or later, unprivileged user namespaces allowed):\n{done.stderr.strip()}"
            )
        return done


def emulated_target(target_name: str, folder: Path, qemu: Path, tmp: Path, images: int) -> dict:
    """install.sh on the emulated Pi, then serve's imports and pip check there, then eval."""
    emulated = Emulated(target_name, qemu, tmp / target_name)
    place = tmp / f"installed-{target_name}"
    started = time.perf_counter()
    # The 64-bit Pi's check on all 10,000 images takes minutes under emulation: in CI (--images),
    # install.sh's own --check-images on as many as are compared with the native run.
    quick = ["--check-images", str(images)] if images < 10_000 and target_name == "pi-bookworm-64" else []
    done = emulated(
        ["sh", str(folder / "install.sh"), *quick, str(place)],
        env=CLEAN_ENV | {"PYTHON": str(emulated.python)},
    )
    install_seconds = time.perf_counter() - started
    check(
        done.returncode == 0,
        f"{target_name}: install.sh failed ({done.returncode}):\n{done.stdout}{done.stderr}",
    )
    check("installed: mnist-edge-runtime" in done.stdout, f"{target_name}: install.sh said:\n{done.stdout}")
    python = str(place / "bin" / "python")
    imports = emulated(
        [python, "-c", "import numpy, PIL, starlette, uvicorn, mnist_edge_runtime.serve"], env=CLEAN_ENV
    )
    check(imports.returncode == 0, f"{target_name}: serve's dependencies: {imports.stderr.strip()[-500:]}")
    (pip,) = folder.glob("pip-*.whl")
    pip_check = emulated(
        [python, "-I", f"{pip}/pip", "check"], env=CLEAN_ENV | {"PIP_CONFIG_FILE": os.devnull}
    )
    check(pip_check.returncode == 0, f"{target_name}: pip check:\n{pip_check.stdout}{pip_check.stderr}")
    return {
        "place": place,
        "install_seconds": install_seconds,
        "eval": lambda cmd: emulated(cmd, env=CLEAN_ENV, cwd=tmp),
    }


def doctored_idna(folder: Path) -> None:
    """A wheel named as a newer idna whose code says it is not the package's."""
    with zipfile.ZipFile(folder / "idna-99.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("idna/__init__.py", "DOCTORED = True\n")
        wheel.writestr("idna-99.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: idna\nVersion: 99.0\n")
        wheel.writestr(
            "idna-99.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr("idna-99.0.dist-info/RECORD", "")


def native_upgrade(folder: Path, previous: Path, pi32: Path | None, tmp: Path) -> dict:
    """linux-x86_64: the previous package installed the earlier way, upgraded by the new one's
    install.sh in a hostile environment; a damaged copy refused; the same package again; the
    32-bit package refused on this CPU."""
    place = tmp / "installed-linux-x86_64"
    clean = CLEAN_ENV | {"PIP_CONFIG_FILE": os.devnull}
    # The earlier install.sh: the folder itself the virtual environment, pip from ensurepip.
    run([sys.executable, "-m", "venv", str(place)], env=clean)
    extras = TARGETS["linux-x86_64"].extras
    done = run([str(place / "bin/python"), "-m", "pip", "install", "--quiet", "--no-index", "--find-links",
                str(previous / "wheels"), f"mnist-edge-runtime[{extras}]"], env=clean)  # fmt: skip
    check(done.returncode == 0, f"the previous package's install failed:\n{done.stderr[-2000:]}")
    old_version = (
        run([str(place / "bin/mnist-edge-runtime"), "--version"], env=clean).stdout.split(",")[1].split()[1]
    )
    (place / "my-digit.txt").write_text("the user's\n")

    evil = tmp / "evil"
    (evil / "links").mkdir(parents=True)
    doctored_idna(evil / "links")
    (evil / "pip").mkdir()
    (evil / "pip" / "pip.conf").write_text(f"[global]\nfind-links = {evil / 'links'}\nno-index = false\n"
                                         f"[install]\ntarget = {evil / 'target'}\n")  # fmt: skip
    home = tmp / "home"
    (home / ".config" / "pip").mkdir(parents=True)
    shutil.copy(evil / "pip" / "pip.conf", home / ".config" / "pip" / "pip.conf")
    decoy = tmp / "cdpath"
    (decoy / folder.name).mkdir(parents=True)  # where an exported CDPATH would lead `cd <name>`
    hostile = {**CLEAN_ENV, "HOME": str(home), "PYTHON": sys.executable, "CDPATH": str(decoy),
               "PIP_FIND_LINKS": str(evil / "links"), "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
               "PIP_NO_INDEX": "false", "PIP_TARGET": str(evil / "target"), "PIP_CONFIG_FILE": str(evil / "pip" / "pip.conf"),
               "XDG_CONFIG_DIRS": str(evil), "PYTHONPATH": str(evil), "VIRTUAL_ENV": str(evil)}  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(["sh", "-c", f'umask 077 && exec sh "{folder.name}/install.sh" "{place}"'],
                          cwd=folder.parent, env=hostile, capture_output=True, text=True)  # fmt: skip
    install_seconds = time.perf_counter() - started
    check(done.returncode == 0, f"the upgrade failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    new_version = (
        run([str(place / "bin/mnist-edge-runtime"), "--version"], env=clean).stdout.split(",")[1].split()[1]
    )
    check(old_version != new_version, f"the upgrade kept bundle {old_version}")
    check(f"(bundle {old_version}) -> " in done.stdout and f"(bundle {new_version}) in {place}" in done.stdout,
          f"the upgrade did not say what changed:\n{done.stdout}")  # fmt: skip
    idna = run([str(place / "bin/python"), "-c", "import idna, importlib.metadata as m; "
                "print(m.version('idna'), hasattr(idna, 'DOCTORED'))"], env=clean).stdout.split()  # fmt: skip
    packaged_idna = next((folder / "wheels").glob("idna-*.whl")).name.split("-")[1]
    check(idna == [packaged_idna, "False"], f"idna installed: {idna}, the package's: {packaged_idna}")
    check(not (evil / "target").exists(), "something was installed into PIP_TARGET")
    check((place / "my-digit.txt").read_text() == "the user's\n", "the user's file changed")
    check(stat_mode(place / ".envs" / "current" / "lib") & 0o055 == 0o055, "umask 077 hid the installation")

    damaged = tmp / "damaged"
    shutil.copytree(folder, damaged)
    wheel = next((damaged / "wheels").glob("mnist_edge_runtime-*.whl"))
    content = bytearray(wheel.read_bytes())
    content[len(content) // 2] ^= 0xFF  # one byte of a compressed member
    wheel.write_bytes(bytes(content))
    done = run(
        ["sh", str(damaged / "install.sh"), str(place)], (2,), env=CLEAN_ENV | {"PYTHON": sys.executable}
    )
    check(done.returncode == 2 and done.stderr.count("\n") == 1 and f"wheels/{wheel.name}: damaged" in done.stderr,
          f"a damaged wheel: {done.returncode} {done.stderr}")  # fmt: skip
    check(new_version in run([str(place / "bin/mnist-edge-runtime"), "--version"], env=clean).stdout,
          "a refused package changed the installation")  # fmt: skip

    done = run(["sh", str(folder / "install.sh"), str(place)], env=CLEAN_ENV | {"PYTHON": sys.executable})
    check(
        done.returncode == 0 and "reinstalled: " in done.stdout,
        f"the same package again:\n{done.stdout}{done.stderr}",
    )
    kept = sorted(p.name for p in (place / ".envs").iterdir())
    check(len(kept) == 3, f"kept in .envs: {kept} (current, the one in use, the one before)")
    check(sorted(p.name for p in place.iterdir()) == [".envs", "bin", "include", "lib", "lib64", "my-digit.txt",
                                                    "pyvenv.cfg"], f"{place}: {sorted(p.name for p in place.iterdir())}")  # fmt: skip

    if pi32 is not None:
        done = run(
            ["sh", str(pi32 / "install.sh"), str(tmp / "never")],
            (2,),
            env=CLEAN_ENV | {"PYTHON": sys.executable},
        )
        check(done.returncode == 2 and done.stderr.count("\n") == 1 and "this package is for" in done.stderr
              and not (tmp / "never").exists(), f"the 32-bit package on x86_64: {done.stderr}")  # fmt: skip
    return {
        "place": place,
        "install_seconds": install_seconds,
        "eval": lambda cmd: run(cmd, env=CLEAN_ENV, cwd=tmp),
    }


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def native_predictions(python: str, images: int, out: Path) -> dict:
    python = os.path.abspath(python) if os.sep in python else python  # it runs from an empty folder
    with tempfile.TemporaryDirectory() as empty:
        run([python, "-m", "mnist_edge_runtime", "eval", "--json", "--predictions", str(out), "--limit", str(images)],
            env=CLEAN_ENV, cwd=empty)  # fmt: skip
    return json.loads(out.read_text())


def markdown(result: dict) -> str:
    lines = [
        "| target | emulated CPU | model | interpreter | images | accuracy | manifest | parity | install.sh (s) | eval (s) |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['target']} | {r['emulated_cpu']} | {r['artifact']} | {r['backend']} | {r['images']:,} "
            f"| {r['accuracy']:.2%} | {r['manifest_accuracy']:.2%} | {r['parity']} | {r['install_seconds']} "
            f"| {r['seconds']} |"
        )
    lines += ["", f"On {result['host']} with `python tests/emulation/install_package.py`; install.sh's time "
              "includes its own check (eval on all 10,000 images)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--targets", default=",".join(EMULATION), help="comma-separated (default: all four)")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--native-litert-python", default=sys.executable, help="for --images < 10000")
    parser.add_argument("--native-tflite-python", help="for --images < 10000 with pi-bookworm-32")
    parser.add_argument(
        "--toolchain-python", default=sys.executable, help="the Python that runs mnist-edge package"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    targets = args.targets.split(",")
    unknown = [t for t in targets if t not in EMULATION]
    if unknown:
        parser.error(f"unknown target {unknown[0]}; choose from {', '.join(EMULATION)}")
    if args.images < 10_000 and "pi-bookworm-32" in targets and args.native_tflite_python is None:
        parser.error("--native-tflite-python is needed for pi-bookworm-32 with --images")
    qemu = Path(run([str(HERE / "fetch_qemu.sh")]).stdout.strip())
    results, failed = [], False
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)

        def build(name: str, target_name: str, bundle: Path | None = None) -> Path:
            folder = tmp / "packages" / name
            more = ["--bundle", str(bundle)] if bundle else []
            made = run([args.toolchain_python, "-m", "mnist_edge", "package", "--target", target_name,
                        "--out", str(folder), *more], cwd=REPO)  # fmt: skip
            check(made.returncode == 0, made.stderr.strip())
            checksums_hold(folder)
            return folder

        folders = {t: build(t, t) for t in targets}
        for t in targets:
            if not TARGETS[t].from_system:
                print(f"{t:15} {resolve(t, folders[t], tmp)}")
        with ThreadPoolExecutor(max_workers=2) as pool:
            jobs = {t: pool.submit(emulated_target, t, folders[t], qemu, tmp, args.images)
                    for t in targets if EMULATION[t][0]}  # fmt: skip
            installed = {}
            if "linux-x86_64" in targets:
                previous_bundle = tmp / "previous-bundle"  # the same models, another manifest: another bundle
                previous_bundle.mkdir()
                for name in ("conv2d.int8.tflite", "flat.int8.tflite"):
                    shutil.copy(REPO / "export" / name, previous_bundle / name)
                manifest = json.loads((REPO / "export" / "manifest.json").read_text())
                (previous_bundle / "manifest.json").write_text(
                    json.dumps({**manifest, "note": "previous"}, indent=2)
                )
                previous = build("previous-linux-x86_64", "linux-x86_64", previous_bundle)
                installed["linux-x86_64"] = native_upgrade(
                    folders["linux-x86_64"], previous, folders.get("pi-bookworm-32"), tmp
                )
            installed |= {t: job.result() for t, job in jobs.items()}
        for target_name, result in installed.items():
            backend = EMULATION[target_name][3]
            predictions = tmp / f"{target_name}-predictions.json"
            limit = [] if args.images >= 10_000 else ["--limit", str(args.images)]
            started = time.perf_counter()
            done = result["eval"]([str(result["place"] / "bin" / "mnist-edge-runtime"), "eval", "--json",
                                   "--predictions", str(predictions), *limit])  # fmt: skip
            seconds = time.perf_counter() - started
            check(done.stdout.strip() != "", f"{target_name}: eval printed nothing:\n{done.stderr[-2000:]}")
            rows = json.loads(done.stdout)
            for row in rows:
                row |= {"target": target_name, "emulated_cpu": EMULATION[target_name][1], "seconds": round(seconds, 1),
                        "install_seconds": round(result["install_seconds"], 1)}  # fmt: skip
                failed |= row["backend"] != backend
            if args.images >= 10_000:
                failed |= any(row["parity"] != "pass" for row in rows)
            else:
                native_python = (
                    args.native_litert_python if backend == "litert" else args.native_tflite_python
                )
                native = native_predictions(native_python, args.images, tmp / f"{target_name}-native.json")
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
                    f"  parity {row['parity']}  install.sh {row['install_seconds']} s"
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
    print(
        "offline packages installed by their install.sh, upgraded, parity: "
        + ("FAILED" if failed else "pass")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
