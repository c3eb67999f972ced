"""Versions of the packages that produced a result, for run records and manifests."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

TOOLCHAIN_PACKAGES = (
    "mnist-edge",
    "mnist-edge-runtime",
    "tensorflow",
    "tf-keras",
    "tensorflow-model-optimization",
    "tf2onnx",
    "onnx",
    "onnxruntime",
    "ai-edge-litert",
    "numpy",
)


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in TOOLCHAIN_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
