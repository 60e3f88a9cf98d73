#!/usr/bin/env python3
"""Side-by-side boot and memory benchmark: Xenolith (PV) and QEMU (HVM, KVM)
on the same Debian kernel and initramfs (the default kit).

For each run it records, from process start:
  - Xenolith: seconds to the kit's readiness line (user space is up), the
    guest-measured time of a fork/exec loop, and the VMM's own memory (RSS and
    PSS minus the guest RAM it touched, which lives in a memfd: RssShmem).
  - QEMU: how far the same kernel gets in the same time (the last kernel line
    on its serial console) and the same memory figures (its RAM is a memfd
    backend too, so the subtraction is the same).
Medians over --runs runs. Usage: bench/boot_and_memory.py [--runs 5] [--xeno PATH]
"""
import argparse, os, re, select, statistics, subprocess, sys, time

KIT = os.environ.get("XENOLITH_CACHE", "/var/cache/xenolith") + "/kit"

def smaps(pid):
    vals = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m:
                vals[m.group(1)] = int(m.group(2))
    # Guest RAM is a memfd (shared memory): subtract it to get the VMM's own.
    rss = vals.get("Rss", 0) - status_shmem(pid) * 1024
    pss = vals.get("Pss", 0) - vals.get("Pss_Shmem", 0)
    return rss / 1024.0, pss / 1024.0

def status_shmem(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssShmem:"):
                return int(line.split()[1]) / 1024.0
    return 0.0

def lines_of(stream, buf):
    """Reads what is there from `stream`; returns (complete lines, rest, eof)."""
    chunk = os.read(stream.fileno(), 65536)
    if not chunk:
        return [], buf, True
    buf += chunk
    *lines, rest = buf.split(b"\n")
    return [l.decode(errors="replace") for l in lines], rest, False

def xeno_run(xeno, loops):
    # busybox date has no %N: the guest's /proc/uptime gives centiseconds.
    cmd = ("echo T0 $(cut -d' ' -f1 /proc/uptime); i=0; while [ $i -lt LOOPS ]; do /bin/true; i=$((i+1)); done; "
           "echo T1 $(cut -d' ' -f1 /proc/uptime); sleep 3").replace("LOOPS", str(loops))
    start = time.monotonic()
    p = subprocess.Popen([xeno, "run", "--memory", "512M", "--", cmd], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, bufsize=0)
    ready = forkexec = None
    t0 = 0.0
    mem = None
    buf = b""
    while True:
        r, _, _ = select.select([p.stdout], [], [], 120)
        if not r:
            break
        lines, buf, eof = lines_of(p.stdout, buf)
        if eof:
            break
        for s in lines:
            if s.startswith("XENOLITH-READY") and ready is None:
                ready = time.monotonic() - start
            m = re.match(r"T0 ([0-9.]+)", s)
            if m:
                t0 = float(m.group(1))
            m = re.match(r"T1 ([0-9.]+)", s)
            if m:
                forkexec = round((float(m.group(1)) - t0) * 1000)
                time.sleep(1.0)   # guest idle in `sleep 3`
                rss, pss = smaps(p.pid)
                mem = (rss, pss, status_shmem(p.pid))
    p.wait(timeout=120)
    return ready, forkexec, mem

def qemu_run(seconds):
    args = ["qemu-system-x86_64", "-enable-kvm", "-m", "512", "-smp", "1", "-nographic", "-no-reboot",
            "-object", "memory-backend-memfd,id=mem,size=512M", "-machine", "pc,memory-backend=mem",
            "-kernel", KIT + "/vmlinuz", "-initrd", KIT + "/initrd.img", "-append", "console=ttyS0"]
    start = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, bufsize=0)
    last = ""
    buf = b""
    ready = None
    mem = None
    while time.monotonic() - start < seconds:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            lines, buf, eof = lines_of(p.stdout, buf)
            if eof:
                break
            for s in (l.strip() for l in lines):
                if s:
                    last = s
                if s.startswith("XENOLITH-READY") and ready is None:
                    ready = time.monotonic() - start
    if p.poll() is None:
        rss, pss = smaps(p.pid)
        mem = (rss, pss, status_shmem(p.pid))
        p.kill()
    p.wait()
    return ready, last, mem, time.monotonic() - start

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--xeno", default=".build/release/xeno")
    ap.add_argument("--loops", type=int, default=100)
    ap.add_argument("--qemu-seconds", type=float, default=60)
    a = ap.parse_args()
    readies, forks, rsss, psss = [], [], [], []
    for i in range(a.runs):
        ready, fe, mem = xeno_run(a.xeno, a.loops)
        print(f"xenolith run {i+1}: ready {ready:.2f}s, fork/exec x{a.loops} {fe} ms, "
              f"VMM RSS {mem[0]:.1f} MiB PSS {mem[1]:.1f} MiB (guest RAM touched {mem[2]:.0f} MiB)", flush=True)
        readies.append(ready); forks.append(fe); rsss.append(mem[0]); psss.append(mem[1])
    print(f"xenolith median: ready {statistics.median(readies):.2f}s, fork/exec x{a.loops} "
          f"{statistics.median(forks)} ms ({statistics.median(forks)/a.loops:.2f} ms each), "
          f"VMM RSS {statistics.median(rsss):.1f} MiB, PSS {statistics.median(psss):.1f} MiB", flush=True)
    ready, last, mem, secs = qemu_run(a.qemu_seconds)
    print(f"qemu (pc, KVM, HVM): after {secs:.0f}s ready={ready}, last console line: {last[:160]!r}")
    if mem:
        print(f"qemu VMM RSS {mem[0]:.1f} MiB PSS {mem[1]:.1f} MiB (guest RAM touched {mem[2]:.0f} MiB)")

if __name__ == "__main__":
    main()
