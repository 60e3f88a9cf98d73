#!/bin/bash
# Where the vCPUs of a running `xeno run --hvm` spend their time, on a
# software-nested KVM (kvm_pvm) where every guest CPL0 instruction goes
# through KVM's emulator: the host's kvm_emulate_insn trace event then
# carries each emulated instruction's RIP. This samples them for a few
# seconds and names the guest kernel functions, per vCPU thread.
#
#   scripts/hvm-profile.sh PID [SECONDS] [TOP]    # as root; PID of `xeno run --hvm`
#
# The VMM loads the kernel without its decompressor, so there is no KASLR:
# RIPs are link addresses. Symbols come from $SYSTEM_MAP, or from the
# Debian debug package of the kit's kernel (apt-get download, about 280 MB,
# kept in /var/cache/xenolith/dbg). A vCPU thread that uses host CPU but
# shows few emulated instructions is running guest user space (CPL3 runs
# natively) or waiting for the host scheduler.
set -euo pipefail
die() { echo "hvm-profile: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: $0 PID [SECONDS] [TOP]"
pid=$1; secs=${2:-1}; top=${3:-8}
[ -d "/proc/$pid/task" ] || die "no process $pid"
[ "$(id -u)" = 0 ] || die "run as root (tracefs)"

T=/sys/kernel/tracing
[ -e $T/trace ] || mount -t tracefs nodev $T 2>/dev/null || die "cannot mount tracefs at $T"
[ -d $T/events/kvm/kvm_emulate_insn ] || die "this host's KVM has no kvm_emulate_insn trace event"

map=${SYSTEM_MAP:-}
if [ -z "$map" ]; then
    kit=${XENOLITH_KIT:-/var/cache/xenolith/kit}
    ver=$(cat "$kit/kernel-version" 2>/dev/null) || die "no kit kernel-version in $kit (or set SYSTEM_MAP)"
    dbg=/var/cache/xenolith/dbg
    map=$dbg/System.map-$ver
    if [ ! -s "$map" ]; then
        mkdir -p "$dbg/deb" && chmod 777 "$dbg/deb"
        (cd "$dbg/deb" && apt-get download -q "linux-image-$ver-dbg") || die "apt-get download linux-image-$ver-dbg failed"
        dpkg-deb --fsys-tarfile "$dbg"/deb/linux-image-"$ver"-dbg_*.deb |
            tar -xO --wildcards "*/boot/System.map-$ver" > "$map.tmp" && mv "$map.tmp" "$map"
        rm -rf "$dbg/deb"
    fi
fi
[ -s "$map" ] || die "no System.map at $map"

out=$(mktemp /tmp/hvm-profile.XXXXXX)
trap 'echo 0 > $T/tracing_on; echo 0 > $T/events/kvm/enable; echo > $T/set_event_pid; rm -f $out' EXIT
echo 0 > $T/tracing_on
echo > $T/trace
echo 16384 > $T/buffer_size_kb
ls "/proc/$pid/task" | tr '\n' ' ' > $T/set_event_pid
for e in kvm_emulate_insn kvm_apic_ipi kvm_vcpu_wakeup kvm_hypercall kvm_userspace_exit; do
    echo 1 > $T/events/kvm/$e/enable
done
# utime + stime of a thread; its name ("vcpu 3") has a space, so fields are counted after the ")".
ticks() { sed 's/.*) //' "$1/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0; }
declare -A before
for t in /proc/$pid/task/*; do before[$t]=$(ticks "$t"); done
echo 1 > $T/tracing_on
sleep "$secs"
echo 0 > $T/tracing_on
cpu=""
for t in /proc/$pid/task/*; do
    now=$(ticks "$t")
    cpu+="$(cat "$t/comm")=$(( now - ${before[$t]:-0} ));"
done
cat $T/trace > "$out"

python3 - "$map" "$out" "$top" "$cpu" "$secs" <<'EOF'
import bisect, collections, re, sys
mapfile, trace, top, cpu, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
syms = []
for line in open(mapfile):
    f = line.split()
    if len(f) >= 3 and f[1] in "tTwW":
        syms.append((int(f[0], 16), f[2]))
syms.sort()
addrs = [a for a, _ in syms]
def name(rip):
    i = bisect.bisect_right(addrs, rip) - 1
    return syms[i][1] if i >= 0 else hex(rip)
ticks = dict(kv.split("=") for kv in cpu.strip(";").split(";") if "=" in kv)
insn = re.compile(r"^\s*(.+?)-\d+\s.*kvm_emulate_insn: [0-9a-f]+:([0-9a-f]+):")
other = re.compile(r"^\s*(.+?)-\d+\s.*\bkvm_(apic_ipi|vcpu_wakeup|hypercall|userspace_exit):")
per = collections.defaultdict(collections.Counter)
events = collections.defaultdict(collections.Counter)
for line in open(trace):
    m = insn.match(line)
    if m:
        per[m.group(1)][name(int(m.group(2), 16))] += 1
        continue
    m = other.match(line)
    if m:
        events[m.group(1)][m.group(2)] += 1
threads = sorted(set(per) | set(k for k in ticks if k.startswith("vcpu")),
                 key=lambda t: int(t.split()[1]) if t.startswith("vcpu ") else 1 << 20)
print(f"{secs} s: emulated instructions per vCPU thread (host CPU ticks in brackets), top functions")
for t in threads:
    c = per.get(t, collections.Counter())
    ev = " ".join(f"{k}={v}" for k, v in sorted(events[t].items()))
    print(f"{t:>8} {sum(c.values()):>8} [{ticks.get(t, '?'):>4}] {ev}")
    print("          " + ", ".join(f"{f} {n}" for f, n in c.most_common(top)))
EOF
