"""The instruction-set matrix: do the int8 models predict the same on every CPU class?

    python tests/emulation/cpu_matrix.py --litert-python P1 --tflite-python P2 [--tflm-python P3]
        [--images N] [--json FILE] [--forms N]

P1 is an x86_64 Python with mnist-edge-runtime, ai-edge-litert and onnxruntime; P2 one with
mnist-edge-runtime and tflite-runtime 2.14 (numpy < 2); P3, optional, the toolchain's, with
tflite-micro, for the microcontroller C sources (x86_64 CPUs only: tflite-micro has no aarch64
wheels). Each int8 artifact of ``export/`` runs on
the first N test images (default 2,000) in each interpreter set-up on:

* this machine's CPU, natively (the reference);
* an SSE4.2-only x86_64 CPU (``qemu-x86_64 -cpu Nehalem``) and an AVX2 one (``-cpu Haswell-noTSX``);
  qemu's TCG has no AVX-512 or VNNI, so those paths are covered only where the native CPU has them;
* a Raspberry Pi 4 core (``qemu-aarch64 -cpu cortex-a72``, no dot-product instructions) and a
  Raspberry Pi 5 core (``-cpu cortex-a76``, with them), with Debian's aarch64 Python and the
  aarch64 wheels of the very versions the x86_64 Python has;
* for tflite-runtime, a 32-bit ARMv7 core (``qemu-arm -cpu cortex-a7``: 32-bit Raspberry Pi OS)
  with Debian bookworm's armhf Python 3.11 and python3-numpy 1.24 (PyPI has no armv7l numpy).

With ``--forms N``, preprocessing's 28x28 output for N validation digits in every input form of
``runtime/tests/forms.py`` (``dump_forms.py``) must be pixel-identical on the x86_64 CPUs too, so
the "not sure" rule's bounds and the input-form floors hold on every CPU class.

Every run is compared image by image with the native run of the same interpreter, and the largest
score difference is reported. The top-1 prediction must be identical on every image for
ai-edge-litert and tflite-micro, whose int8 arithmetic is CPU-independent; onnxruntime and
tflite-runtime 2.14 may differ on at most their parity tolerance, 0.05% of the 10,000 test
images (5 images, in a run on the first N too: those N may hold every one of them; onnxruntime's
aarch64 kernels and tflite-runtime's SSE4.2 ones round differently; docs/parity.md). Exit 1
beyond that. qemu-user 10 and the aarch64 sysroot are fetched and cached by the scripts beside
this.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mnist_edge_runtime.bundle import parity_tolerance
from mnist_edge_runtime.idx import read_images_and_labels

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # one-line errors, as the benchmarks give
from script_parser import script_parser  # noqa: E402

MNIST = REPO / "mnist_edge" / "datasets" / "mnist"
TEST_IMAGES = 10_000  # the set a parity tolerance is a share of
INT8_TFLITE = ["conv2d.int8.tflite", "flat.int8.tflite"]
INT8_ONNX = ["conv2d.int8.onnx", "flat.int8.onnx"]
INT8_TFLM = ["conv2d.int8.tflm.c", "flat.int8.tflm.c"]
# pip does not widen --platform to older glibc tags by itself: every manylinux tag up to bookworm's 2.36.
AARCH64_PLATFORMS = [
    f"manylinux{tag}_aarch64"
    for tag in ("2014", "_2_17", "_2_24", "_2_26", "_2_27", "_2_28", "_2_31", "_2_34", "_2_35", "_2_36")
]


@dataclass(frozen=True)
class Setup:
    """One interpreter set-up: the x86_64 Python that has it, and the artifacts it runs."""

    name: str  # the runtime's backend name for .tflite files
    python: str
    packages: tuple[str, ...]  # installed for aarch64 at the versions the x86_64 Python has
    models: tuple[str, ...]
    arm: bool = True  # also run on the emulated Cortex-A72 (needs aarch64 wheels)
    armv7: bool = False  # also on an emulated 32-bit Cortex-A7 (armv7l wheels, Debian's numpy)

    def cpus(self, only: list[str] | None = None) -> list[Cpu]:
        """The native CPU first, then each emulated class this set-up runs on (those whose name
        contains one of ``only``, when given)."""
        wanted = (
            {None, "x86_64"} | ({"aarch64"} if self.arm else set()) | ({"armv7l"} if self.armv7 else set())
        )
        chosen = [cpu for cpu in CPUS if cpu.emulated_arch in wanted]
        wanted_names = [o.lower() for o in only or []]
        return [
            c
            for c in chosen
            if c.emulated_arch is None or not only or any(o in c.name.lower() for o in wanted_names)
        ]


@dataclass(frozen=True)
class Cpu:
    name: str
    emulated_arch: str | None  # None: native; else "x86_64" or "aarch64"
    qemu_cpu: str | None = None
    # OpenBLAS's name for the emulated core. A host may set OPENBLAS_CORETYPE for its own CPU
    # (Haswell on some AMD EPYCs); inherited by an emulated Nehalem, numpy dies of SIGILL.
    openblas_coretype: str | None = None


CPUS = [
    Cpu("native", None),
    Cpu("x86_64 Nehalem (SSE4.2, no AVX)", "x86_64", "Nehalem", "NEHALEM"),
    Cpu("x86_64 Haswell (AVX2, FMA)", "x86_64", "Haswell-noTSX", "HASWELL"),
    Cpu("aarch64 Cortex-A72 (Pi 4)", "aarch64", "cortex-a72", "CORTEXA72"),
    # The Pi 5's core has the dot-product instructions (SDOT/UDOT) that XNNPACK's int8 kernels
    # take when present: another code path from the Pi 4's. OpenBLAS names it as the Neoverse N1.
    Cpu("aarch64 Cortex-A76 (Pi 5)", "aarch64", "cortex-a76", "NEOVERSEN1"),
    Cpu("armv7l Cortex-A7 (32-bit Raspberry Pi OS)", "armv7l", "cortex-a7", "ARMV7"),
]


def run(command: list[str], env: dict | None = None) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(
            f"cpu_matrix: {' '.join(command[:4])} ... failed ({done.returncode}):\n{done.stderr[-2000:]}"
        )
    return done.stdout.strip()


def installed_versions(python: str, packages: tuple[str, ...]) -> dict[str, str]:
    code = "import sys, json; from importlib.metadata import version; print(json.dumps({p: version(p) for p in sys.argv[1:]}))"
    return json.loads(run([python, "-c", code, *packages]))


def aarch64_site(sysroot: Path, versions: dict[str, str]) -> Path:
    """aarch64 wheels of exactly ``versions``, installed once into a cached folder."""
    pins = sorted(f"{name}=={v}" for name, v in versions.items())
    site = sysroot / f"site-{hashlib.sha256(' '.join(pins).encode()).hexdigest()[:12]}"
    if not (site / ".complete").exists():
        platforms = [arg for tag in AARCH64_PLATFORMS for arg in ("--platform", tag)]
        run(
            [sys.executable, "-m", "pip", "install", "-q", "--only-binary=:all:", "--implementation", "cp"]
            + ["--python-version", "3.11", "--abi", "cp311", *platforms, "--target", str(site), *pins]
        )
        (site / ".complete").touch()
    return site


def armv7_site(sysroot: Path, versions: dict[str, str]) -> Path:
    """armv7l wheels of ``versions`` less numpy (PyPI has none: Debian's python3-numpy is in the sysroot)."""
    pins = sorted(f"{name}=={v}" for name, v in versions.items() if name != "numpy")
    site = sysroot / f"site-{hashlib.sha256(' '.join(pins).encode()).hexdigest()[:12]}"
    if not (site / ".complete").exists():
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--only-binary=:all:",
                "--no-deps",
                "--implementation",
                "cp",
            ]
            + ["--python-version", "3.11", "--abi", "cp311", "--platform", "manylinux_2_34_armv7l"]
            + ["--platform", "linux_armv7l", "--target", str(site), *pins]
        )
        (site / ".complete").touch()
    return site


