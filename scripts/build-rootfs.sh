#!/usr/bin/env bash
# Build a small Debian system (bookworm, systemd) as a raw ext4 image for
# Xenolith guests: a file system image with no partition table, meant to be
# the guest's whole disk (/dev/xvda in PV, /dev/vda in HVM).
#
#   sudo scripts/build-rootfs.sh     # -> ${XENOLITH_CACHE:-/var/cache/xenolith}/images/bookworm.ext4
#   xeno run --disk IMAGE --cmdline 'console=hvc0 root=/dev/xvda'
#
# The image path is the only thing printed on stdout (last line), so callers
# can do IMG=$(scripts/build-rootfs.sh). Progress goes to stderr.
# Rebuilds only when this script, the mirror or the size change (recorded in
# bookworm.ext4.stamp); XENOLITH_ROOTFS_REBUILD=1 forces a rebuild. A rebuild
# replaces the image, and with it anything a guest wrote there.
#
# The system has no kernel and no modules: the kit's kernel boots it, and the
# kit initramfs loads the block driver and switches to it (scripts/kit/init).
# Environment: XENOLITH_CACHE, XENOLITH_ROOTFS_SIZE (default 2G, sparse),
# XENOLITH_MIRROR (default: the host's bookworm mirror from apt's sources).
set -euo pipefail

# Keep stdout clean for the final path: everything else, including the
# output of the tools we call, goes to stderr.
exec 3>&1 1>&2

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
CACHE=${XENOLITH_CACHE:-/var/cache/xenolith}
SUITE=bookworm
IMAGES=$CACHE/images
IMAGE=$IMAGES/$SUITE.ext4
STAMP=$IMAGE.stamp
SIZE=${XENOLITH_ROOTFS_SIZE:-2G}
FALLBACK_MIRROR=http://deb.debian.org/debian
# On top of debootstrap's minbase: an init system, device manager, the
# network tools, ps/free, fsck for a root mounted with `ro`, and fio and
# iperf3 for the guest I/O benchmarks (bench/pv_io.py).
INCLUDE=systemd-sysv,udev,iproute2,procps,e2fsprogs,fio,iperf3

