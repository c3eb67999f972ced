"""``mnist-edge package``: the folder it writes, the folder it refuses, and every branch of the
install.sh it writes, run here with a stand-in ``python3`` (no real wheels, nothing downloaded):
the package's checks (SHA256SUMS, CPU, Python), the folder it installs into (new, an earlier
installation of either layout, someone else's), an upgrade that keeps the user's files and, when
any step fails, the installed version, and pip run with nothing from the caller's environment."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mnist_edge import package, packaged
from mnist_edge.cli import app

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "export"

# The device's python3, told what it is by the file @CONF@ (install.sh runs it with no variable
# of the caller's): its version, CPU and word size, the modules `-c 'import ...'` does not find
# (FAKE_MISSING), whether venv fails and how (FAKE_VENV_ERROR). Every call is logged, one line
# each. `-m venv` makes a folder with a pyvenv.cfg and the stand-in bin/python below.
FAKE_PYTHON = r"""#!/bin/sh
. '@CONF@'
echo "python3 $*" >> "$FAKE_LOG"
while :; do case $1 in -I | -E | -s) shift ;; *) break ;; esac; done
case $1 in
-c)
    case $2 in
    *version_info*) echo "$FAKE_VERSION $FAKE_MACHINE $FAKE_BITS"; exit 0 ;;
    *os.replace*) exec '@REAL_PYTHON@' -c "$2" "$3" "$4" ;;
    "import "*)
        for module in $(echo "${2#import }" | tr , ' '); do
            case " $FAKE_MISSING " in *" $module "*) exit 1 ;; esac
        done
        exit 0 ;;
    esac
    exit 99 ;;
-m)
    [ "$2" = venv ] || exit 99
    if [ -n "$FAKE_VENV_ERROR" ]; then echo "Error: $FAKE_VENV_ERROR" >&2; exit 1; fi
    for venv; do :; done
    '@MKDIR@' -p "$venv/bin" "$venv/include" "$venv/lib/python3.11/site-packages"
    echo "home = /usr/bin" > "$venv/pyvenv.cfg"
    cp '@VENV_PYTHON@' "$venv/bin/python"
    exit 0 ;;
esac
exit 99
"""

# A virtual environment's python: `python PIP_WHEEL/pip install ...` logs its environment and
# installs with MINI_PIP (FAKE_PIP_ERROR: fails with that message instead).
VENV_PYTHON = r"""#!/bin/sh
. '@CONF@'
echo "venv-python $*" >> "$FAKE_LOG"
[ "$1" = -I ] && shift
case $1 in
*/pip)
    echo "pip-env $(env | LC_ALL=C sort | tr '\n' ' ')" >> "$FAKE_LOG"
    if [ -n "$FAKE_PIP_ERROR" ]; then echo "ERROR: $FAKE_PIP_ERROR" >&2; exit 1; fi
    shift
    exec '@REAL_PYTHON@' '@MINI_PIP@' "$(dirname "$0")/.." "$@" ;;
esac
exit 99
"""

# pip install, as far as install.sh needs it: each requirement `name==version --hash=sha256:H` is
# the wheel of --find-links with that name and version, refused unless its SHA-256 is H; its
# files go to site-packages; the runtime gets a bin/mnist-edge-runtime stand-in.
MINI_PIP = r"""
import hashlib, sys, zipfile
from pathlib import Path

venv, args = Path(sys.argv[1]), sys.argv[2:]
links = Path(args[args.index("--find-links") + 1])
wanted = Path(args[args.index("--requirement") + 1]).read_text().split("\n")
site = venv / "lib" / "python3.11" / "site-packages"
for line in filter(None, wanted):
    pin, digest = line.split(" --hash=sha256:")
    name, version = pin.split("==")
    (wheel,) = links.glob(f"{name}-{version}-*.whl")
    if hashlib.sha256(wheel.read_bytes()).hexdigest() != digest:
        sys.exit("ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.")
    zipfile.ZipFile(wheel).extractall(site)
    if name == "mnist_edge_runtime":
        runtime = venv / "bin" / "mnist-edge-runtime"
        runtime.write_text(RUNTIME.replace("@VERSION@", version))
        runtime.chmod(0o755)
"""

# The runtime: --version, and eval (FAKE_EVAL_FAIL: the parity check fails).
RUNTIME = r"""#!/bin/sh
. '@CONF@'
echo "runtime $*" >> "$FAKE_LOG"
case $1 in
--version) echo "mnist-edge-runtime @VERSION@" ;;
eval)
    if [ -n "$FAKE_EVAL_FAIL" ]; then
        echo "flat.int8.tflite  98.10%  98.99%  FAIL"
        echo "conv2d.int8.tflite  99.48%  99.48%  pass"
        exit 1
    fi
    echo "conv2d.int8.tflite  99.48%  99.48%  pass" ;;
