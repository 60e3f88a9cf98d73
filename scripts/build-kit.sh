#!/usr/bin/env bash
# Build Xenolith's default guest kit: Debian's cloud kernel plus a small
# busybox initramfs whose /init is scripts/kit/init.
#
#   sudo scripts/build-kit.sh        # -> ${XENOLITH_CACHE:-/var/cache/xenolith}/kit
#
# Output files: vmlinuz, initrd.img, config, kernel-version, modules.txt.
# The kit directory path is the only thing printed on stdout (last line), so
# callers can do KIT=$(scripts/build-kit.sh). Progress goes to stderr.
# Rebuilds only when the package versions, this script, the init or the
# guest agent change.
set -euo pipefail

# Keep stdout clean for the final path: everything else, including the
# output of the tools we call, goes to stderr.
exec 3>&1 1>&2

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
SCRIPT_DIR=$(dirname "$SCRIPT")
INIT_SRC=$SCRIPT_DIR/kit/init
AGENT_SRC=$SCRIPT_DIR/kit/xenolith-agent
CACHE=${XENOLITH_CACHE:-/var/cache/xenolith}
KIT=$CACHE/kit
META_PKG=linux-image-cloud-amd64
BB_PKG=busybox-static

# Modules per mode, as "module_name:CONFIG_SYMBOL". The config decides: =m is
# packed (with its dependencies), =y is built in and needs nothing, unset is
# reported. Names use underscores, as the kernel does.
HVM_MODULES=(
    virtio:CONFIG_VIRTIO
    virtio_ring:CONFIG_VIRTIO
    virtio_pci_modern_dev:CONFIG_VIRTIO_PCI_LIB
    virtio_pci_legacy_dev:CONFIG_VIRTIO_PCI_LIB_LEGACY
    virtio_pci:CONFIG_VIRTIO_PCI
    virtio_blk:CONFIG_VIRTIO_BLK
    failover:CONFIG_FAILOVER
    net_failover:CONFIG_NET_FAILOVER
    virtio_net:CONFIG_VIRTIO_NET
    virtio_console:CONFIG_VIRTIO_CONSOLE
    virtio_balloon:CONFIG_VIRTIO_BALLOON
    rng_core:CONFIG_HW_RANDOM
    virtio_rng:CONFIG_HW_RANDOM_VIRTIO
    vsock:CONFIG_VSOCKETS
    vmw_vsock_virtio_transport_common:CONFIG_VIRTIO_VSOCKETS_COMMON
    vmw_vsock_virtio_transport:CONFIG_VIRTIO_VSOCKETS
)
PV_MODULES=(
    hvc_xen:CONFIG_HVC_XEN
    xen_balloon:CONFIG_XEN_BALLOON
    xen_evtchn:CONFIG_XEN_DEV_EVTCHN
    xenfs:CONFIG_XENFS
    xen_blkfront:CONFIG_XEN_BLKDEV_FRONTEND
    xen_netfront:CONFIG_XEN_NETDEV_FRONTEND
)
# Root file system support, wanted in both modes.
COMMON_MODULES=(
    ext4:CONFIG_EXT4_FS
)