log() { echo "build-rootfs: $*"; }
die() { echo "build-rootfs: error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot)"

mkdir -p "$IMAGES"
# One builder at a time; a second caller waits and then finds the image fresh.
exec 9>"$IMAGES/$SUITE.lock"
flock 9

ensure_tool() { # ensure_tool COMMAND DEBIAN_PACKAGE
    command -v "$1" >/dev/null && return
    log "installing $2 (for $1)"
    apt-get install -y --no-install-recommends "$2" || {
        apt-get update
        apt-get install -y --no-install-recommends "$2"
    }
}

# The first enabled "deb" source for $SUITE in apt's configuration, either
# one-line style (sources.list, *.list) or deb822 (*.sources). Only
# http(s) and file URIs, which debootstrap can use.
host_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk -v suite="$SUITE" '
            { sub(/#.*/, "") }
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite && $i ~ /^(https?|file):/) { print $i; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk -v suite="$SUITE" '
            function flush() {
                if (!found && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") &&
                    tolower(enabled) != "no")
                    for (k = 1; k <= split(uris, u, " "); k++)
                        if (u[k] ~ /^(https?|file):/) { print u[k]; found = 1; exit }
                types = uris = suites = enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[^ \t]/ {
                key = tolower($1); sub(/:$/, "", key)
                val = $0; sub(/^[^:]*:[ \t]*/, "", val)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "enabled") enabled = val
            }
            END { flush() }' "$f"
    done
}
MIRROR=${XENOLITH_MIRROR:-$(host_mirror | head -n1)}
MIRROR=${MIRROR:-$FALLBACK_MIRROR}
log "mirror $MIRROR, suite $SUITE, size $SIZE"

# Everything the image is made from. Package versions are whatever the
# mirror has when the image is built; they are listed in the image's dpkg
# database (and in $IMAGE.packages).
STAMP_TEXT=$(
    echo "suite=$SUITE"
    echo "mirror=$MIRROR"
    echo "size=$SIZE"
    echo "script=$(sha256sum "$SCRIPT" | cut -d' ' -f1)"
)
if [ "${XENOLITH_ROOTFS_REBUILD:-0}" != 1 ] && [ -s "$IMAGE" ] && [ -f "$STAMP" ] &&
    [ "$(cat "$STAMP")" = "$STAMP_TEXT" ]; then
    log "image is up to date"
    echo "$IMAGE" >&3
    exit 0
fi

ensure_tool debootstrap debootstrap
ensure_tool mkfs.ext4 e2fsprogs

# debootstrap runs on a real directory in the cache (a root file system does
# not fit a small tmpfs), next to the image so the final rename stays on one
# file system. Downloaded packages are kept for the next build.
BUILD=$IMAGES/.$SUITE.build
DEBCACHE=$CACHE/debootstrap/$SUITE
mkdir -p "$DEBCACHE"

# Unmount whatever debootstrap (or chroot work) left mounted under $BUILD,
# deepest first; rm --one-file-system never crosses into a mount (such as a
# bind-mounted /dev) if one is still there.
clean_build() {
    local m
    if command -v findmnt >/dev/null; then
        findmnt -rn -o TARGET | awk -v d="$BUILD" 'index($0, d "/") == 1' |
            sort -r | while IFS= read -r m; do umount -l "$m" || true; done
    fi
    rm -rf --one-file-system "$BUILD" "$BUILD.packages" "$IMAGE.new"
}
trap clean_build EXIT
clean_build
mkdir -p "$BUILD"

START=$SECONDS
log "debootstrap --variant=minbase --include=$INCLUDE"
debootstrap --variant=minbase --include="$INCLUDE" --components=main \
    --cache-dir="$DEBCACHE" "$SUITE" "$BUILD" "$MIRROR" ||
    { tail -n 30 "$BUILD/debootstrap/debootstrap.log" 2>/dev/null || true; die "debootstrap failed"; }
log "debootstrap done in $((SECONDS - START)) s"

in_root() { chroot "$BUILD" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

# --- configuration -----------------------------------------------------------
R=$BUILD
echo xenolith > "$R/etc/hostname"
cat > "$R/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	xenolith
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
# debootstrap copies the host's resolver configuration; the guest has none.
rm -f "$R/etc/resolv.conf"
: > "$R/etc/resolv.conf"
cat > "$R/etc/fstab" <<'EOF'
# <file system> <mount point> <type> <options> <dump> <pass>
/dev/xvda	/	ext4	defaults	0	1
EOF

# Root logs in on the console without a password.
in_root passwd -d root >/dev/null

# Empty machine-id: each copy of the image gets its own on first boot.
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"

# networkd brings every Ethernet link up, with no addresses (no DHCP, no
# link-local), and never holds up boot waiting for it.
mkdir -p "$R/etc/systemd/network"
cat > "$R/etc/systemd/network/80-xenolith.network" <<'EOF'
[Match]
Name=eth* en*

[Link]
RequiredForOnline=no

[Network]
DHCP=no
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF

# Prints one line on the console once multi-user.target is reached: the Xen
# PV console if there is one, else /dev/console (HVM's COM1). No default
# dependencies: a target orders itself after the units it wants, and this
# unit wants to run after its target, which would be a cycle otherwise.
cat > "$R/etc/systemd/system/xenolith-ready.service" <<'EOF'
[Unit]
Description=Tell the Xenolith host that multi-user.target is reached
DefaultDependencies=no
After=multi-user.target
Conflicts=shutdown.target
Before=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'if [ -c /dev/hvc0 ] && { echo XENOLITH-SYSTEM-READY > /dev/hvc0; } 2>/dev/null; then :; else echo XENOLITH-SYSTEM-READY > /dev/console; fi'

[Install]
WantedBy=multi-user.target
EOF

in_root systemctl set-default multi-user.target
in_root systemctl enable systemd-networkd.service xenolith-ready.service
# The console getty: systemd's getty generator starts serial-getty@hvc0 by
# itself whenever hvc0 exists (the Xen PV console, or console=hvc0), and one
# on the console= device (ttyS0 in HVM). Enabling serial-getty@hvc0 here
# instead would make every boot without hvc0 (HVM) wait 90 s for the device
# before reaching multi-user.target. Nobody sees the virtual terminals, so
# no gettys there (getty-static would start tty2-6 because there is no dbus).
in_root systemctl disable getty@tty1.service
# Nothing may wait for a network that never comes online, prompt on the
# console at first boot, or wake up later to run maintenance.
MASK=(systemd-networkd-wait-online.service systemd-firstboot.service getty-static.service
      apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer
      e2scrub_all.timer e2scrub_reap.service fstrim.timer)
for u in "${MASK[@]}"; do
    if [ -e "$R/lib/systemd/system/$u" ]; then in_root systemctl mask "$u"; fi
done

# --- slimming ----------------------------------------------------------------
# No manuals, documentation (copyright files stay) or translations, now or
# after a later apt-get install in the guest.
cat > "$R/etc/dpkg/dpkg.cfg.d/01-xenolith-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
find "$R/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$R/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$R"/usr/share/man/* "$R"/usr/share/info/* "$R"/usr/share/lintian/*
find "$R/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/cache/apt/*.bin "$R"/var/lib/apt/lists/*
mkdir -p "$R/var/lib/apt/lists/partial"
rm -rf "$R/debootstrap"
find "$R/var/log" -type f -delete

in_root dpkg-query -W -f '${Package} ${Version}\n' | sort > "$BUILD.packages"

# --- image -------------------------------------------------------------------
log "making ext4 image"
# A fresh sparse file reads as zeros, so the journal need not be written out
# (lazy_journal_init): that keeps the journal's 64 MiB from taking disk space.
truncate -s "$SIZE" "$IMAGE.new"
mkfs.ext4 -q -F -L xenolith-root -E lazy_journal_init=1 -d "$R" "$IMAGE.new"
e2fsck -fn "$IMAGE.new" >/dev/null || die "e2fsck found errors in the new image"

# Drop the stamp first so an interrupted install is never mistaken for fresh.
rm -f "$STAMP"
mv -f "$IMAGE.new" "$IMAGE"
mv -f "$BUILD.packages" "$IMAGE.packages"
printf '%s\n' "$STAMP_TEXT" > "$STAMP"

log "$(wc -l < "$IMAGE.packages") packages; built in $((SECONDS - START)) s;" \
    "$(du -h "$IMAGE" | cut -f1) used of $(du -h --apparent-size "$IMAGE" | cut -f1)"
echo "$IMAGE" >&3