esac
"""

# mkdir and df the way they fail: FAKE_MKDIR_ERROR (the message), FAKE_DF_KB (kB free).
FAKE_MKDIR = r"""#!/bin/sh
. '@CONF@'
if [ -n "$FAKE_MKDIR_ERROR" ]; then
    for last; do :; done
    echo "mkdir: cannot create directory '$last': $FAKE_MKDIR_ERROR" >&2
    exit 1
fi
exec '@MKDIR@' "$@"
"""
FAKE_DF = r"""#!/bin/sh
. '@CONF@'
if [ -n "$FAKE_DF_KB" ]; then
    echo "Filesystem     1024-blocks  Used Available Capacity Mounted on"
    echo "/dev/mmcblk0p2     1000000 999000 $FAKE_DF_KB 99% /"
    exit 0
fi
exec '@DF@' "$@"
"""
DEFAULTS = {
    "FAKE_VERSION": "3.11", "FAKE_MACHINE": "aarch64", "FAKE_BITS": "64", "FAKE_MISSING": "",
    "FAKE_VENV_ERROR": "", "FAKE_PIP_ERROR": "", "FAKE_EVAL_FAIL": "", "FAKE_MKDIR_ERROR": "", "FAKE_DF_KB": "",
}  # fmt: skip
ARMV7 = {"FAKE_MACHINE": "armv7l", "FAKE_BITS": "32"}


def _wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def write_package(
    target: str, out: Path, monkeypatch: pytest.MonkeyPatch, version: str = "9.9", bundle: Path = BUNDLE
) -> list[Path]:
    """``build_package`` with stand-in wheels (the runtime's carries the bundle's real manifest)
    instead of built and downloaded ones: install.sh, README.txt and SHA256SUMS are the real ones."""

    def runtime_wheel(bundle: Path, wheels: Path) -> Path:
        manifest = packaged.packaged_files(bundle)["manifest.json"]
        return _wheel(
            wheels / f"mnist_edge_runtime-{version}-py3-none-any.whl",
            {"mnist_edge_runtime/__init__.py": b"", "mnist_edge_runtime/bundle/manifest.json": manifest,
             f"mnist_edge_runtime-{version}.dist-info/METADATA": f"Version: {version}\n".encode()},
        )  # fmt: skip

    def other_wheels(target: package.Target, wheels: Path) -> None:
        _wheel(wheels / "idna-3.20-py3-none-any.whl", {"idna/__init__.py": b"# the package's idna\n"})

    monkeypatch.setattr(package, "build_runtime_wheel", runtime_wheel)
    monkeypatch.setattr(package, "download_wheels", other_wheels)
    monkeypatch.setattr(
        package,
        "download_pip",
        lambda t, folder: _wheel(folder / "pip-99.0-py3-none-any.whl", {"pip/__main__.py": b""}),
    )
    return package.build_package(target, bundle, out)


def other_bundle(tmp: Path) -> Path:
    """export/'s int8 models with another manifest: another bundle for the same runtime version."""
    bundle = tmp / "retrained"
    bundle.mkdir()
    for name in packaged.PACKAGED_MODELS:
        shutil.copy(BUNDLE / name, bundle / name)
    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps({**manifest, "note": "retrained"}))
    return bundle


