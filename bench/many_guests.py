#!/usr/bin/env python3
"""Starts N guests at once (default 20, the default kit, 256 MiB each) and
reports when each reaches the kit's readiness line and how each ended.
Usage: bench/many_guests.py [--count 20] [--xeno PATH] [--timeout 900]"""
import argparse, os, select, subprocess, time

ap = argparse.ArgumentParser()
ap.add_argument("--count", type=int, default=20)
ap.add_argument("--xeno", default=".build/release/xeno")
ap.add_argument("--timeout", type=float, default=900)
a = ap.parse_args()
start = time.monotonic()
procs = [subprocess.Popen([a.xeno, "run", "--memory", "256M", "--name", f"g{i}", "--", "true"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, bufsize=0)
         for i in range(a.count)]
ready = {}
bufs = {p.stdout.fileno(): b"" for p in procs}
index = {p.stdout.fileno(): i for i, p in enumerate(procs)}
open_fds = set(bufs)
while open_fds and time.monotonic() - start < a.timeout:
    r, _, _ = select.select(list(open_fds), [], [], 1)
    for fd in r:
        chunk = os.read(fd, 65536)
        if not chunk:
            open_fds.discard(fd)
            continue
        bufs[fd] += chunk
        if b"XENOLITH-READY" in bufs[fd] and index[fd] not in ready:
            ready[index[fd]] = time.monotonic() - start
        bufs[fd] = bufs[fd][-4096:]
for p in procs:
    try:
        p.wait(timeout=max(1, a.timeout - (time.monotonic() - start)))
    except subprocess.TimeoutExpired:
        p.kill(); p.wait()
times = sorted(ready.values())
codes = [p.returncode for p in procs]
print(f"{len(ready)}/{a.count} guests reached readiness; first {times[0]:.1f}s, last {times[-1]:.1f}s" if times
      else f"0/{a.count} guests reached readiness")
print(f"exit codes: {sorted(set(codes))} ({codes.count(0)} exited 0)")
