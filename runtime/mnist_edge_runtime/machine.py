"""Which machine a figure was measured on: CPU model, the instruction sets int8 kernels use, interpreters.

int8 arithmetic, speed and (before this project pinned them down) even predictions depend on the
CPU's instruction set: x86 kernels take different paths with AVX2, AVX-512 and VNNI (8-bit dot
products), Arm kernels with the dot-product extension (``asimddp``). So every accuracy in a
manifest and every benchmark names the machine it came from, in the form built here.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

# The CPU flags that select different int8 / float kernels in XNNPACK, onnxruntime's MLAS and ruy.
KERNEL_FEATURES = (
    # x86_64
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "amx_int8",
    # aarch64
    "asimd",
    "asimddp",
    "i8mm",
    "sve",
)
INTERPRETERS = ("ai-edge-litert", "tflite-runtime", "onnxruntime", "tflite-micro", "numpy")
# Arm Linux names a core only by part number (implementer 0x41 = Arm): the Raspberry Pi ones.
ARM_CORES = {"0xd03": "Cortex-A53", "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76", "0xd05": "Cortex-A55"}


def _cpuinfo() -> dict[str, str]:
    """The first processor's block of /proc/cpuinfo (Linux); empty elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            return parse_cpuinfo(f.read())
    except OSError:
        return {}


def parse_cpuinfo(text: str) -> dict[str, str]:
    info: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if info.get("flags") or info.get("Features"):
                break  # one processor is enough
            continue
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return info


def cpu_description() -> dict:
    """CPU model and kernel-relevant features of this machine, e.g. for a manifest or a benchmark."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    model = info.get("model name") or info.get("Model") or platform.processor() or ""
    if not model and "CPU part" in info:  # Arm Linux names the core by implementer and part number
        part = info["CPU part"]
        model = f"{ARM_CORES.get(part, 'Arm core')} (implementer {info.get('CPU implementer')}, part {part})"
    return {
        "machine": platform.machine(),
        "model": model or "unknown",
        "features": [f for f in KERNEL_FEATURES if f in flags],
    }


def cpu_slug(info: dict[str, str] | None = None, cores: int | None = None) -> str:
    """A results file name part for this CPU that another CPU cannot share: the model name, the
    family, model and stepping (x86) or implementer, part, variant and revision (Arm), the core
    count, and a hash of all of that with every flag. Two VMs both called "Intel(R) Xeon(R)
    Processor" differ in one of these; the same CPU class gets the same name (its latest results)."""
    import hashlib
    import os
    import re

    info = _cpuinfo() if info is None else info
    cores = (os.cpu_count() or 1) if cores is None else cores
    model = info.get("model name") or info.get("Model") or platform.processor() or platform.machine()
    ids = [info[k] for k in ("cpu family", "model", "stepping") if k in info]
    ids += [info[k] for k in ("CPU implementer", "CPU part", "CPU variant", "CPU revision") if k in info]
    flags = sorted(set((info.get("flags") or info.get("Features") or "").split()))
    digest = hashlib.sha256("\n".join([model, *ids, str(cores), *flags]).encode()).hexdigest()[:6]
    parts = [model[:40], *ids, f"{cores}cpu", digest]
    return "-".join(filter(None, (re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-") for part in parts)))


def interpreter_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in INTERPRETERS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def describe_machine() -> dict:
    """``{"cpu": {...}, "interpreters": {...}}``: where a figure was measured."""
    return {"cpu": cpu_description(), "interpreters": interpreter_versions()}


def one_line(machine: dict | None) -> str:
    """A machine description in one line, e.g. ``x86_64 Intel Xeon (avx2 avx512_vnni); litert 2.3.0``."""
    if not machine:
        return "not recorded"
    cpu = machine.get("cpu") or {}
    features = " ".join(cpu.get("features") or []) or "no listed features"
    interpreters = machine.get("interpreters") or {}
    used = ", ".join(f"{k} {v}" for k, v in interpreters.items() if k != "python")
    return f"{cpu.get('machine', '?')} {cpu.get('model', '?')} ({features}); {used or 'no interpreter'}"
