#!/usr/bin/env python3
"""Restore latency of a saved guest (PV or HVM): `xeno run --restore IMAGE`
started, timed until its control socket answers `info` (the domain rebuilt,
its vCPUs running), then killed; N runs, the median printed.

    python3 bench/restore_latency.py IMAGE [--xeno PATH] [--runs N]
"""
import argparse, os, socket, statistics, subprocess, time

parser = argparse.ArgumentParser()
parser.add_argument("image")
parser.add_argument("--xeno", default=".build/release/xeno")
parser.add_argument("--runs", type=int, default=5)
args = parser.parse_args()

times = []
for i in range(args.runs):
    sock = f"/tmp/xeno-restore-latency-{os.getpid()}-{i}.sock"
    if os.path.exists(sock):
        os.unlink(sock)
    start = time.monotonic()
    p = subprocess.Popen([args.xeno, "run", "--restore", args.image, "--control", sock],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    answered = False
    while p.poll() is None and not answered:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.send(b"info\n")
            answered = s.recv(1000).startswith(b"ok")
            s.close()
        except OSError:
            time.sleep(0.001)
    elapsed = (time.monotonic() - start) * 1000
    p.kill()
    _, err = p.communicate()
    if not answered:
        raise SystemExit(f"run {i}: the restore ended without answering: {err.decode().strip()}")
    times.append(elapsed)
print("restore to `info` answering (ms):", [round(t) for t in times], "median", round(statistics.median(times)))
