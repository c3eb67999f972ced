"""``mnist-edge package``: the folder it writes, the folder it refuses, and every branch of the
install.sh it writes, run here with a stand-in ``python3`` (no wheels built, nothing installed)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mnist_edge import package
from mnist_edge.cli import app

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "export"

# A stand-in for the device's python3, told by the environment what it is: its version
# (FAKE_VERSION), the modules `-c 'import ...'` does not find (FAKE_MISSING), whether venv fails
# (FAKE_NO_VENV). Every call is logged, one line each; `-m venv` makes a folder with a
# pyvenv.cfg and a bin/python and bin/mnist-edge-runtime that log their calls too.
FAKE_PYTHON = r"""#!/bin/sh
echo "python3 $*" >> "$FAKE_LOG"
case "$1" in
-c)
    case "$2" in
    *version_info*) echo "$FAKE_VERSION"; exit 0 ;;
    "import "*)
        for module in $(echo "${2#import }" | tr , ' '); do
            case " ${FAKE_MISSING:-} " in *" $module "*) exit 1 ;; esac
        done
        exit 0 ;;
    esac
    exit 99 ;;
-m)
    [ "$2" = venv ] || exit 99
    [ -z "${FAKE_NO_VENV:-}" ] || { echo "Error: ensurepip is not available" >&2; exit 1; }
    for venv; do :; done
    mkdir -p "$venv/bin"
    echo "home = /usr/bin" > "$venv/pyvenv.cfg"
    printf '#!/bin/sh\necho "venv-python $*" >> "$FAKE_LOG"\n' > "$venv/bin/python"
    printf '#!/bin/sh\necho "runtime $*" >> "$FAKE_LOG"\necho "mnist-edge-runtime 9.9"\n' \
        > "$venv/bin/mnist-edge-runtime"
    chmod +x "$venv/bin/python" "$venv/bin/mnist-edge-runtime"
    exit 0 ;;
