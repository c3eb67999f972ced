"""``mnist-edge package``: an offline installation of the runtime for one kind of device.

A target is data (``TARGETS``): the operating system, CPU, Python version and pip platform tags of
a device, the runtime extras it gets, and what its system provides instead of PyPI (32-bit
Raspberry Pi OS: PyPI has no armv7l numpy or Pillow at all, so they come from Debian's
``python3-numpy`` and ``python3-pil`` through ``--system-site-packages``). ``build_package``
writes, into a new folder:

* ``wheels/``: the runtime built with the chosen bundle inside (``mnist_edge.packaged``), and
  every wheel it needs for that platform and Python, fetched with pip's platform options;
* pip's own wheel, which install.sh runs (no pip or ``python3-venv`` needed on the device);
* ``install.sh`` (POSIX sh): checks every file against ``SHA256SUMS``, the CPU, the Python version
  and the free space, installs exactly the listed wheels with their hashes into a new virtual
  environment (no index, no pip configuration or variable from outside the package), runs
  ``mnist-edge-runtime eval`` there, and only then switches ``FOLDER/.envs/current`` to it.
  ``FOLDER/bin``, ``lib``, ... point into ``.envs/current``, so an upgrade is one rename, the
  user's files in FOLDER stay, and a failed one leaves the installed version as it was;
* ``README.txt``: the steps in the order a person takes them, upgrade, uninstall, the service;
* ``SHA256SUMS``: every other file's SHA-256 (``summary`` prints its own, to compare on the device).

The folder is built beside the destination and renamed into place, so an interrupted run leaves
nothing half-made, and a folder that exists already is never touched.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mnist_edge import packaged
from mnist_edge.errors import OneLineParser, UserError

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
               from_system=("numpy", "pillow"), debian_packages=("python3-numpy", "python3-pil")),
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


def download_pip(target: Target, folder: Path) -> Path:
    """pip's own wheel, which install.sh runs from the package (the device's pip, if any, and
    ensurepip are never used: no ``python3-venv``, and the same pip on every device)."""
    done = _pip("download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", str(folder),
                "--python-version", target.python, "pip")  # fmt: skip
    if done.returncode != 0:
        raise UserError(
            f"{target.name}: no wheel of pip for Python {target.python}: {_missing_package(done.stderr)}"
        )
    return next(folder.glob("pip-*.whl"))


def installed_mb(wheels: list[Path]) -> int:
    """What the virtual environment takes on disk once the wheels are installed, in MB (10^6
    bytes), rounded up: every file of every wheel and the .pyc pip compiles beside each .py
    (about 1.6 times its size), each in whole 4 KiB blocks, and the environment's own files."""
    blocks = lambda size: -(-size // 4096) * 4096  # noqa: E731
    total = 1_000_000
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.infolist():
                total += blocks(member.file_size)
                if member.filename.endswith(".py"):
                    total += blocks(member.file_size * 8 // 5)
    return -(-total // 1_000_000)


def sha256sums(folder: Path) -> str:
    """``sha256sum``'s format for every file in ``folder`` but SHA256SUMS itself, sorted."""
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS"):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.relative_to(folder).as_posix()}\n")
    return "".join(lines)


# install.sh, with @NAME@ filled in by _write_scripts. POSIX sh: Raspberry Pi OS's sh is dash.
INSTALL_SH = r"""#!/bin/sh
# Offline installation of mnist-edge-runtime @VERSION@ (bundle @BUNDLE@) for @SYSTEM@
# (@MACHINE@, Python @PYTHON@). Every file it installs is in this folder, checked against
# SHA256SUMS first; nothing is downloaded. sh install.sh --help says how to use it.
set -eu
# Settings inherited from the caller's shell must not change what it does: CDPATH makes cd print
# the folder it went to, a umask of 077 would hide the installation from the service's user, and
# the messages of the tools it reads are in English.
unset CDPATH
umask 022
LC_ALL=C
export LC_ALL
IFS=$(printf ' \t\n.')
IFS=${IFS%.}

version='@VERSION@'
bundle='@BUNDLE@'
want_python='@PYTHON@'
needed_mb=@NEEDED_MB@
pip_wheel='@PIP_WHEEL@'
units=/etc/systemd/system
new_desc="$version (bundle $bundle)"

usage() {
    cat <<EOF
usage: sh install.sh [--check-images N] [FOLDER]

Installs mnist-edge-runtime $new_desc
for @SYSTEM@
into FOLDER (default: ~/mnist-edge) from this folder alone, with no network. It needs Python
@PYTHON@@NEEDS@ and about $needed_mb MB of free space.

Run the install.sh of a newer package with the same FOLDER to upgrade: your own files in FOLDER
stay, and the installed version stays in use until the new one has passed its check
(mnist-edge-runtime eval); the one before is kept until the next upgrade.

  --check-images N    the check runs on the first N of the 10,000 test images, not all of
                      them: quicker on a slow device, but with no parity verdict
  PYTHON=/path/to/python3 sh install.sh ...    use another interpreter than python3

Exit codes: 0 installed, 1 the new installation failed its check, 2 anything else that stopped
it (the line says what). Unless it exits 0, the installed version is unchanged.
EOF
}

old_desc=
switched=no
fail() {  # fail CODE MESSAGE: one line on stderr, and the exit code
    code=$1
    shift
    if [ -n "$old_desc" ] && [ "$switched" = no ]; then
        printf 'install.sh: %s (%s still has %s, unchanged)\n' "$*" "$dir" "$old_desc" >&2
    else
        printf 'install.sh: %s\n' "$*" >&2
    fi
    exit "$code"
}
say() {
    printf '%s\n' "$*"
}

check_images=
while [ $# -gt 0 ]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --check-images) [ $# -ge 2 ] || fail 2 "--check-images needs a number (sh install.sh --help)"; check_images=$2; shift 2 ;;
        --check-images=*) check_images=${1#*=}; shift ;;
        --) shift; break ;;
        -?*) fail 2 "unknown option $1 (sh install.sh --help)" ;;
        *) break ;;
    esac
done
case $check_images in
    '') ;;
    *[!0-9]* | 0* | ?????*) fail 2 "--check-images takes a number from 1 to 9999, not '$check_images'" ;;
esac
[ $# -le 1 ] || fail 2 "one FOLDER at most (sh install.sh --help)"
here=$(cd -P -- "$(dirname -- "$0")" && pwd -P)

# --- the package: every file as SHA256SUMS lists it, and nothing else beside ------------------
[ -f "$here/SHA256SUMS" ] && [ -d "$here/wheels" ] ||
    fail 2 "$here has no SHA256SUMS or wheels/ beside install.sh: copy the whole package folder"
command -v sha256sum >/dev/null 2>&1 || fail 2 "sha256sum not found (it is part of coreutils)"
listed=' '
while read -r sum file; do
    file=${file#\*}
    case $file in
        '' | /* | ../* | */../*) fail 2 "SHA256SUMS: no file named '$file' can be part of the package" ;;
    esac
    [ -f "$here/$file" ] || fail 2 "$file: missing; copy the whole package folder again"
    [ "$(sha256sum <"$here/$file" | cut -c1-64)" = "$sum" ] ||
        fail 2 "$file: damaged or changed (its SHA-256 differs from SHA256SUMS); copy the package again"
    listed="$listed$file "
done <"$here/SHA256SUMS"
for path in "$here"/wheels/* "$here"/*.whl; do
    [ -e "$path" ] || continue
    file=${path#"$here"/}
    case $listed in
        *" $file "*) ;;
        *) fail 2 "$file: not in SHA256SUMS, so not part of this package; remove it" ;;
    esac
done

# --- the interpreter: this package's CPU, Python version, and what it needs ------------------
clean() {  # clean [NAME=VALUE...] COMMAND...: run with no variable of the caller's but these
    set -- PATH="$PATH" "$@"
    if [ -n "${TMPDIR-}" ]; then set -- TMPDIR="$TMPDIR" "$@"; fi
    if [ -n "${HOME-}" ]; then set -- HOME="$HOME" "$@"; fi
    env -i "$@"
}
python_name=${PYTHON:-python3}
python=$(command -v -- "$python_name" 2>/dev/null) ||
    fail 2 "no $python_name here (this package needs Python $want_python; PYTHON=/path/to/python3 names one)"
case $python in /*) ;; *) python=$(pwd -P)/$python ;; esac
# -E -s rather than -I: an old Python must still answer, to be told apart.
probe=$(cd / && clean "$python" -E -s -c 'import platform, struct, sys; print("%d.%d %s %d" % (sys.version_info[0], sys.version_info[1], platform.machine(), 8 * struct.calcsize("P")))' 2>/dev/null) ||
    fail 2 "$python_name does not run (this package needs Python $want_python)"
read -r have_version have_machine have_bits <<EOF
$probe
EOF
others() {  # the package that fits this interpreter, if there is one
    case $have_machine:$have_bits:$have_version in
@OTHERS@
    esac
}
case $have_machine:$have_bits in
    @ACCEPT@) ;;
    *) fail 2 "this package is for @SYSTEM@, @CPU@; $python_name runs on $have_machine $have_bits-bit$(others)" ;;
esac
[ "$have_version" = "$want_python" ] ||
    fail 2 "this package is for Python $want_python (@SYSTEM@); $python_name is $have_version$(others)"
@SYSTEM_CHECK@(cd / && clean "$python" -I -c 'import venv') >/dev/null 2>&1 ||
    fail 2 "$python_name has no venv module (a distribution that ships it apart calls it python3-venv)"

# --- the folder: new, an earlier installation, or someone else's ------------------------------
if [ $# -eq 1 ]; then
    dir=$1
elif [ -n "${HOME-}" ]; then
    dir=$HOME/mnist-edge
else
    fail 2 "HOME is not set: name the folder (sh install.sh FOLDER)"
fi
case $dir in /*) ;; *) dir=$(pwd -P)/$dir ;; esac
while :; do case $dir in /?*/) dir=${dir%/} ;; *) break ;; esac; done
envs=$dir/.envs

describe() {  # describe ENV: "VERSION (bundle ID)" of the runtime installed in ENV
    v=unknown
    b=unknown
    for info in "$1"/lib/python*/site-packages/mnist_edge_runtime-*.dist-info; do
        if [ -d "$info" ]; then v=${info##*/mnist_edge_runtime-}; v=${v%.dist-info}; fi
    done
    for manifest in "$1"/lib/python*/site-packages/mnist_edge_runtime/bundle/manifest.json; do
        if [ -f "$manifest" ]; then b=$(sha256sum <"$manifest" | cut -c1-12); fi
    done
    say "$v (bundle $b)"
}
previous=
if [ -L "$envs/current" ]; then
    state=upgrade
    previous=$(readlink "$envs/current")
    old_desc=$(describe "$envs/$previous")
elif [ -f "$dir/pyvenv.cfg" ] && [ ! -L "$dir/pyvenv.cfg" ]; then
    # An installation by an earlier install.sh: the virtual environment is the folder itself.
    [ -e "$dir/bin/mnist-edge-runtime" ] ||
        fail 2 "$dir is a virtual environment without mnist-edge-runtime; name another folder (nothing was changed)"
    state=legacy
    old_desc=$(describe "$dir")
elif [ -d "$dir" ]; then
    case $(ls -A -- "$dir") in
        '' | .envs) state=new ;;
        *) fail 2 "$dir exists and is not an mnist-edge installation; name another folder (nothing was changed)" ;;
    esac
elif [ -e "$dir" ] || [ -L "$dir" ]; then
    fail 2 "$dir exists and is not a folder; name another one (nothing was changed)"
else
    state=new
fi

# --- from here on, what this run makes is removed again unless it succeeds -------------------
new=
log=
made_dir=no
made_envs=no
cleanup() {
    code=$?
    trap - EXIT
    if [ "$switched" = no ] && [ -n "$new" ]; then rm -rf -- "$new"; fi
    if [ "$code" = 0 ] && [ -n "$log" ]; then rm -f -- "$log" "$log.requirements"; fi
    if [ "$made_envs" = yes ]; then rmdir -- "$envs" 2>/dev/null || :; fi
    if [ "$made_dir" = yes ]; then rmdir -- "$dir" 2>/dev/null || :; fi
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

why() {  # why WHAT TEXT: the cause in TEXT (an error message) of WHAT failing, in words
    case $2 in
        *"No space left on device"*) say "$1: the disk is full ($needed_mb MB needed)" ;;
        *"Read-only file system"*) say "$1: read-only file system; choose a folder on a writable one" ;;
        *"Permission denied"*) say "$1: permission denied; choose a folder of yours, or use sudo (say for /opt/mnist-edge)" ;;
        *) say "$1: ${2##*: }" ;;
    esac
}
make_dir() {  # make_dir FOLDER, or fail with the cause
    err=$(mkdir -p -- "$1" 2>&1) || fail 2 "$(why "cannot make $1" "$err")"
}
if [ ! -d "$dir" ]; then make_dir "$dir"; made_dir=yes; fi
if [ ! -d "$envs" ]; then make_dir "$envs"; made_envs=yes; fi
dir_real=$(cd -P -- "$dir" && pwd -P)
free_kb=$(df -Pk -- "$envs" 2>/dev/null | awk 'NR == 2 { print $4 }') || free_kb=
case $free_kb in
    '' | *[!0-9]*) ;;
    *) [ "$free_kb" -ge $((needed_mb * 1024)) ] ||
        fail 2 "not enough free space for $dir: $needed_mb MB needed, $((free_kb / 1024)) MB free" ;;
esac

name=$version-$bundle
n=1
while [ -e "$envs/$name" ] || [ -L "$envs/$name" ]; do
    n=$((n + 1))
    name=$version-$bundle-$n
done
new=$envs/$name
make_dir "$new"
log=$(mktemp 2>/dev/null) || log=$envs/install.log
failed() {  # failed WHAT: the cause the log gives, in one line
    cause=$(grep -E 'No space left|Read-only file system|Permission denied' "$log" | tail -n 1)
    [ -n "$cause" ] || cause=$(tail -n 1 "$log")
    fail 2 "$(why "$1" "$cause") (log: $log)"
}

say "installing mnist-edge-runtime $new_desc into $new"
(cd / && clean "$python" -I -m venv --without-pip @VENV_OPTIONS@"$new") >"$log" 2>&1 ||
    failed "making the virtual environment"
# Exactly the wheels SHA256SUMS lists, each with its hash; pip runs from its own wheel here, with
# no configuration file (PIP_CONFIG_FILE=/dev/null skips the system's too), no variable (clean,
# --isolated), no index and no other folder of wheels.
while read -r sum file; do
    case ${file#\*} in
        wheels/*.whl)
            wheel=${file#*wheels/}
            rest=${wheel#*-}
            printf '%s==%s --hash=sha256:%s\n' "${wheel%%-*}" "${rest%%-*}" "$sum" ;;
    esac
done <"$here/SHA256SUMS" >"$log.requirements"
(cd / && clean PIP_CONFIG_FILE=/dev/null "$new/bin/python" -I "$here/$pip_wheel/pip" install --isolated \
    --no-index --find-links "$here/wheels" --requirement "$log.requirements" --require-hashes \
    --no-deps --only-binary=:all: --ignore-installed --no-cache-dir --disable-pip-version-check \
    --no-warn-script-location --quiet) >"$log" 2>&1 || failed "installing the wheels"

if [ -n "$check_images" ]; then
    say "checking it: mnist-edge-runtime eval --limit $check_images (the first $check_images MNIST test images; no parity verdict)"
    set -- eval --limit "$check_images"
else
    say "checking it: mnist-edge-runtime eval (its models on the 10,000 MNIST test images it carries)"
    set -- eval
fi
if ! (cd / && clean "$new/bin/mnist-edge-runtime" "$@") >"$log" 2>&1; then
    cause=$(grep -E 'FAIL|rror' "$log" | head -n 1)  # a model that misses parity, or the error
    [ -n "$cause" ] || cause=$(tail -n 1 "$log")
    fail 1 "the new installation fails its check: $(printf '%s' "$cause" | tr -s ' ') (log: $log)"
fi
sed 's/^/    /' "$log"

# --- the switch: .envs/current names the new environment (one rename) -------------------------
rm -f -- "$envs/.current.new"
ln -s -- "$name" "$envs/.current.new"
(cd / && clean "$python" -I -c 'import os, sys; os.replace(sys.argv[1], sys.argv[2])' \
    "$envs/.current.new" "$envs/current") || fail 2 "cannot switch $envs/current to $name"
switched=yes
if [ "$state" = legacy ]; then  # the old environment's own entries go to .envs; the rest stays
    previous=${old_desc%% *}-old-layout
    n=1
    while [ -e "$envs/$previous" ]; do
        n=$((n + 1))
        previous=${old_desc%% *}-old-layout-$n
    done
    mkdir -- "$envs/$previous"
    for entry in bin include lib lib64 pyvenv.cfg; do
        if [ -e "$dir/$entry" ] || [ -L "$dir/$entry" ]; then mv -- "$dir/$entry" "$envs/$previous/"; fi
    done
fi
# FOLDER/bin, lib, ... -> .envs/current/...: FOLDER is the virtual environment in use, as before.
for entry in bin include lib lib64 pyvenv.cfg; do
    if [ -e "$envs/current/$entry" ] && [ ! -L "$dir/$entry" ]; then
        ln -s -- ".envs/current/$entry" "$dir/$entry"
    fi
done

units_naming() {  # units_naming TEXT: the systemd services whose unit file contains TEXT
    for unit in "$units"/*.service; do
        if [ -f "$unit" ] && grep -q -F -- "$1" "$unit"; then say "$unit"; fi
    done
}
for path in "$envs"/*; do  # the previous version and what a service runs stay
    entry=${path##*/}
    case $entry in current | "$name" | "$previous") continue ;; esac
    [ -n "$(units_naming "$dir_real/.envs/$entry/")" ] || rm -rf -- "$path"
done
version_line=$(cd / && clean "$dir/bin/mnist-edge-runtime" --version) ||
    fail 1 "$dir/bin/mnist-edge-runtime does not run"
say "$version_line"
case $state in
    new) say "installed: mnist-edge-runtime $new_desc in $dir" ;;
    *)
        if [ "$old_desc" = "$new_desc" ]; then
            say "reinstalled: mnist-edge-runtime $new_desc in $dir (the same version and bundle)"
        else
            say "upgraded: mnist-edge-runtime $old_desc -> $new_desc in $dir"
        fi
        say "the previous one stays in $envs/$previous until the next upgrade" ;;
esac
for unit in $(units_naming "$dir_real/"); do
    service=${unit##*/}
    service=${service%.service}
    grep -q -F -- "$dir_real/.envs/$name/" "$unit" && continue
    runs=
    for path in "$envs"/*; do
        if grep -q -F -- "$dir_real/.envs/${path##*/}/" "$unit"; then runs=${path##*/}; fi
    done
    if [ -n "$runs" ]; then
        say "service $service still runs $(describe "$envs/$runs"); to run $new_desc: sudo sed -i 's|/.envs/$runs/|/.envs/$name/|g' $unit && sudo systemctl daemon-reload && sudo systemctl restart $service"
    else
        say "service $service runs $new_desc once restarted: sudo systemctl restart $service"
    fi
done
say "run: $dir/bin/mnist-edge-runtime predict IMAGE (or serve --host 0.0.0.0, or eval)"
"""

SYSTEM_CHECK = """\
(cd / && clean "$python" -I -c 'import numpy, PIL') >/dev/null 2>&1 ||
    fail 2 "needs Debian's numpy and Pillow: sudo apt install {packages}"
"""

README_TXT = """\
{title}
{rule}

Target:   {name}: {system}
CPU:      {machine}, Python {python}
Runtime:  mnist-edge-runtime {version}, with its models and the 10,000 MNIST test images inside
Bundle:   {bundle} ({models})
Space:    about {needed_mb} MB installed; an upgrade needs that much free again, as the version
          before it is kept until the next upgrade

Nothing is downloaded on the device.

{system_step}{n_copy}. Copy this whole folder to the device (scp -r, a USB stick, ...). install.sh checks the
   copy itself; by hand: sha256sum -c SHA256SUMS, and compare the output of sha256sum SHA256SUMS
   with the SHA-256 of SHA256SUMS printed when the package was made.

{n_install}. On the device, in this folder:

       sh install.sh                      # installs into ~/mnist-edge
       sh install.sh /opt/mnist-edge      # or into the folder you name (sudo where it needs root)

   It checks every file against SHA256SUMS, the CPU, Python {python} and the free space. Then it
   installs exactly these wheels, each checked against its hash (no settings or variables of
   pip's from outside this folder are read), into a new virtual environment, runs
   mnist-edge-runtime eval there (each model on the 10,000 test images: the manifest's accuracy
   or exit 1) and only then puts it in use. Unless it exits 0, what was installed before stays
   as it was; a failure is one line that says why. sh install.sh --help says more.

   Below, D is the folder you installed into. Set it first, in the shell you use:

       D=~/mnist-edge                     # or D=/opt/mnist-edge: the folder you gave install.sh

{n_use}. Recognize a digit, check parity again, or serve the page:

       $D/bin/mnist-edge-runtime predict digit.jpg
       $D/bin/mnist-edge-runtime eval
       $D/bin/mnist-edge-runtime serve --host 0.0.0.0   # then open http://<device>.local:8000/

{n_service}. Run serve as a service (starts at boot, restarts on failure, memory capped, no root):

       $D/bin/mnist-edge-runtime serve --host 0.0.0.0 --systemd-unit \\
           | sudo tee /etc/systemd/system/mnist-edge.service
       sudo systemctl daemon-reload && sudo systemctl enable --now mnist-edge

   The unit names the version it runs, and keeps it through an upgrade (install.sh removes no
   version a service names): after an upgrade, install.sh prints the line that moves the
   service to the new version and restarts it. To stop and remove the service:

       sudo systemctl disable --now mnist-edge
       sudo rm /etc/systemd/system/mnist-edge.service && sudo systemctl daemon-reload

{n_upgrade}. Upgrade: copy the newer package to the device and run its install.sh with the same folder:

       sh install.sh "$D"

   It installs the new runtime and models beside the installed ones and switches to them only
   once they pass their check, then prints the old and the new version and bundle. Your own
   files in $D stay. The version before is kept in $D/.envs until the next upgrade.

{n_remove}. Uninstall (remove the service first, if you made one):

       rm -rf "$D"/.envs "$D"/bin "$D"/include "$D"/lib "$D"/lib64 "$D"/pyvenv.cfg
       rm -rf "$D"                        # or this instead: your own files in $D go too

In this folder: install.sh, this README.txt, SHA256SUMS, pip's wheel (install.sh runs pip from
it: the device's pip is not used, and pip is not installed)

  {pip_wheel}

and in wheels/ the {count} wheels that are installed:

{wheel_list}
"""

SYSTEM_STEP = """\
1. First, while the device still has the internet (once): Debian's {what}, which this
   package uses (PyPI has no {machine} wheel of {wheels}):

       sudo apt install {packages}

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
        pip_wheel = download_pip(target, staging)
        files = sorted(wheels.glob("*.whl"))
        _write_scripts(target, staging, runtime, bundle, files, pip_wheel)
        (staging / "SHA256SUMS").write_text(sha256sums(staging))
        staging.chmod(0o755)  # mkdtemp's 0700 would reach the device with the copy
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / "wheels" / f.name for f in files]


def _shell_cases(target: Target) -> tuple[str, str]:
    """install.sh's CPU test: the ``machine:bits`` an interpreter of ``target`` reports (a 32-bit
    Raspberry Pi OS on a 64-bit kernel says aarch64 and 32), and, for one that does not fit, the
    case lines that name the target that fits its CPU and Python."""

    def patterns(machine: str) -> list[str]:
        return {"armv7l": ["armv7l:32", "armv8l:32", "aarch64:32", "arm64:32"],
                "aarch64": ["aarch64:64", "arm64:64"], "x86_64": ["x86_64:64", "amd64:64"]}[machine]  # fmt: skip

    others = [
        f"        {' | '.join(f'{p}:{t.python}' for p in patterns(t.machine))})"
        f" say '; the package for it is made with --target {t.name}' ;;"
        for t in TARGETS.values()
    ]
    return " | ".join(patterns(target.machine)), "\n".join(others)


def _write_scripts(
    target: Target, folder: Path, runtime: Path, bundle: Path, wheels: list[Path], pip_wheel: Path
) -> None:
    # The id `mnist-edge-runtime --version` prints: the packaged manifest's SHA-256, short.
    bundle_id = hashlib.sha256(packaged.packaged_files(bundle)["manifest.json"]).hexdigest()[:12]
    version = runtime.name.split("-")[1]
    needed_mb = installed_mb(wheels)
    accept, others = _shell_cases(target)
    packages = " ".join(target.debian_packages)
    system_names = " and ".join({"pillow": "Pillow"}.get(name, name) for name in target.from_system)
    bits = "32" if target.machine == "armv7l" else "64"
    install = INSTALL_SH
    for key, value in {
        "VERSION": version, "BUNDLE": bundle_id, "SYSTEM": target.system, "MACHINE": target.machine,
        "PYTHON": target.python, "NEEDED_MB": str(needed_mb), "PIP_WHEEL": pip_wheel.name,
        "CPU": f"{target.machine} {bits}-bit", "ACCEPT": accept, "OTHERS": others,
        "NEEDS": f", Debian's {system_names}\n(sudo apt install {packages})" if target.from_system else "",
        "SYSTEM_CHECK": SYSTEM_CHECK.format(packages=packages) if target.from_system else "",
        "VENV_OPTIONS": "--system-site-packages " if target.from_system else "",
    }.items():  # fmt: skip
        install = install.replace(f"@{key}@", value)
    assert "@" not in install.replace("$@", ""), "install.sh: a placeholder left"
    (folder / "install.sh").write_text(install)
    (folder / "install.sh").chmod(0o755)
    system_step = (
        SYSTEM_STEP.format(what=system_names, machine=target.machine, wheels=system_names.replace(" and ", " or "),
                           packages=packages)
        if target.from_system else ""
    )  # fmt: skip
    first = 2 if target.from_system else 1
    steps = ("n_copy", "n_install", "n_use", "n_service", "n_upgrade", "n_remove")
    title = f"mnist-edge-runtime {version}: offline installation for {target.name}"
    (folder / "README.txt").write_text(
        README_TXT.format(
            title=title, rule="=" * len(title), name=target.name, system=target.system, machine=target.machine,
            python=target.python, version=version, bundle=bundle_id,
            models=", ".join(packaged.PACKAGED_MODELS), needed_mb=needed_mb, system_step=system_step,
            pip_wheel=pip_wheel.name, count=len(wheels), wheel_list="\n".join(f"  {w.name}" for w in wheels),
            **{step: first + i for i, step in enumerate(steps)},
        )
    )  # fmt: skip


def summary(out: Path, target_name: str, wheels: list[Path]) -> str:
    """The lines that say what was written, with the SHA-256 of SHA256SUMS (the one to compare
    on the device: it vouches for every other file)."""
    size = sum(w.stat().st_size for w in wheels) / 1e6
    sums = hashlib.sha256((out / "SHA256SUMS").read_bytes()).hexdigest()
    return (
        f"{out}/: {len(wheels)} wheels ({size:.1f} MB), install.sh, README.txt, SHA256SUMS for "
        f"{TARGETS[target_name].system}\nSHA-256 of SHA256SUMS: {sums}"
    )


def main(argv: list[str] | None = None) -> int:
    """``python3 -m mnist_edge.package``: the same as ``mnist-edge package``, from a checkout of this
    repository with nothing but Python and pip (no TensorFlow)."""

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
    print(summary(args.out, args.target, wheels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
