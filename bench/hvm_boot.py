#!/usr/bin/env python3
"""HVM boot side by side: Xenolith (`xeno run --hvm`), QEMU `-M microvm` and
QEMU `-M pc`, all with KVM, the same Debian kernel and initramfs (the default
kit), 2 vCPUs, 512 MiB, the same command line.

Records, from process start: seconds to the kernel's start of init (its
"Run /init as init process" line), and the VMM's own memory (RSS and PSS
minus guest RAM, a memfd for all three) sampled when the kernel reports its
CPUs up ("smp: Brought up") or else at the end of the window, and the last
console line (or error) of a VMM that does not get there. On a software-nested KVM every guest kernel
instruction is emulated: expect minutes.

Usage: bench/hvm_boot.py [--runs 1] [--seconds 1500] [--peer-seconds S] [--xeno PATH]
"""
import argparse, os, select, statistics, subprocess, time
from boot_and_memory import KIT, smaps, status_shmem, lines_of

CMDLINE = "console=ttyS0 loglevel=7 i8042.noaux reboot=acpi"

def watch(args, seconds):
    start = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, bufsize=0)
    init_at, mem, last, buf = None, None, "", b""
    while time.monotonic() - start < seconds:
        r, _, _ = select.select([p.stdout], [], [], 1.0)
        if not r:
            continue
        lines, buf, eof = lines_of(p.stdout, buf)
        if eof:
            break
        for s in (l.strip() for l in lines):
            if s:
                last = s
            if "smp: Brought up" in s and mem is None and p.poll() is None:
                rss, pss = smaps(p.pid)
                mem = (rss, pss, status_shmem(p.pid))
            if "as init process" in s and init_at is None:
                init_at = time.monotonic() - start
        if init_at is not None:
            break
    if p.poll() is None:
        if mem is None:
            # Never got as far: its memory at the end of the window.
            rss, pss = smaps(p.pid)
            mem = (rss, pss, status_shmem(p.pid))
        p.kill()
    rest = p.communicate()[0] or b""
    for l in rest.decode(errors="replace").splitlines():
        if l.strip():
            last = l.strip()
    return init_at, mem, last, time.monotonic() - start

def qemu_args(machine):
    m = "microvm,memory-backend=mem" if machine == "microvm" else "pc,memory-backend=mem"
    return ["qemu-system-x86_64", "-enable-kvm", "-m", "512", "-smp", "2", "-nographic",
            "-nodefaults", "-serial", "stdio", "-no-reboot",
            "-object", "memory-backend-memfd,id=mem,size=512M", "-machine", m,
            "-kernel", KIT + "/vmlinuz", "-initrd", KIT + "/initrd.img", "-append", CMDLINE]

def report(name, runs):
    inits = [r[0] for r in runs if r[0] is not None]
    mems = [r[1] for r in runs if r[1] is not None]
    init = f"{statistics.median(inits):.0f} s" if inits else "never"
    mem = f"RSS {statistics.median(m[0] for m in mems):.1f} MiB, PSS {statistics.median(m[1] for m in mems):.1f} MiB" if mems else "not sampled"
    print(f"{name}: start of init {init}; VMM {mem}; last line {runs[-1][2][:200]!r} after {runs[-1][3]:.0f} s", flush=True)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=1500)
    ap.add_argument("--peer-seconds", type=float, default=None,
                    help="QEMU's window (default: --seconds); on this host it never leaves its firmware, so a short one records that")
    ap.add_argument("--xeno", default=".build/release/xeno")
    a = ap.parse_args()
    xeno = [a.xeno, "run", "--hvm", "--vcpus", "2", "--memory", "512M", "--cmdline", CMDLINE]
    peer = a.peer_seconds if a.peer_seconds is not None else a.seconds
    for name, args, window in (("xenolith --hvm", xeno, a.seconds), ("qemu -M microvm", qemu_args("microvm"), peer),
                               ("qemu -M pc", qemu_args("pc"), peer)):
        runs = []
        for i in range(a.runs):
            runs.append(watch(args, window))
            print(f"  {name} run {i+1}: init {runs[-1][0]}, mem {runs[-1][1]}", flush=True)
        report(name, runs)

if __name__ == "__main__":
    main()