def command_for(
    cpu: Cpu, setup: Setup, qemu: Path, sysroot: Path, site: Path | None
) -> tuple[list[str], dict]:
    env = dict(os.environ)
    if cpu.emulated_arch is None:
        return [setup.python], env
    env["OPENBLAS_CORETYPE"] = cpu.openblas_coretype
    if cpu.emulated_arch == "x86_64":
        return [str(qemu / "qemu-x86_64"), "-cpu", cpu.qemu_cpu, setup.python], env
    env["PYTHONPATH"] = f"{site}{os.pathsep}{REPO / 'runtime'}"
    qemu_binary = "qemu-arm" if cpu.emulated_arch == "armv7l" else "qemu-aarch64"
    emulator = [str(qemu / qemu_binary), "-cpu", cpu.qemu_cpu, "-L", str(sysroot / "sysroot")]
    return [*emulator, str(sysroot / "sysroot/usr/bin/python3.11")], env


def compare(
    reference: np.lib.npyio.NpzFile,
    other: np.lib.npyio.NpzFile,
    model: str,
    labels: np.ndarray,
    tolerance: float,
) -> dict:
    """One emulated run of ``model`` against the native one: top-1 differences, accuracies, score differences.

    ``tolerance`` is the interpreter's parity tolerance (mnist_edge_runtime.bundle.parity_tolerance):
    0 for int8 on ai-edge-litert, so a single differing image fails. It is a share of the 10,000
    test images, so the allowance is that many images whatever the run's count: the first 500 may
    hold every image that differs on all 10,000 (tflite-runtime's #247 on SSE4.2 is one).
    """
    raw_equal = bool(np.array_equal(reference[f"raw:{model}"], other[f"raw:{model}"]))
    reference, other = reference[model], other[model]
    differ = np.flatnonzero(reference.argmax(axis=1) != other.argmax(axis=1))
    return {
        "images": len(reference),
        "top1_differences": len(differ),
        "differing_images": differ[:20].tolist(),
        "allowed_differences": min(len(reference), int(np.floor(tolerance * TEST_IMAGES + 1e-9))),
        "accuracy_native": float(np.mean(reference.argmax(axis=1) == labels)),
        "accuracy": float(np.mean(other.argmax(axis=1) == labels)),
        "max_abs_score_diff": float(np.max(np.abs(reference - other))) if len(reference) else 0.0,
        "bit_identical": bool(np.array_equal(reference, other)),
        "raw_outputs_bit_identical": raw_equal,  # the interpreter's own output, before the activation
    }