log() { echo "build-kit: $*"; }
die() { echo "build-kit: error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get, mknod)"
[ -r "$INIT_SRC" ] || die "missing $INIT_SRC"
[ -r "$AGENT_SRC" ] || die "missing $AGENT_SRC"

mkdir -p "$KIT"
# One builder at a time; a second caller waits and then finds the kit fresh.
exec 9>"$CACHE/kit.lock"
flock 9

ensure_tool() { # ensure_tool COMMAND DEBIAN_PACKAGE
    command -v "$1" >/dev/null && return
    log "installing $2 (for $1)"
    apt-get install -y --no-install-recommends "$2" || {
        apt-get update
        apt-get install -y --no-install-recommends "$2"
    }
}

lists_empty() { ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; }

# (awk reads to the end rather than `exit`, so apt never dies of SIGPIPE,
# which pipefail would turn into a failure.)
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ && !v { v = $2 } END { print v }'; }

# Resolve the metapackage to its versioned kernel package and pin versions,
# so the stamp and the download agree on exactly what is built.
resolve() {
    KPKG=$(apt-cache depends "$META_PKG" 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ && !p { p = $2 } END { print p }')
    KPKG_VER=
    if [ -n "$KPKG" ]; then KPKG_VER=$(candidate "$KPKG"); fi
    BB_VER=$(candidate "$BB_PKG")
    [ -n "$KPKG" ] && [ -n "$KPKG_VER" ] && [ "$KPKG_VER" != "(none)" ] &&
        [ -n "$BB_VER" ] && [ "$BB_VER" != "(none)" ]
}

if lists_empty; then
    log "apt lists empty, running apt-get update"
    apt-get update
fi
if ! resolve; then
    log "cannot resolve $META_PKG / $BB_PKG, running apt-get update"
    apt-get update
    resolve || die "cannot resolve $META_PKG and $BB_PKG from apt"
fi
log "kernel package $KPKG $KPKG_VER, $BB_PKG $BB_VER"

# Everything the kit is made from: both package versions, this script, init, the agent.
stamp_text() {
    echo "kernel=$KPKG=$KPKG_VER"
    echo "busybox=$BB_PKG=$BB_VER"
    echo "script=$(sha256sum "$SCRIPT" | cut -d' ' -f1)"
    echo "init=$(sha256sum "$INIT_SRC" | cut -d' ' -f1)"
    echo "agent=$(sha256sum "$AGENT_SRC" | cut -d' ' -f1)"
}
STAMP_TEXT=$(stamp_text)

fresh() {
    [ -f "$KIT/.stamp" ] && [ "$(cat "$KIT/.stamp")" = "$STAMP_TEXT" ] || return 1
    for f in vmlinuz initrd.img config kernel-version modules.txt; do
        [ -s "$KIT/$f" ] || return 1
    done
}
if fresh; then
    log "kit is up to date"
    echo "$KIT" >&3
    exit 0
fi

ensure_tool cpio cpio
ensure_tool gzip gzip

WORK=$(mktemp -d /tmp/xenolith-kit.XXXXXX)
chmod 711 "$WORK"   # let _apt reach $DEBS (below), nothing more
trap 'rm -rf "$WORK"' EXIT
DEBS=$WORK/debs
mkdir -p "$DEBS"
# apt drops privileges to _apt for downloads; give it the directory so it
# does not fall back to an unsandboxed download with a warning.
if id _apt >/dev/null 2>&1; then chown _apt "$DEBS"; fi

download() {
    (cd "$DEBS" && apt-get download -q "$KPKG=$KPKG_VER" "$BB_PKG=$BB_VER")
}
if ! download; then
    # Stale lists name versions the mirror no longer has: refresh, re-pin.
    log "download failed, running apt-get update"
    apt-get update
    resolve || die "cannot resolve packages after apt-get update"
    STAMP_TEXT=$(stamp_text)
    download || die "apt-get download failed"
fi

K=$WORK/kernel
BB=$WORK/busybox
dpkg-deb -x "$DEBS/${KPKG}_"*.deb "$K"
dpkg-deb -x "$DEBS/${BB_PKG}_"*.deb "$BB"

mapfile -t krels < <(ls "$K/lib/modules")
[ "${#krels[@]}" = 1 ] || die "expected one kernel under lib/modules, got: ${krels[*]}"
KREL=${krels[0]}
MODSRC=$K/lib/modules/$KREL
VMLINUZ=$K/boot/vmlinuz-$KREL
KCONFIG=$K/boot/config-$KREL
{ [ -f "$VMLINUZ" ] && [ -f "$KCONFIG" ]; } || die "no vmlinuz/config for $KREL in $KPKG"
# A bzImage carries "HdrS" at 0x202; anything else would not boot in our loader.
[ "$(dd if="$VMLINUZ" bs=1 skip=514 count=4 status=none)" = HdrS ] ||
    die "$VMLINUZ is not a bzImage"
log "kernel $KREL"

# Debian's packages ship compressed or plain modules depending on the
# kernel config. insmod in busybox wants plain ones, so decompress up front;
# that also lets depmod below read every module.
while IFS= read -r -d '' f; do
    case "$f" in
        *.ko.xz)  ensure_tool xz xz-utils; xz -dq "$f" ;;
        *.ko.zst) ensure_tool zstd zstd; zstd -dq --rm "$f" ;;
        *.ko.gz)  gzip -dq "$f" ;;
    esac
