#!/usr/bin/env bash
# Build an aarch64 (Raspberry Pi 4 class) sysroot holding Debian bookworm's Python 3.11, for
# `qemu-aarch64 -L SYSROOT`. No chroot, no binfmt: arm64 .debs are fetched by `apt-get download`
# with a private lists folder and unpacked with `dpkg -x`. The wheels to run with it are added by
# cpu_matrix.py (`pip install --target --platform`), matching the versions of the x86_64 run.
# Cached under $MNIST_EDGE_AARCH64_CACHE (default ~/.cache/mnist-edge/aarch64); prints its path.
set -euo pipefail
cache=${MNIST_EDGE_AARCH64_CACHE:-${HOME:-/tmp}/.cache/mnist-edge/aarch64}
version=v3
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
rm -rf "$cache/debs" "$cache/archives" "$cache/lists"
touch "$cache/$version.complete"
echo "$cache"