def bundle_id(bundle: Path) -> str:
    return hashlib.sha256(packaged.packaged_files(bundle)["manifest.json"]).hexdigest()[:12]


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Package folders, scripts real, wheels stand-ins: the 32-bit one and the 64-bit one (9.9),
    an older 64-bit one (9.8), and 9.9 with another bundle."""
    root = tmp_path_factory.mktemp("packages")
    folders = {
        "pi-bookworm-32": ("pi-bookworm-32", "9.9", BUNDLE),
        "pi-bookworm-64": ("pi-bookworm-64", "9.9", BUNDLE),
        "old": ("pi-bookworm-64", "9.8", BUNDLE),
        "other-bundle": ("pi-bookworm-64", "9.9", other_bundle(root)),
    }
    with pytest.MonkeyPatch.context() as monkeypatch:
        for key, (target, version, bundle) in folders.items():
            write_package(target, root / key, monkeypatch, version, bundle)
    return {key: root / key for key in folders}


class Device:
    """A stand-in device: python3, mkdir and df first on PATH, told what to do by a file."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bin = tmp / "fake-bin"
        self.bin.mkdir()
        self.conf, self.log, self.units = tmp / "fake.conf", tmp / "calls.log", tmp / "units"
        self.units.mkdir()
        self.log.touch()
        self.home = tmp / "home"
        self.home.mkdir()
        fill = {"@CONF@": str(self.conf), "@REAL_PYTHON@": sys.executable, "@MKDIR@": shutil.which("mkdir"),
                "@DF@": shutil.which("df"), "@VENV_PYTHON@": str(tmp / "venv-python"),
                "@MINI_PIP@": str(tmp / "mini_pip.py")}  # fmt: skip

        def write(path: Path, text: str) -> None:
            for key, value in fill.items():
                text = text.replace(key, value)
            path.write_text(text)
            path.chmod(path.stat().st_mode | stat.S_IXUSR)

        write(self.bin / "python3", FAKE_PYTHON)
        write(self.bin / "mkdir", FAKE_MKDIR)
        write(self.bin / "df", FAKE_DF)
        write(tmp / "venv-python", VENV_PYTHON)
        runtime = RUNTIME.replace("@CONF@", str(self.conf))
        write(tmp / "mini_pip.py", f"RUNTIME = {runtime!r}\n" + MINI_PIP)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "FAKE_"))}
        (tmp / "tmpdir").mkdir()  # install.sh's log of a failed run stays there
        self.env |= {
            "PATH": f"{self.bin}:{self.env['PATH']}",
            "HOME": str(self.home),
            "TMPDIR": str(tmp / "tmpdir"),
        }
        self.set()

    def set(self, **settings: str) -> None:
        values = DEFAULTS | {"FAKE_LOG": str(self.log)} | settings
        self.conf.write_text("".join(f"{k}='{v}'\n" for k, v in values.items()))

    def package(self, folder: Path) -> Path:
        """A copy of a package folder whose install.sh looks for systemd units in self.units
        (SHA256SUMS updated to match)."""
        copy = self.tmp / "packages" / folder.name
        shutil.copytree(folder, copy)
        script = copy / "install.sh"
        text = script.read_text()
        assert text.count("units=/etc/systemd/system\n") == 1
        script.write_text(text.replace("units=/etc/systemd/system\n", f"units={self.units}\n"))
        (copy / "SHA256SUMS").write_text(package.sha256sums(copy))
        return copy

    def install(self, folder: Path, *args: str, cwd: Path | None = None, **env: str):
        """Run the folder's install.sh: exit code, stdout, stderr, and the calls the stand-ins
        logged during this run."""
        self.log.write_text("")
        done = subprocess.run(["sh", str(folder / "install.sh"), *args], env=self.env | env, cwd=cwd,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        return done.returncode, done.stdout, done.stderr, self.log.read_text().splitlines()


@pytest.fixture()
def device(tmp_path: Path) -> Device:
    return Device(tmp_path)


def version_of(folder: Path, device: Device) -> str:
    """What FOLDER/bin/mnist-edge-runtime --version says: the installation in use."""
    return subprocess.run([str(folder / "bin" / "mnist-edge-runtime"), "--version"], env=device.env,
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip


def envs_of(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / ".envs").iterdir())


# --- the folder `package` writes -----------------------------------------------------------------


def test_the_folder_holds_the_wheels_pip_install_sh_a_readme_and_their_checksums(packages):
    folder = packages["pi-bookworm-32"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.txt", "SHA256SUMS", "install.sh", "pip-99.0-py3-none-any.whl", "wheels"
    ]  # fmt: skip
    assert os.access(folder / "install.sh", os.X_OK)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755  # not mkdtemp's 0700
    listed = dict(line.split("  ")[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines())
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert set(listed) == files - {"SHA256SUMS"}
    for name, digest in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_the_readme_goes_in_the_order_a_person_does_it(packages):
    pi32 = (packages["pi-bookworm-32"] / "README.txt").read_text()
    steps = ["sudo apt install python3-numpy python3-pil", "Copy this whole folder", "sh install.sh",
             "D=~/mnist-edge", "$D/bin/mnist-edge-runtime predict", "--systemd-unit", "Upgrade:",
             "Uninstall"]  # fmt: skip
    positions = [pi32.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "python3-venv" not in pi32  # pip runs from the package: no ensurepip needed
    pi64 = (packages["pi-bookworm-64"] / "README.txt").read_text()
    assert "apt install" not in pi64 and pi64.index("1. Copy this whole folder") < pi64.index("sh install.sh")
    needed = package.installed_mb(sorted((packages["pi-bookworm-64"] / "wheels").glob("*.whl")))
    assert (
        f"about {needed} MB" in pi64
        and f"needed_mb={needed}\n" in (packages["pi-bookworm-64"] / "install.sh").read_text()
    )
    for text in ("~/mnist-edge/bin" not in pi64, "systemctl disable --now mnist-edge" in pi64,
                 "mnist_edge_runtime-9.9-py3-none-any.whl" in pi64, "sha256sum -c SHA256SUMS" in pi64):  # fmt: skip
        assert text
    for text in (pi32, pi64):
        assert max(len(line) for line in text.splitlines()) <= 100


def test_installed_size_counts_whole_blocks_and_byte_code(tmp_path):
    wheel = _wheel(tmp_path / "a-1-py3-none-any.whl", {"a/__init__.py": b"x" * 5000, "a/data.bin": b"y"})
    # 8 KiB for the .py, 8 KiB for its .pyc (8,000 bytes), 4 KiB for the byte, 1 MB for the rest
    assert package.installed_mb([wheel]) == 2
    assert package.installed_mb([]) == 1


# --- install.sh: the package itself --------------------------------------------------------------


def test_help_is_usage_and_touches_nothing(packages, device):
    code, out, err, calls = device.install(packages["pi-bookworm-64"], "--help")
    assert code == 0 and err == "" and calls == []
    assert out.startswith("usage: sh install.sh [--check-images N] [FOLDER]\n") and "upgrade" in out
    assert "Exit codes" in out
    for args, message in (
        (["-x"], "install.sh: unknown option -x (sh install.sh --help)"),
        (["a", "b"], "install.sh: one FOLDER at most (sh install.sh --help)"),
        (["--check-images"], "install.sh: --check-images needs a number (sh install.sh --help)"),
        (["--check-images", "0"], "install.sh: --check-images takes a number from 1 to 9999, not '0'"),
        (["--check-images=10000"], "install.sh: --check-images takes a number from 1 to 9999, not '10000'"),
        (["--check-images", "1e3"], "install.sh: --check-images takes a number from 1 to 9999, not '1e3'"),
    ):
        code, out, err, calls = device.install(packages["pi-bookworm-64"], *args)
        assert (code, err.splitlines(), calls) == (2, [message], [])


@pytest.mark.parametrize("damage", ["changed", "missing", "added", "no wheels", "install.sh alone"])
def test_a_package_that_is_not_as_made_is_refused_before_anything_runs(packages, device, damage):
    folder = device.package(packages["pi-bookworm-64"])
    wheel = folder / "wheels" / "idna-3.20-py3-none-any.whl"
    if damage == "changed":
        wheel.write_bytes(wheel.read_bytes()[:-1] + b"!")
        expected = "wheels/idna-3.20-py3-none-any.whl: damaged or changed (its SHA-256 differs from SHA256SUMS); copy the package again"
    elif damage == "missing":
        wheel.unlink()
        expected = "wheels/idna-3.20-py3-none-any.whl: missing; copy the whole package folder again"
    elif damage == "added":  # a doctored wheel that would otherwise be a candidate
        _wheel(folder / "wheels" / "idna-99.0-py3-none-any.whl", {"idna/__init__.py": b"doctored"})
        expected = (
            "wheels/idna-99.0-py3-none-any.whl: not in SHA256SUMS, so not part of this package; remove it"
        )
    else:
        if damage == "install.sh alone":
            alone = device.tmp / "alone"
            alone.mkdir()
            shutil.copy(folder / "install.sh", alone)
            folder = alone
        else:
            shutil.rmtree(folder / "wheels")
        expected = f"{folder} has no SHA256SUMS or wheels/ beside install.sh: copy the whole package folder"
    venv = device.tmp / "venv"
    code, out, err, calls = device.install(folder, str(venv))
    assert (code, err.splitlines(), calls) == (2, [f"install.sh: {expected}"], [])
    assert not venv.exists()


@pytest.mark.parametrize(
    "target, machine, bits, fits",
    [
        ("pi-bookworm-32", "x86_64", "64", "linux-x86_64"),
        ("pi-bookworm-32", "aarch64", "64", "pi-bookworm-64"),  # 64-bit Raspberry Pi OS
        ("pi-bookworm-64", "armv7l", "32", "pi-bookworm-32"),
        ("pi-bookworm-64", "aarch64", "32", "pi-bookworm-32"),  # 32-bit userland, 64-bit kernel
        ("pi-bookworm-64", "armv6l", "32", None),  # Pi 1, Zero W: no package
    ],
)
def test_another_cpu_is_one_line_before_anything_is_made(packages, device, target, machine, bits, fits):
    device.set(FAKE_MACHINE=machine, FAKE_BITS=bits)
    venv = device.tmp / "venv"
    code, out, err, calls = device.install(packages[target], str(venv))
    system = package.TARGETS[target].system
    cpu = "armv7l 32-bit" if target == "pi-bookworm-32" else "aarch64 64-bit"
    expected = f"install.sh: this package is for {system}, {cpu}; python3 runs on {machine} {bits}-bit"
    expected += f"; the package for it is made with --target {fits}" if fits else ""
    assert (code, err.splitlines()) == (2, [expected])
    assert not venv.exists() and len(calls) == 1  # the one question


def test_32_bit_userland_on_a_64_bit_kernel_is_armv7(packages, device):
    device.set(FAKE_MACHINE="aarch64", FAKE_BITS="32")
    code, out, err, calls = device.install(packages["pi-bookworm-32"], str(device.tmp / "venv"))
    assert code == 0, err


@pytest.mark.parametrize("target", ["pi-bookworm-32", "pi-bookworm-64"])
@pytest.mark.parametrize("version", ["3.13", "3.1", "3.110", "2.7"])
def test_another_python_version_is_refused(packages, device, target, version):
    device.set(FAKE_VERSION=version, **(ARMV7 if target == "pi-bookworm-32" else {}))
    venv = device.tmp / "venv"
    code, out, err, calls = device.install(packages[target], str(venv))
    system = package.TARGETS[target].system
    expected = f"install.sh: this package is for Python 3.11 ({system}); python3 is {version}"
    if version == "3.13" and target == "pi-bookworm-64":
        expected += "; the package for it is made with --target pi-trixie-64"
    assert (code, err.splitlines()) == (2, [expected])
    assert not venv.exists() and len(calls) == 1


def test_no_python_at_all(packages, device):
    code, _, err, _ = device.install(
        packages["pi-bookworm-64"], str(device.tmp / "venv"), PYTHON="/nowhere/python3"
    )
    assert code == 2 and err.splitlines() == [
        "install.sh: no /nowhere/python3 here (this package needs Python 3.11; PYTHON=/path/to/python3 names one)"
    ]


@pytest.mark.parametrize("missing", ["numpy", "PIL", "numpy PIL"])
def test_32_bit_without_debians_numpy_or_pillow_stops_before_making_anything(packages, device, missing):
    device.set(FAKE_MISSING=missing, **ARMV7)
    venv = device.tmp / "venv"
    code, _, err, calls = device.install(packages["pi-bookworm-32"], str(venv))
    assert (code, err.splitlines()) == (
        2, ["install.sh: needs Debian's numpy and Pillow: sudo apt install python3-numpy python3-pil"]
    )  # fmt: skip
    assert not venv.exists() and not any("-m venv" in c for c in calls)


def test_no_venv_module_is_one_line(packages, device):
    device.set(FAKE_MISSING="venv")
    venv = device.tmp / "venv"
    code, _, err, _ = device.install(packages["pi-bookworm-64"], str(venv))
    assert (code, err.splitlines()) == (
        2, ["install.sh: python3 has no venv module (a distribution that ships it apart calls it python3-venv)"]
    )  # fmt: skip
    assert not venv.exists()


# --- install.sh: a new installation --------------------------------------------------------------


def test_32_bit_installs_exactly_the_listed_wheels_with_debians_numpy_and_pillow(packages, device):
    device.set(**ARMV7)
    folder = packages["pi-bookworm-32"]
    place = device.tmp / "mnist-edge"
    code, out, err, calls = device.install(folder, str(place))
    assert code == 0, err
    assert "python3 -I -c import numpy, PIL" in calls  # asked before anything is made
    new = place / ".envs" / f"9.9-{bundle_id(BUNDLE)}"
    assert f"python3 -I -m venv --without-pip --system-site-packages {new}" in calls
    (pip,) = [c for c in calls if c.startswith("venv-python ")]
    assert pip.split()[1:6] == [
        "-I",
        f"{folder}/pip-99.0-py3-none-any.whl/pip",
        "install",
        "--isolated",
        "--no-index",
    ]
    for option in (f"--find-links {folder}/wheels", "--require-hashes", "--no-deps", "--only-binary=:all:",
                   "--ignore-installed", "--no-cache-dir"):  # fmt: skip
        assert f" {option}" in pip
    (switch,) = [i for i, c in enumerate(calls) if "os.replace" in c]
    assert calls.index("runtime eval") < switch < calls.index("runtime --version")  # checked, then put in use
    assert (new / "lib/python3.11/site-packages/idna/__init__.py").read_text() == "# the package's idna\n"
    assert (
        out.splitlines()[-2] == f"installed: mnist-edge-runtime 9.9 (bundle {bundle_id(BUNDLE)}) in {place}"
    )
    assert version_of(place, device) == "mnist-edge-runtime 9.9"
    assert (place / ".envs" / "current").resolve() == new
    for entry in ("bin", "include", "lib", "pyvenv.cfg"):  # the folder is the environment in use
        assert os.readlink(place / entry) == f".envs/current/{entry}"


def test_the_check_can_run_on_fewer_images(packages, device):
    place = device.tmp / "mnist-edge"
    for args in (["--check-images", "500", str(place)], ["--check-images=20", "--", str(place)]):
        code, out, err, calls = device.install(packages["pi-bookworm-64"], *args)
        assert code == 0, err
        limit = args[0].split("=")[1] if "=" in args[0] else args[1]
        assert f"runtime eval --limit {limit}" in calls and "runtime eval" not in calls
        assert (
            f"checking it: mnist-edge-runtime eval --limit {limit} (the first {limit} MNIST test images; no parity verdict)"
            in out
        )


def test_pip_gets_nothing_from_the_callers_environment(packages, device, tmp_path):
    """Variables that would add an index, a folder of wheels or a target, a config file that
    would, and PYTHONPATH: pip sees none of them; its config file is /dev/null, which makes it
    skip the system's (/etc/pip.conf), the user's and the environment's too."""
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "pip.conf").write_text("[global]\nfind-links = /evil\ntarget = /evil/target\n")
    hostile = {"PIP_FIND_LINKS": str(evil), "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_TARGET": str(evil),
               "PIP_CONFIG_FILE": str(evil / "pip.conf"), "PIP_NO_INDEX": "0", "PYTHONPATH": str(evil),
               "PYTHONHOME": str(evil), "XDG_CONFIG_DIRS": str(evil), "VIRTUAL_ENV": str(evil)}  # fmt: skip
    code, _, err, calls = device.install(packages["pi-bookworm-64"], str(tmp_path / "mnist-edge"), **hostile)
    assert code == 0, err
    (env_line,) = [c for c in calls if c.startswith("pip-env ")]
    names = sorted(item.split("=")[0] for item in env_line.split()[1:] if "=" in item)
    assert "PIP_CONFIG_FILE=/dev/null" in env_line.split()
    assert set(names) <= {"HOME", "PATH", "PIP_CONFIG_FILE", "TMPDIR", "PWD", "OLDPWD", "SHLVL", "_"}, names
    assert str(evil) not in env_line


def test_inherited_shell_settings_do_not_matter(packages, device):
    """An exported CDPATH (cd prints where it went), a umask of 077, another language: the
    package found once, the installation readable by others (a service user)."""
    folder = device.package(packages["pi-bookworm-64"])
    cdpath = device.tmp / "elsewhere"
    (cdpath / folder.name).mkdir(parents=True)  # what CDPATH would find for the relative name
    done = subprocess.run(
        ["sh", "-c", f"umask 077; exec sh {folder.name}/install.sh ../mnist-edge"],
        cwd=folder.parent, env=device.env | {"CDPATH": str(cdpath), "LANG": "de_DE.UTF-8", "LC_ALL": "de_DE.UTF-8"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    place = device.tmp / "mnist-edge"
    assert version_of(place, device) == "mnist-edge-runtime 9.9"
    current = (place / ".envs" / "current").resolve()
    assert stat.S_IMODE(current.stat().st_mode) & 0o055 == 0o055


def test_the_default_place_is_mnist_edge_in_home(packages, device):
    code, out, err, _ = device.install(packages["pi-bookworm-64"])
    assert code == 0, err
    assert (device.home / "mnist-edge" / ".envs" / "current").is_symlink()
    assert out.splitlines()[-1].startswith(f"run: {device.home}/mnist-edge/bin/mnist-edge-runtime predict")
    env = {k: v for k, v in device.env.items() if k != "HOME"}
    done = subprocess.run(
        ["sh", str(packages["pi-bookworm-64"] / "install.sh")], env=env, capture_output=True, text=True
    )
    assert (done.returncode, done.stderr) == (
        2,
        "install.sh: HOME is not set: name the folder (sh install.sh FOLDER)\n",
    )


@pytest.mark.parametrize("kind", ["photos", "file", "venv"])
def test_a_folder_that_is_not_an_installation_is_left_alone(packages, device, kind):
    folder = device.tmp / kind
    if kind == "file":
        folder.write_text("mine")
        expected = f"install.sh: {folder} exists and is not a folder; name another one (nothing was changed)"
    else:
        folder.mkdir()
        (folder / "holiday.jpg").write_bytes(b"mine")
        expected = f"install.sh: {folder} exists and is not an mnist-edge installation; name another folder (nothing was changed)"
        if kind == "venv":  # someone's virtual environment, without the runtime
            (folder / "pyvenv.cfg").write_text("home = /usr/bin\n")
            expected = f"install.sh: {folder} is a virtual environment without mnist-edge-runtime; name another folder (nothing was changed)"
    before = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else folder.read_text()
    code, _, err, calls = device.install(packages["pi-bookworm-64"], str(folder))
    assert (code, err.splitlines()) == (2, [expected])
    assert not any("-m venv" in c for c in calls)
    assert (sorted(p.name for p in folder.iterdir()) if folder.is_dir() else folder.read_text()) == before


@pytest.mark.parametrize(
    "error, cause",
    [
        (
            "Permission denied",
            "permission denied; choose a folder of yours, or use sudo (say for /opt/mnist-edge)",
        ),
        ("Read-only file system", "read-only file system; choose a folder on a writable one"),
        ("No space left on device", "the disk is full (2 MB needed)"),
    ],
)
def test_a_folder_that_cannot_be_made_says_why(packages, device, error, cause):
    device.set(FAKE_MKDIR_ERROR=error)
    place = device.tmp / "opt" / "mnist-edge"
    code, _, err, calls = device.install(packages["pi-bookworm-64"], str(place))
    assert (code, err.splitlines()) == (2, [f"install.sh: cannot make {place}: {cause}"])
    assert not place.exists() and not any("-m venv" in c for c in calls)


def test_too_little_space_says_how_much_is_needed(packages, device):
    device.set(FAKE_DF_KB="1536")
    place = device.tmp / "mnist-edge"
    code, _, err, calls = device.install(packages["pi-bookworm-64"], str(place))
    assert (code, err.splitlines()) == (
        2,
        [f"install.sh: not enough free space for {place}: 2 MB needed, 1 MB free"],
    )
    assert not place.exists() and not any("-m venv" in c for c in calls)


# --- install.sh over an earlier installation -----------------------------------------------------


def test_an_upgrade_installs_the_new_runtime_keeps_the_users_files_and_the_version_before(packages, device):
    place = device.tmp / "mnist-edge"
    assert device.install(packages["old"], str(place))[0] == 0
    (place / "digit.jpg").write_bytes(b"mine")
    (place / "notes").mkdir()
    old = f"9.8-{bundle_id(BUNDLE)}"
    code, out, err, calls = device.install(packages["pi-bookworm-64"], str(place))
    assert code == 0, err
    new = f"9.9-{bundle_id(BUNDLE)}"
    assert (
        f"upgraded: mnist-edge-runtime 9.8 (bundle {bundle_id(BUNDLE)}) -> 9.9 (bundle {bundle_id(BUNDLE)}) in {place}"
        in out
    )
    assert f"the previous one stays in {place}/.envs/{old} until the next upgrade" in out
    assert version_of(place, device) == "mnist-edge-runtime 9.9"
    assert (place / "digit.jpg").read_bytes() == b"mine" and (place / "notes").is_dir()
    assert envs_of(place) == sorted([old, new, "current"])
    # the same version with another bundle: the package's runtime wins, and 9.8 is removed
    code, out, err, _ = device.install(packages["other-bundle"], str(place))
    assert code == 0, err
    other = bundle_id(packages["other-bundle"].parent / "retrained")
    assert (
        f"upgraded: mnist-edge-runtime 9.9 (bundle {bundle_id(BUNDLE)}) -> 9.9 (bundle {other}) in {place}"
        in out
    )
    assert envs_of(place) == sorted([new, f"9.9-{other}", "current"])
    assert (
        place / ".envs/current/lib/python3.11/site-packages/mnist_edge_runtime/bundle/manifest.json"
    ).read_bytes() == (
        packaged.packaged_files(packages["other-bundle"].parent / "retrained")["manifest.json"]
    )
    # the same package again: a new environment all the same, switched to the same way
    code, out, err, _ = device.install(packages["other-bundle"], str(place))
    assert code == 0, err
    assert (
        f"reinstalled: mnist-edge-runtime 9.9 (bundle {other}) in {place} (the same version and bundle)"
        in out
    )
    assert envs_of(place) == sorted([f"9.9-{other}", f"9.9-{other}-2", "current"])
    assert (place / "digit.jpg").read_bytes() == b"mine"


def test_an_installation_by_the_earlier_install_sh_is_upgraded_in_place(packages, device):
    """The earlier install.sh made FOLDER itself the virtual environment: its own entries move
    into .envs, FOLDER's links take their place, everything else in FOLDER stays."""
    place = device.tmp / "mnist-edge"
    python3 = str(device.bin / "python3")
    subprocess.run([python3, "-m", "venv", str(place)], env=device.env, check=True)
    requirements = device.tmp / "old.txt"
    with requirements.open("w") as out:
        for line in (packages["old"] / "SHA256SUMS").read_text().splitlines():
            digest, name = line.split("  ")
            if name.startswith("wheels/"):
                dist, version = Path(name).name.split("-")[:2]
                out.write(f"{dist}=={version} --hash=sha256:{digest}\n")
    subprocess.run([str(place / "bin/python"), "-I", "x/pip", "install", "--find-links", str(packages["old"] / "wheels"),
                    "--requirement", str(requirements)], env=device.env, check=True)  # fmt: skip
    assert version_of(place, device) == "mnist-edge-runtime 9.8"
    (place / "digit.jpg").write_bytes(b"mine")
    code, out, err, _ = device.install(packages["pi-bookworm-64"], str(place))
    assert code == 0, err
    assert (
        f"upgraded: mnist-edge-runtime 9.8 (bundle {bundle_id(BUNDLE)}) -> 9.9 (bundle {bundle_id(BUNDLE)})"
        in out
    )
    assert version_of(place, device) == "mnist-edge-runtime 9.9"
    assert (place / "pyvenv.cfg").is_symlink() and (place / "digit.jpg").read_bytes() == b"mine"
    assert (place / ".envs" / "9.8-old-layout" / "bin" / "mnist-edge-runtime").is_file()
    assert sorted(p.name for p in place.iterdir()) == [
        ".envs",
        "bin",
        "digit.jpg",
        "include",
        "lib",
        "pyvenv.cfg",
    ]


@pytest.mark.parametrize(
    "failure, code, message",
    [
        ({"FAKE_VENV_ERROR": "[Errno 28] No space left on device: 'x'"}, 2,
         "making the virtual environment: the disk is full (2 MB needed)"),
        ({"FAKE_VENV_ERROR": "[Errno 13] Permission denied: 'x'"}, 2,
         "making the virtual environment: permission denied; choose a folder of yours, or use sudo (say for /opt/mnist-edge)"),
        ({"FAKE_PIP_ERROR": "Could not install packages due to an OSError: [Errno 30] Read-only file system"}, 2,
         "installing the wheels: read-only file system; choose a folder on a writable one"),
        ({"FAKE_PIP_ERROR": "No matching distribution found for idna==3.20"}, 2,
         "installing the wheels: No matching distribution found for idna==3.20"),
        ({"FAKE_EVAL_FAIL": "1"}, 1, "the new installation fails its check: flat.int8.tflite 98.10% 98.99% FAIL"),
    ],
)  # fmt: skip
def test_a_failed_upgrade_leaves_the_installed_version_as_it_was(packages, device, failure, code, message):
    place = device.tmp / "mnist-edge"
    assert device.install(packages["old"], str(place))[0] == 0
    (place / "digit.jpg").write_bytes(b"mine")
    before = envs_of(place)
    device.set(**failure)
    got, out, err, _ = device.install(packages["pi-bookworm-64"], str(place))
    (line,) = err.splitlines()
    assert got == code
    assert line.startswith(f"install.sh: {message} (log: ")
    assert line.endswith(f") ({place} still has 9.8 (bundle {bundle_id(BUNDLE)}), unchanged)")
    assert envs_of(place) == before and version_of(place, device) == "mnist-edge-runtime 9.8"
    assert (place / "digit.jpg").read_bytes() == b"mine"


def test_a_failed_first_installation_leaves_nothing(packages, device):
    device.set(FAKE_EVAL_FAIL="1")
    place = device.tmp / "mnist-edge"
    code, _, err, _ = device.install(packages["pi-bookworm-64"], str(place))
    assert code == 1 and err.startswith("install.sh: the new installation fails its check")
    assert not place.exists()


def test_a_version_a_service_runs_is_kept_and_the_way_to_move_it_is_printed(packages, device):
    place = device.tmp / "mnist-edge"
    copies = {key: device.package(packages[key]) for key in ("old", "pi-bookworm-64", "other-bundle")}
    assert device.install(copies["old"], str(place))[0] == 0
    old = (place / ".envs" / "current").resolve()
    unit = device.units / "mnist-edge.service"
    unit.write_text(f"[Service]\nExecStart={old}/bin/python -m mnist_edge_runtime serve --model-file "
                    f"{old}/lib/python3.11/site-packages/mnist_edge_runtime/bundle/conv2d.int8.tflite\n")  # fmt: skip
    legacy = device.units / "digits.service"  # made through FOLDER's own links: follows the switch
    legacy.write_text(f"[Service]\nExecStart={place}/bin/python -m mnist_edge_runtime serve\n")
    for key in ("pi-bookworm-64", "other-bundle"):  # two upgrades: 9.8 would go with the second
        code, out, err, _ = device.install(copies[key], str(place))
        assert code == 0, err
    assert (old / "bin" / "python").exists()
    new = (place / ".envs" / "current").resolve()
    other = bundle_id(packages["other-bundle"].parent / "retrained")
    assert (
        f"service mnist-edge still runs 9.8 (bundle {bundle_id(BUNDLE)}); to run 9.9 (bundle {other}): "
        f"sudo sed -i 's|/.envs/{old.name}/|/.envs/{new.name}/|g' {unit} && sudo systemctl daemon-reload "
        "&& sudo systemctl restart mnist-edge"
    ) in out.splitlines()
    assert (
        f"service digits runs 9.9 (bundle {other}) once restarted: sudo systemctl restart digits"
        in out.splitlines()
    )
    subprocess.run(["sed", "-i", f"s|/.envs/{old.name}/|/.envs/{new.name}/|g", str(unit)], check=True)
    code, out, err, _ = device.install(copies["other-bundle"], str(place))
    assert code == 0 and not old.exists()  # no service names it any more


# --- --out: a new folder, never an existing one ------------------------------------------------


def test_package_refuses_an_existing_folder_and_leaves_it_untouched(tmp_path, monkeypatch):
    def never(*args: object) -> None:
        raise AssertionError("nothing may be built for a folder that exists")

    monkeypatch.setattr(package, "build_runtime_wheel", never)
    monkeypatch.setattr(package, "download_wheels", never)
    monkeypatch.setattr(package, "download_pip", never)
    for existing in (tmp_path / "empty", tmp_path / "full", tmp_path / "file"):
        if existing.name == "file":
            existing.write_text("mine")
        else:
            existing.mkdir()
            if existing.name == "full":
                (existing / "install.sh").write_text("mine")
        before = sorted(p.name for p in tmp_path.iterdir())
        result = CliRunner().invoke(app, ["package", "--target", "linux-x86_64", "--out", str(existing)])
        assert result.exit_code == 2, result.output
        assert f"{existing}: already exists; name a new folder (nothing was changed)" in result.output
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # no staging folder either
        assert package.main(["--target", "linux-x86_64", "--out", str(existing)]) == 2
    assert (tmp_path / "full" / "install.sh").read_text() == "mine" and (
        tmp_path / "file"
    ).read_text() == "mine"
    assert list((tmp_path / "empty").iterdir()) == []