done < <(find "$MODSRC" -name '*.ko.*' -print0)

# The package has no modules.dep (Debian's postinst runs depmod on install);
# busybox's depmod builds one from the modules' symbol tables, without
# needing kmod on the host.
BUSYBOX=$BB/bin/busybox
[ -x "$BUSYBOX" ] || die "no busybox binary in $BB_PKG"
"$BUSYBOX" depmod -b "$K" "$KREL"

# name -> path relative to MODSRC, and name -> its dependency names.
declare -A MODPATH=() MODDEPS=()
modname() { local b=${1##*/}; b=${b%.ko}; echo "${b//-/_}"; }
while IFS= read -r line; do
    path=${line%%:*}
    n=$(modname "$path")
    MODPATH[$n]=$path
    deps=
    for d in ${line#*:}; do deps+=" $(modname "$d")"; done
    MODDEPS[$n]=$deps
done < "$MODSRC/modules.dep"

config_value() { # y, m, or n
    local v
    v=$(sed -n "s/^$1=\(.*\)/\1/p" "$KCONFIG")
    echo "${v:-n}"
}

# Depth-first walk: a module's dependencies come before it in the load list.
declare -A VISITED=()
ORDER=()
visit() {
    local n=$1 d
    [ -n "${VISITED[$n]:-}" ] && return
    VISITED[$n]=1
    [ -n "${MODPATH[$n]:-}" ] || die "module $n is =m in the config but not in the package"
    for d in ${MODDEPS[$n]}; do visit "$d"; done
    ORDER+=("$n")
}

MANIFEST=$WORK/modules.txt
: > "$MANIFEST"
declare -A PACKED=()
# plan_mode MODE ENTRY...: writes the mode's ordered load list.
plan_mode() {
    local mode=$1 entry n sym val
    shift
    VISITED=()
    ORDER=()
    for entry in "$@"; do
        n=${entry%%:*}
        sym=${entry#*:}
        val=$(config_value "$sym")
        case "$val" in
            m) visit "$n"
               printf '%-4s %-34s %-32s module\n' "$mode" "$n" "$sym=m" >> "$MANIFEST" ;;
            y) printf '%-4s %-34s %-32s built-in\n' "$mode" "$n" "$sym=y" >> "$MANIFEST" ;;
            *) log "warning: $sym is not set; $n unavailable in $mode mode"
               printf '%-4s %-34s %-32s absent\n' "$mode" "$n" "$sym unset" >> "$MANIFEST" ;;
        esac
    done
    mkdir -p "$ROOT/etc/xenolith"
    : > "$ROOT/etc/xenolith/modules.$mode"
    for n in "${ORDER[@]}"; do
        echo "/lib/modules/$KREL/${MODPATH[$n]}" >> "$ROOT/etc/xenolith/modules.$mode"
        PACKED[$n]=1
    done
}

# --- initramfs tree ---------------------------------------------------------
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,mnt,lib/modules/"$KREL"}
chmod 1777 "$ROOT/tmp"
chmod 700 "$ROOT/root"
# The kernel opens /dev/console before running /init, before devtmpfs exists.
mknod -m 600 "$ROOT/dev/console" c 5 1
mknod -m 666 "$ROOT/dev/null" c 1 3

install -m 755 "$BUSYBOX" "$ROOT/bin/busybox"
# Link every applet this busybox build has, at the path it expects.
while IFS= read -r applet; do
    [ -e "$ROOT/$applet" ] || [ -L "$ROOT/$applet" ] || ln -s /bin/busybox "$ROOT/$applet"
