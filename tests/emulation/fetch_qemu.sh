#!/usr/bin/env bash
# Fetch qemu-user 10 (Debian trixie's `qemu-user` package: static binaries) without installing
# anything system-wide: `apt-get download` with a private sources list and lists folder, then
# `dpkg -x`. Bookworm's qemu 7.2 crashes ai-edge-litert >= 2.2 under emulation; 10.0 runs it.
# Cached under $MNIST_EDGE_QEMU_CACHE (default ~/.cache/mnist-edge/qemu-10); prints the folder
# that holds qemu-aarch64 and qemu-x86_64.
set -euo pipefail
cache=${MNIST_EDGE_QEMU_CACHE:-${HOME:-/tmp}/.cache/mnist-edge/qemu-10}
bin="$cache/root/usr/bin"
if [ -f "$cache/complete" ]; then echo "$bin"; exit 0; fi
rm -rf "$cache" && mkdir -p "$cache"/{lists/partial,archives/partial,debs,root}
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    > "$cache/sources.list"
apt_trixie=(-o Dir::Etc::SourceList="$cache/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o Dir::State::Lists="$cache/lists" -o Dir::Cache::archives="$cache/archives"
            -o Debug::NoLocking=1 -o APT::Sandbox::User=root -qq)
apt-get "${apt_trixie[@]}" update >&2
(cd "$cache/debs" && apt-get "${apt_trixie[@]}" download qemu-user >&2)
dpkg -x "$cache"/debs/qemu-user_*.deb "$cache/root"
rm -rf "$cache/debs" "$cache/archives" "$cache/lists"
version=$("$bin/qemu-x86_64" --version | head -n 1)
case "$version" in
    *"version 1"[0-9].*) ;;
    *) echo "fetch_qemu.sh: expected qemu 10 or newer, got: $version" >&2; exit 1 ;;
esac
touch "$cache/complete"
echo "$bin"