def dump_scores(
    cpu: Cpu, setup: Setup, paths: dict, images: int, out: Path
) -> tuple[np.lib.npyio.NpzFile, float]:
    """Run dump_scores.py for one (CPU, interpreter) pair; returns its scores and the seconds it took."""
    armv7 = cpu.emulated_arch == "armv7l"
    sites, sysroot = (paths["site_armv7"], paths["armhf"]) if armv7 else (paths["site"], paths["sysroot"])
    command, env = command_for(cpu, setup, paths["qemu"], sysroot, sites.get(setup.name))
    models = [str(REPO / "export" / m) for m in setup.models]
    started = time.perf_counter()
    run([*command, str(HERE / "dump_scores.py"), str(out), setup.name, str(images), *models], env)
    return np.load(out), time.perf_counter() - started


def main() -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--litert-python", required=True)
    parser.add_argument("--tflite-python", required=True)
    parser.add_argument("--tflm-python", help="the toolchain's Python, to add the TFLM C sources")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--md", type=Path, help="also write the results as a Markdown table here")
    parser.add_argument(
        "--cpu", action="append", metavar="TEXT",
        help="run only the emulated classes whose name contains TEXT (repeatable; e.g. A76, Haswell)",
    )  # fmt: skip
    parser.add_argument(
        "--forms", type=int, default=0, metavar="N",
        help="also compare preprocessing's 28x28 output for N validation digits per input form (x86)",
    )  # fmt: skip
    args = parser.parse_args()
    for text in args.cpu or []:
        if not any(text.lower() in cpu.name.lower() for cpu in CPUS[1:]):
            names = ", ".join(c.name for c in CPUS[1:])
            print(
                f"cpu_matrix.py: error: --cpu {text}: no emulated CPU class has it in its name ({names})",
                file=sys.stderr,
            )
            return 2

    setups = [
        Setup(
            "litert",
            args.litert_python,
            ("numpy", "ai-edge-litert", "onnxruntime"),
            (*INT8_TFLITE, *INT8_ONNX),
        ),
        Setup(
            "tflite-runtime", args.tflite_python, ("numpy", "tflite-runtime"), tuple(INT8_TFLITE), armv7=True
        ),
    ]
    if args.tflm_python:
        setups.append(
            Setup("tflite-micro", args.tflm_python, ("numpy", "tflite-micro"), tuple(INT8_TFLM), arm=False)
        )
    paths = {
        "qemu": Path(run([str(HERE / "fetch_qemu.sh")])),
        "sysroot": Path(run([str(HERE / "build_sysroot.sh")])),
    }
    versions = {s.name: installed_versions(s.python, s.packages) for s in setups}
    paths["site"] = {s.name: aarch64_site(paths["sysroot"], versions[s.name]) for s in setups if s.arm}
    if any(s.armv7 for s in setups):
        paths["armhf"] = Path(run([str(HERE / "build_sysroot.sh"), "armhf"]))
        paths["site_armv7"] = {
            s.name: armv7_site(paths["armhf"], versions[s.name]) for s in setups if s.armv7
        }
    describe = "import json, mnist_edge_runtime.machine as m; print(json.dumps(m.describe_machine()))"
    native = json.loads(run([args.litert_python, "-c", describe]))
    cpu = native["cpu"]
    _, labels = read_images_and_labels(
        MNIST / "t10k-images-idx3-ubyte.gz", MNIST / "t10k-labels-idx1-ubyte.gz"
    )
    labels = labels[: args.images]
    print(f"native CPU: {cpu['model']} ({' '.join(cpu['features'])}); {args.images} test images")

    rows = []
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        # Each run is one single-threaded process: as many run at once as there are cores.
        jobs = {
            (setup.name, cpu.name): pool.submit(
                dump_scores, cpu, setup, paths, args.images, Path(tmp, f"{setup.name}-{cpu.qemu_cpu}.npz")
            )
            for setup in setups
            for cpu in setup.cpus(args.cpu)
        }
        for setup in setups:
            reference, _ = jobs[(setup.name, "native")].result()
            for cpu in setup.cpus(args.cpu)[1:]:
                scores, seconds = jobs[(setup.name, cpu.name)].result()
                for model in setup.models:
                    # An .onnx file runs on onnxruntime whatever the set-up's .tflite interpreter.
                    backend = "onnxruntime" if model.endswith(".onnx") else setup.name
                    tolerance = parity_tolerance(backend, "int8")
                    row = {"interpreter": setup.name, "versions": versions[setup.name], "cpu": cpu.name}
                    row |= {"artifact": model, **compare(reference, scores, model, labels, tolerance)}
                    rows.append({**row, "seconds": round(seconds, 1)})
                    _print_row(row)
    forms_differ = compare_forms(setups[0], paths, args.forms) if args.forms else []
    if args.json:
        result = {"native": native, "images": args.images, "rows": rows}
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.md:
        args.md.write_text(markdown(native, args.images, rows, " ".join(sys.argv[1:])))
    failed = [r for r in rows if r["top1_differences"] > r["allowed_differences"]]
    identical = all(r["top1_differences"] == 0 for r in rows)
    print(
        "every top-1 prediction identical to native"
        if identical
        else f"{len(failed)} runs differ from native beyond their interpreter's tolerance"
        if failed
        else "differences within the interpreters' tolerances (tflite-runtime: 0.05% of images)"
    )
    return 1 if failed or forms_differ else 0