done < <("$BUSYBOX" --list-full)
[ -L "$ROOT/bin/sh" ] || die "busybox has no sh applet"
# poweroff, reboot and halt act at once (after a sync), as with -f. The
# kernel runs /sbin/poweroff or /sbin/reboot when the host asks the guest
# to shut down (Xen's control/shutdown: `xeno shutdown`, `xeno reboot`);
# busybox's own would only signal PID 1, and the kit's init is a shell
# script waiting for its shell, which cannot take the signal, so nothing
# would happen. An initramfs has nothing else to stop or unmount.
for cmd in poweroff reboot halt; do
    rm -f "$ROOT/sbin/$cmd"
    printf '#!/bin/sh\nsync\nexec /bin/busybox %s -f\n' "$cmd" > "$ROOT/sbin/$cmd"
    chmod 755 "$ROOT/sbin/$cmd"
done

install -m 755 "$INIT_SRC" "$ROOT/init"
install -m 755 "$AGENT_SRC" "$ROOT/sbin/xenolith-agent"
echo xenolith > "$ROOT/etc/hostname"
echo 'root:x:0:0:root:/root:/bin/sh' > "$ROOT/etc/passwd"
echo 'root:x:0:' > "$ROOT/etc/group"

plan_mode hvm "${COMMON_MODULES[@]}" "${HVM_MODULES[@]}"
plan_mode pv "${COMMON_MODULES[@]}" "${PV_MODULES[@]}"

for n in "${!PACKED[@]}"; do
    install -D -m 644 "$MODSRC/${MODPATH[$n]}" "$ROOT/lib/modules/$KREL/${MODPATH[$n]}"
done
# modules.builtin lets modprobe treat built-in drivers as present.
cp "$MODSRC/modules.builtin" "$ROOT/lib/modules/$KREL/"
# modules.dep/alias for just the packed set, so modprobe works from the shell.
"$BUSYBOX" depmod -b "$ROOT" "$KREL"
rm -f "$ROOT/lib/modules/$KREL/modules.symbols"

{
    echo "# Xenolith kit modules for $KREL ($KPKG $KPKG_VER)"
    echo "# mode name                               config                           status"
    cat "$MANIFEST"
    echo "# load order, hvm:"
    sed 's/^/#   /' "$ROOT/etc/xenolith/modules.hvm"
    echo "# load order, pv:"
    sed 's/^/#   /' "$ROOT/etc/xenolith/modules.pv"
} > "$WORK/modules.txt.out"

# Fixed timestamps, sorted names and renumbered inodes (--reproducible)
# make the same inputs give a byte-identical archive. It is not compressed:
# 3 MiB is nothing to load, while inflating it is minutes of emulated CPL0
# for an HVM kernel on a software-nested KVM (and wasted time anywhere).
find "$ROOT" -exec touch -h -d @0 {} +
(cd "$ROOT" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --reproducible --quiet) > "$WORK/initrd.img"

# --- install ----------------------------------------------------------------
# Drop the stamp first so an interrupted install is never mistaken for fresh;
# each file is replaced by rename, so a reader sees an old or a new file.
rm -f "$KIT/.stamp"
put() { install -m 644 "$1" "$KIT/.$2.new" && mv -f "$KIT/.$2.new" "$KIT/$2"; }
put "$VMLINUZ" vmlinuz
put "$WORK/initrd.img" initrd.img
put "$KCONFIG" config
echo "$KREL" > "$WORK/kernel-version"
put "$WORK/kernel-version" kernel-version
put "$WORK/modules.txt.out" modules.txt
printf '%s\n' "$STAMP_TEXT" > "$KIT/.stamp"

log "packed ${#PACKED[@]} modules; built-in or absent: $(awk '$NF != "module" && !seen[$2]++ { printf "%s ", $2 }' "$MANIFEST")"
log "vmlinuz $(stat -c %s "$KIT/vmlinuz") bytes, initrd.img $(stat -c %s "$KIT/initrd.img") bytes"
echo "$KIT" >&3
