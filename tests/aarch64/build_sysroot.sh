#!/usr/bin/env bash
# Build an aarch64 (Raspberry Pi 4 class) sysroot with Debian bookworm's Python 3.11, and two sets
# of aarch64 wheels beside it: numpy<2 + tflite-runtime 2.14, and numpy 2 + ai-edge-litert 2.1.6.
# No chroot, no binfmt, no root tricks: arm64 .debs are fetched by `apt-get download` with a private
# lists folder and unpacked with `dpkg -x`; wheels come from `pip install --target --platform`.
# Cached under $MNIST_EDGE_AARCH64_CACHE (default ~/.cache/mnist-edge/aarch64); prints its path.
set -euo pipefail
cache=${MNIST_EDGE_AARCH64_CACHE:-${HOME:-/tmp}/.cache/mnist-edge/aarch64}
version=v2
if [ -f "$cache/$version.complete" ]; then echo "$cache"; exit 0; fi
rm -rf "$cache" && mkdir -p "$cache"/{lists/partial,archives/partial,debs,sysroot}

apt_arm64=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Dir::State::Lists="$cache/lists"
           -o Dir::Cache::archives="$cache/archives" -o Debug::NoLocking=1 -o APT::Sandbox::User=root -qq)
apt-get "${apt_arm64[@]}" update >&2
# Python 3.11 and the C libraries its standard library and the wheels load (apt-get download does
# not follow dependencies, so they are named here).
packages=(libc6 libgcc-s1 libstdc++6 zlib1g libexpat1 libffi8 libbz2-1.0 liblzma5 libssl3
          libuuid1 libcrypt1 libsqlite3-0 libtinfo6 libncursesw6 libreadline8 libdb5.3 media-types
          python3.11-minimal libpython3.11-minimal libpython3.11-stdlib)
(cd "$cache/debs" && apt-get "${apt_arm64[@]}" download "${packages[@]}" >&2)
for deb in "$cache"/debs/*.deb; do dpkg -x "$deb" "$cache/sysroot"; done

# pip does not widen a --platform to older glibc tags by itself: list every manylinux tag up to
# bookworm's glibc 2.36.
wheels=(--only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 -q --root-user-action=ignore)
for tag in 2014 _2_17 _2_24 _2_26 _2_27 _2_28 _2_31 _2_34 _2_35 _2_36; do
    wheels+=(--platform "manylinux${tag}_aarch64")
done
python3 -m pip install "${wheels[@]}" --target "$cache/site-tflite" "numpy<2" "tflite-runtime==2.14.0" >&2
# ai-edge-litert 2.2 and 2.3 crash (SIGSEGV) when an Interpreter is created under qemu-user 7.2;
# 2.1.6 is the newest that runs there (README, "Raspberry Pi").
python3 -m pip install "${wheels[@]}" --target "$cache/site-litert" "numpy>=2" "ai-edge-litert==2.1.6" >&2
touch "$cache/$version.complete"
echo "$cache"
