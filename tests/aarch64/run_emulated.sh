#!/usr/bin/env bash
# Run mnist-edge-runtime on emulated aarch64 (qemu-user, Cortex-A72 = Raspberry Pi 4) and check
# that both int8 models predict exactly what they predict on this x86_64 machine.
#
#   tests/aarch64/run_emulated.sh X86_TFLITE_PYTHON X86_LITERT_PYTHON [IMAGES]
#
# The two Pythons are x86_64 environments with mnist-edge-runtime and, respectively,
# tflite-runtime 2.14 and ai-edge-litert installed. IMAGES (default 2000) test images are used.
# Needs qemu-user-static (Debian package); the sysroot is built and cached by build_sysroot.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
x86_tflite=$1
x86_litert=$2
limit=${3:-2000}
command -v qemu-aarch64-static >/dev/null || { echo "qemu-aarch64-static missing: apt-get install qemu-user-static" >&2; exit 2; }
cache=$("$here/build_sysroot.sh")
out=$(mktemp -d)
mnist="$repo/mnist_edge/datasets/mnist"
eval_args=(eval --images "$mnist/t10k-images-idx3-ubyte.gz" --labels "$mnist/t10k-labels-idx1-ubyte.gz" --limit "$limit")

arm() {  # arm SITE ARGS...: the runtime under emulation, with the wheels in SITE
    local site=$1
    shift
    PYTHONPATH="$cache/$site:$repo/runtime" qemu-aarch64-static -cpu cortex-a72 -L "$cache/sysroot" \
        "$cache/sysroot/usr/bin/python3.11" -m mnist_edge_runtime "$@"
}

status=0
for backend in tflite litert; do
    x86_python=$x86_tflite
    [ "$backend" = litert ] && x86_python=$x86_litert
    for model in conv2d.int8.tflite flat.int8.tflite; do
        arm "site-$backend" "${eval_args[@]}" --model "$repo/export/$model" --predictions "$out/arm.json" | tail -n 1
        "$x86_python" -m mnist_edge_runtime "${eval_args[@]}" --model "$repo/export/$model" \
            --predictions "$out/x86.json" >/dev/null 2>&1
        python3 - "$out/arm.json" "$out/x86.json" "$model" "$backend" <<'PY' || status=1
import json, sys
arm, x86 = (json.load(open(p))[sys.argv[3]] for p in sys.argv[1:3])
differ = [i for i, (a, b) in enumerate(zip(arm, x86)) if a != b]
print(f"  {sys.argv[4]}: aarch64 and x86_64 predictions of {len(arm)} images: "
      + ("identical" if not differ and len(arm) == len(x86) else f"DIFFER at {differ[:20]}"))
sys.exit(1 if differ or len(arm) != len(x86) else 0)
PY
    done
done
rm -rf "$out"
exit $status