esac
exit 99
"""


def write_package(target: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """``build_package`` with the wheel build and download replaced: the scripts are the real ones."""

    def runtime_wheel(bundle: Path, wheels: Path) -> Path:
        wheel = wheels / "mnist_edge_runtime-9.9-py3-none-any.whl"
        wheel.write_bytes(b"stand-in")
        return wheel

    monkeypatch.setattr(package, "build_runtime_wheel", runtime_wheel)
    monkeypatch.setattr(package, "download_wheels", lambda target, wheels: None)
    return package.build_package(target, BUNDLE, out)


@pytest.fixture()
def fake_python(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH finds the stand-in python3 first; its log file is FAKE_LOG."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    python = bin_dir / "python3"
    python.write_text(FAKE_PYTHON)
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "FAKE_MISSING", "FAKE_NO_VENV")}
    log = tmp_path / "calls.log"
    log.touch()
    return env | {"PATH": f"{bin_dir}:{env['PATH']}", "FAKE_LOG": str(log), "HOME": str(tmp_path / "home")}


def install(folder: Path, venv: Path, env: dict[str, str], **settings: str) -> tuple[int, str, list[str]]:
    """Run the folder's install.sh: exit code, stderr, and the calls the stand-ins logged."""
    done = subprocess.run(
        ["sh", str(folder / "install.sh"), str(venv)],
        env=env | settings,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stderr, Path(env["FAKE_LOG"]).read_text().splitlines()


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The 32-bit and a 64-bit package folder, scripts only."""
    root = tmp_path_factory.mktemp("packages")
    folders = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for target in ("pi-bookworm-32", "pi-bookworm-64"):
            write_package(target, root / target, monkeypatch)
            folders[target] = root / target
    return folders


def test_the_folder_holds_wheels_install_sh_and_a_readme(packages):
    folder = packages["pi-bookworm-32"]
    assert sorted(p.name for p in folder.iterdir()) == ["README.txt", "install.sh", "wheels"]
    assert os.access(folder / "install.sh", os.X_OK)
    readme = (folder / "README.txt").read_text()
    assert "sudo apt install python3-numpy python3-pil python3-venv" in readme
    assert "mnist_edge_runtime-9.9-py3-none-any.whl" in readme
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_32_bit_uses_debians_numpy_and_pillow(packages, fake_python, tmp_path):
    venv = tmp_path / "venv"
    code, err, calls = install(packages["pi-bookworm-32"], venv, fake_python, FAKE_VERSION="3.11")
    assert code == 0, err
    assert "python3 -c import numpy, PIL" in calls  # asked before anything is made
    assert f"python3 -m venv --system-site-packages {venv}" in calls
    pip = [c for c in calls if c.startswith("venv-python -m pip install")]
    assert pip == [
        f"venv-python -m pip install --quiet --no-index --find-links {packages['pi-bookworm-32']}/wheels "
        "mnist-edge-runtime[tflite,images,serve]"
    ]
    assert calls[-1] == "runtime --version"


@pytest.mark.parametrize("missing", ["numpy", "PIL", "numpy PIL"])
def test_32_bit_without_debians_numpy_or_pillow_stops_before_making_anything(
    packages, fake_python, tmp_path, missing
):
    venv = tmp_path / "venv"
    code, err, calls = install(
        packages["pi-bookworm-32"], venv, fake_python, FAKE_VERSION="3.11", FAKE_MISSING=missing
    )
    assert code == 2
    assert err.splitlines() == [
        "install.sh: needs Debian's numpy and Pillow: sudo apt install python3-numpy python3-pil python3-venv"
    ]
    assert not venv.exists() and not any("venv" in c for c in calls)


def test_64_bit_makes_a_plain_environment_without_asking_for_numpy(packages, fake_python, tmp_path):
    venv = tmp_path / "venv"
    code, err, calls = install(
        packages["pi-bookworm-64"], venv, fake_python, FAKE_VERSION="3.11", FAKE_MISSING="numpy PIL"
    )
    assert code == 0, err
    assert f"python3 -m venv {venv}" in calls
    assert not any("import numpy" in c for c in calls)
    assert any(c.endswith("mnist-edge-runtime[litert,images,serve]") for c in calls)


@pytest.mark.parametrize("target", ["pi-bookworm-32", "pi-bookworm-64"])
@pytest.mark.parametrize("version", ["3.13", "3.1", "3.110", "2.7"])
def test_another_python_version_is_refused(packages, fake_python, tmp_path, target, version):
    venv = tmp_path / "venv"
    code, err, calls = install(packages[target], venv, fake_python, FAKE_VERSION=version)
    assert code == 2
    system = package.TARGETS[target].system
    assert err.splitlines() == [
        f"install.sh: this package is for Python 3.11 ({system}); python3 is {version}"
    ]
    assert not venv.exists() and len(calls) == 1  # the version question only


def test_no_python_at_all(packages, fake_python, tmp_path):
    code, err, _ = install(
        packages["pi-bookworm-64"], tmp_path / "venv", fake_python, PYTHON="/nowhere/python3"
    )
    assert code == 2 and err.splitlines() == ["install.sh: no /nowhere/python3 here"]


@pytest.mark.parametrize("target", ["pi-bookworm-32", "pi-bookworm-64"])
def test_a_folder_that_is_not_a_virtual_environment_is_left_alone(packages, fake_python, tmp_path, target):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"mine")
    code, err, calls = install(packages[target], folder, fake_python, FAKE_VERSION="3.11")
    assert code == 2
    assert err.splitlines() == [
        f"install.sh: {folder} exists and is not a virtual environment; name another folder"
    ]
    assert [p.name for p in folder.iterdir()] == ["holiday.jpg"] and not any("venv" in c for c in calls)
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    code, err, _ = install(packages[target], file, fake_python, FAKE_VERSION="3.11")
    assert code == 2 and "exists and is not a virtual environment" in err and file.read_text() == "mine"


def test_an_existing_virtual_environment_is_installed_into(packages, fake_python, tmp_path):
    venv = tmp_path / "venv"
    assert install(packages["pi-bookworm-64"], venv, fake_python, FAKE_VERSION="3.11")[0] == 0
    code, err, calls = install(packages["pi-bookworm-64"], venv, fake_python, FAKE_VERSION="3.11")
    assert code == 0, err
    assert calls.count(f"python3 -m venv {venv}") == 2


def test_no_venv_module_is_one_line(packages, fake_python, tmp_path):
    code, err, _ = install(
        packages["pi-bookworm-64"], tmp_path / "venv", fake_python, FAKE_VERSION="3.11", FAKE_NO_VENV="1"
    )
    assert code == 2
    assert (
        err.splitlines()[-1]
        == "install.sh: cannot make a virtual environment (sudo apt install python3-venv)"
    )


def test_the_default_place_is_mnist_edge_in_home(packages, fake_python):
    done = subprocess.run(
        ["sh", str(packages["pi-bookworm-64"] / "install.sh")],
        env=fake_python | {"FAKE_VERSION": "3.11"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    home = Path(fake_python["HOME"])
    assert (home / "mnist-edge" / "pyvenv.cfg").is_file()
    assert done.stdout.splitlines()[-1].startswith(f"installed: {home}/mnist-edge/bin/mnist-edge-runtime")


# --- --out: a new folder, never an existing one ------------------------------------------------


def test_package_refuses_an_existing_folder_and_leaves_it_untouched(tmp_path, monkeypatch):
    def never(*args: object) -> None:
        raise AssertionError("nothing may be built for a folder that exists")

    monkeypatch.setattr(package, "build_runtime_wheel", never)
    monkeypatch.setattr(package, "download_wheels", never)
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