def compare_forms(setup: Setup, paths: dict, digits: int) -> list[str]:
    """Preprocessing's MNIST-form images of every input form (``dump_forms.py``) on each x86 CPU
    against native: the CPUs on which any pixel differs."""
    differ = []
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {}
        for cpu in [c for c in CPUS if c.emulated_arch in (None, "x86_64")]:
            command, env = command_for(cpu, setup, paths["qemu"], paths["sysroot"], None)
            outputs[cpu.name] = Path(tmp, f"forms-{cpu.qemu_cpu}.npz")
            run([*command, str(HERE / "dump_forms.py"), str(outputs[cpu.name]), str(digits)], env)
        native = np.load(outputs["native"])
        for name, path in list(outputs.items())[1:]:
            other = np.load(path)
            changed = [form for form in native.files if not np.array_equal(native[form], other[form])]
            print(
                f"  preprocessing  {name:<32} {len(native.files)} input forms x {digits} pictures: "
                + (f"pixels differ in {', '.join(changed)}" if changed else "identical 28x28 images")
            )
            differ += [name] if changed else []
    return differ


def markdown(native: dict, images: int, rows: list[dict], command: str) -> str:
    """The results as one table: a row per interpreter and artifact, a column per emulated CPU."""
    cpu = native["cpu"]
    columns = list(dict.fromkeys(r["cpu"] for r in rows))
    artifacts = list(dict.fromkeys((r["interpreter"], r["artifact"]) for r in rows))
    cells = {(r["interpreter"], r["artifact"], r["cpu"]): r for r in rows}

    def cell(r: dict | None) -> str:
        if r is None:
            return "not run"
        if r["top1_differences"]:
            same = f"**{r['top1_differences']} differ** ({r['accuracy']:.2%})"
        else:
            same = "same top-1"
        exact = "bit-identical" if r["bit_identical"] else f"scores ±{r['max_abs_score_diff']:.2g}"
        return f"{same}; {exact}"

    lines = [
        "# Instruction-set matrix",
        "",
        f"Native CPU: {cpu['model']} ({cpu['machine']}; {' '.join(cpu['features'])}); {images} MNIST test",
        f"images. Command: `python tests/emulation/cpu_matrix.py {command}`.",
        "",
        "Each cell compares the emulated CPU's run with the native run of the same interpreter: "
        '"same top-1" means every prediction is the same, "bit-identical" that every score is too, '
        '"scores ±x" the largest score difference.',
        "",
        "| interpreter | artifact | native accuracy | " + " | ".join(columns) + " |",
        "| --- | --- | ---: | " + " | ".join("---" for _ in columns) + " |",
    ]
    for interpreter, artifact in artifacts:
        first = next(r for r in rows if (r["interpreter"], r["artifact"]) == (interpreter, artifact))
        onnx = artifact.endswith(".onnx")  # runs on onnxruntime whatever the set-up's .tflite interpreter
        version = " ".join(
            f"{k} {v}" for k, v in first["versions"].items() if k != "numpy" and (k == "onnxruntime") == onnx
        )
        row = [version, artifact, f"{first['accuracy_native']:.2%}"]
        row += [cell(cells.get((interpreter, artifact, c))) for c in columns]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _print_row(r: dict) -> None:
    if r["top1_differences"] == 0:
        verdict = "identical top-1"
    else:
        allowed = "within" if r["top1_differences"] <= r["allowed_differences"] else "BEYOND"
        verdict = (
            f"top-1 differs on {r['top1_differences']} ({allowed} the {r['allowed_differences']} allowed): "
            f"images {r['differing_images']}"
        )
    raw = "bit-identical raw outputs" if r["raw_outputs_bit_identical"] else "raw outputs differ"
    if r["bit_identical"]:
        exact = f", {raw} and scores"
    else:
        exact = f", {raw}; max |score diff| {r['max_abs_score_diff']:.3g}"
    print(
        f"  {r['interpreter']:<14} {r['cpu']:<32} {r['artifact']:<18} {r['images']} images, "
        f"accuracy {r['accuracy']:.2%} (native {r['accuracy_native']:.2%}): {verdict}{exact}"
    )


if __name__ == "__main__":
    sys.exit(main())
