#!/usr/bin/env bash
# Build a Debian bookworm sysroot holding Python 3.11, for `qemu-aarch64 -L SYSROOT` (arm64: a
# Raspberry Pi 4 class core, the default) or `qemu-arm -L SYSROOT` (armhf: 32-bit Raspberry Pi OS
# on ARMv7). No chroot, no binfmt: .debs are fetched by `apt-get download` with a private lists
# folder and unpacked with `dpkg -x`. The armhf one also holds Debian's python3-numpy with
# OpenBLAS (PyPI has no armv7l numpy): dpkg -x runs no maintainer scripts, so the BLAS
# alternatives' links are made here. Wheels are added by the callers (`pip install --target
# --platform`). Cached under $MNIST_EDGE_SYSROOT_CACHE/ARCH (default ~/.cache/mnist-edge); prints
# its path (the sysroot is its `sysroot/` folder).
#   tests/emulation/build_sysroot.sh [arm64|armhf]
set -euo pipefail
arch=${1:-arm64}
root=${MNIST_EDGE_SYSROOT_CACHE:-${HOME:-/tmp}/.cache/mnist-edge}
case "$arch" in
    arm64) cache=${MNIST_EDGE_AARCH64_CACHE:-$root/aarch64}; triplet=aarch64-linux-gnu; extra=(); version=v3 ;;
    armhf) cache=$root/armhf; triplet=arm-linux-gnueabihf
           extra=(python3-numpy libopenblas0-pthread libgfortran5 python3-pil libjpeg62-turbo libpng16-16
                  libtiff6 libwebp7 libwebpmux3 libwebpdemux2 libopenjp2-7 liblcms2-2 libfreetype6 libimagequant0
                  libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 libdeflate0 libjbig0 liblerc4 libzstd1 libbrotli1);
           version=v1 ;;
    *) echo "build_sysroot.sh: ARCH is arm64 or armhf, not $arch" >&2; exit 2 ;;
esac
if [ -f "$cache/$version.complete" ]; then echo "$cache"; exit 0; fi
rm -rf "$cache" && mkdir -p "$cache"/{lists/partial,archives/partial,debs,sysroot}

# A private sources list: Debian bookworm itself, whatever the host's sources say (a security
# mirror caught mid-sync must not fail the build).
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" \
    > "$cache/sources.list"
apt_arch=(-o APT::Architecture="$arch" -o APT::Architectures::="$arch" -o Dir::State::Lists="$cache/lists"
          -o Dir::Etc::SourceList="$cache/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o Dir::Cache::archives="$cache/archives" -o Debug::NoLocking=1 -o APT::Sandbox::User=root -qq)
apt-get "${apt_arch[@]}" update >&2
# Python 3.11 and the C libraries its standard library and the wheels load (apt-get download does
# not follow dependencies, so they are named here).
packages=(libc6 libgcc-s1 libstdc++6 zlib1g libexpat1 libffi8 libbz2-1.0 liblzma5 libssl3
          libuuid1 libcrypt1 libsqlite3-0 libtinfo6 libncursesw6 libreadline8 libdb5.3 media-types
          python3.11-minimal libpython3.11-minimal libpython3.11-stdlib "${extra[@]}")
(cd "$cache/debs" && apt-get "${apt_arch[@]}" download "${packages[@]}" >&2)
for deb in "$cache"/debs/*.deb; do dpkg -x "$deb" "$cache/sysroot"; done
if [ "$arch" = armhf ]; then
    lib="$cache/sysroot/usr/lib/$triplet"
    for so in libblas.so.3 liblapack.so.3 libopenblas.so.0; do ln -sf "openblas-pthread/$so" "$lib/$so"; done
fi
rm -rf "$cache/debs" "$cache/archives" "$cache/lists"
touch "$cache/$version.complete"
echo "$cache"
