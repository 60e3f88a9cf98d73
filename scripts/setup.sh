#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for Xenolith: Debian packages, the guest
# kit (built from Debian's packages into the cache), the Debian disk image
# (debootstrap; the disk tests boot it) and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in lz4 cpio busybox-static libxen-dev binutils xenstore-utils e2fsprogs debootstrap iproute2 acpica-tools libssl-dev openssl curl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
fi
if ! command -v swift >/dev/null 2>&1; then
    [ -x /opt/swift/usr/bin/swift ] && export PATH=/opt/swift/usr/bin:$PATH
fi
command -v swift >/dev/null 2>&1 || { echo "setup: a Swift 6 toolchain is required (swift not found)" >&2; exit 1; }

bash scripts/build-kit.sh >/dev/null
bash scripts/build-rootfs.sh >/dev/null
swift build -c release --product xeno --static-swift-stdlib >&2
echo "setup: done; binary at $(swift build -c release --show-bin-path)/xeno" >&2
