#!/usr/bin/env python3
"""Save and restore of an idle PV guest (the default kit), per memory size.

For each run: boot `xeno run --name N --memory SIZE`, wait for the kit's
readiness line and let the guest idle for a few seconds, then
  - save:    `xeno ctl N.ctl save FILE`, timed from the request to the reply,
             with the VMM's own split (suspend: control/shutdown=suspend to the
             guest's suspend hypercall with every vCPU stopped; write: the image);
  - restore: `xeno run --restore FILE --name N2`, timed from process start to
             (a) the control socket answering `info` (the domain is rebuilt and
             its vCPUs run) and (b) `xeno exec N2 -- true` succeeding (the guest
             has resumed its devices and the agent answers again).
With --qemu, the same for QEMU beside it (HVM, KVM, the same kernel and
initramfs, which on a software-nested KVM never leaves the kernel's early
set-up, so its memory is nearly all zero): save is `migrate` to a file
(`exec:cat > FILE`), timed to `query-migrate` saying completed; restore is
`-incoming exec:cat FILE`, timed from process start to `query-status`
saying running.
Medians over --runs runs. Usage:
    bench/save_restore.py [--runs 5] [--sizes 128M,1G] [--xeno PATH] [--dir /var/tmp] [--qemu]
"""
import json
import argparse, os, select, shutil, socket, statistics, subprocess, sys, time


def ctl(path, line, timeout=120):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall((line + "\n").encode())
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    return reply.decode().strip()


def wait_ready(p, timeout=180):
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 1)
        if r:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                return False
            buf += chunk
            if b"XENOLITH-READY" in buf:
                return True
    return False


def drain(p):
    # Keep the console pipe from filling (the VMM would block on it).
    while select.select([p.stdout], [], [], 0)[0]:
        if not os.read(p.stdout.fileno(), 65536):
            break


def one_run(xeno, size, run_dir, image, idle):
    env = dict(os.environ, XENOLITH_RUN_DIR=run_dir)
    name, name2 = "bench-save", "bench-restore"
    p = subprocess.Popen([xeno, "run", "--name", name, "--memory", size], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, bufsize=0)
    try:
        if not wait_ready(p):
            raise RuntimeError("the guest did not become ready")
        time.sleep(idle)
        drain(p)
        t = time.monotonic()
        reply = ctl(f"{run_dir}/{name}.ctl", f"save {image}")
        save_s = time.monotonic() - t
        if not reply.startswith("ok "):
            raise RuntimeError("save: " + reply)
        fields = dict(w.split("=", 1) for w in reply[3:].split())
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    start = time.monotonic()
    q = subprocess.Popen([xeno, "run", "--restore", image, "--name", name2], stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        serving = None
        while time.monotonic() - start < 60:
            try:
                if ctl(f"{run_dir}/{name2}.ctl", "info", timeout=5).startswith("ok "):
                    serving = time.monotonic() - start
                    break
            except OSError:
                pass
            time.sleep(0.002)
        answered = None
        while serving is not None and time.monotonic() - start < 120:
            r = subprocess.run([xeno, "exec", "--timeout", "30", name2, "--", "true"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                answered = time.monotonic() - start
                break
    finally:
        q.kill()
        q.wait()
    return {
        "save_s": save_s, "suspend_ms": int(fields["suspend-ms"]), "write_ms": int(fields["write-ms"]),
        "bytes": int(fields["bytes"]), "serving_s": serving, "exec_s": answered,
    }


KIT = os.environ.get("XENOLITH_CACHE", "/var/cache/xenolith") + "/kit"


class QMP:
    def __init__(self, path, deadline=30):
        end = time.monotonic() + deadline
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.001)
        self.f = self.s.makefile("rwb", buffering=0)
        json.loads(self.f.readline())
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        while True:
            r = json.loads(self.f.readline())
            if "return" in r or "error" in r:
                return r


def qemu_run(size, run_dir, idle):
    image = os.path.join(run_dir, "qemu.save")
    base = ["qemu-system-x86_64", "-enable-kvm", "-M", "pc", "-m", size, "-kernel", KIT + "/vmlinuz",
            "-initrd", KIT + "/initrd.img", "-append", "console=ttyS0", "-display", "none", "-serial", "null",
            "-nodefaults"]
    q1 = os.path.join(run_dir, "qmp1.sock")
    p = subprocess.Popen(base + ["-qmp", f"unix:{q1},server=on,wait=off"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        m = QMP(q1)
        time.sleep(idle)
        t = time.monotonic()
        m.cmd("migrate", uri=f"exec:cat > {image}")
        while m.cmd("query-migrate")["return"].get("status") not in ("completed", "failed"):
            time.sleep(0.001)
        save_s = time.monotonic() - t
    finally:
        p.kill()
        p.wait()
    q2 = os.path.join(run_dir, "qmp2.sock")
    start = time.monotonic()
    p = subprocess.Popen(base + ["-qmp", f"unix:{q2},server=on,wait=off", "-incoming", f"exec:cat {image}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        m = QMP(q2)
        running = None
        while time.monotonic() - start < 60:
            if m.cmd("query-status")["return"].get("status") == "running":
                running = time.monotonic() - start
                break
            time.sleep(0.001)
    finally:
        p.kill()
        p.wait()
    size_b = os.path.getsize(image)
    os.unlink(image)
    return {"save_s": save_s, "running_s": running, "bytes": size_b}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="128M,1G")
    ap.add_argument("--xeno", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "xeno"))
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--idle", type=float, default=3.0)
    ap.add_argument("--qemu", action="store_true")
    a = ap.parse_args()
    run_dir = os.path.join(a.dir, f"xeno-bench-save-{os.getpid()}")
    os.makedirs(run_dir, exist_ok=True)
    image = os.path.join(run_dir, "guest.save")
    if a.qemu:
        for size in a.sizes.split(","):
            runs = [qemu_run(size, run_dir, a.idle) for _ in range(a.runs)]
            for i, r in enumerate(runs):
                print(f"qemu {size} run {i + 1}: save {r['save_s'] * 1000:.0f} ms ({r['bytes'] / 2**20:.1f} MiB), "
                      f"restore to running {(r['running_s'] or 0) * 1000:.0f} ms", file=sys.stderr)
            med = lambda k: statistics.median(r[k] for r in runs if r[k] is not None)
            print(f"qemu {size}: save {med('save_s') * 1000:.0f} ms, file {med('bytes') / 2**20:.1f} MiB; "
                  f"restore to running {med('running_s') * 1000:.0f} ms (medians of {len(runs)})")
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for size in a.sizes.split(","):
        runs = []
        for i in range(a.runs):
            r = one_run(a.xeno, size, run_dir, image, a.idle)
            runs.append(r)
            print(f"{size} run {i + 1}: save {r['save_s'] * 1000:.0f} ms (suspend {r['suspend_ms']} ms, "
                  f"write {r['write_ms']} ms, {r['bytes'] / 2**20:.1f} MiB); restore: serving "
                  f"{(r['serving_s'] or 0) * 1000:.0f} ms, exec answers {(r['exec_s'] or 0) * 1000:.0f} ms",
                  file=sys.stderr)
        med = lambda k: statistics.median(r[k] for r in runs if r[k] is not None)
        print(f"{size}: save {med('save_s') * 1000:.0f} ms (suspend {med('suspend_ms'):.0f} ms, write "
              f"{med('write_ms'):.0f} ms), image {med('bytes') / 2**20:.1f} MiB; restore to serving "
              f"{med('serving_s') * 1000:.0f} ms, to exec answering {med('exec_s') * 1000:.0f} ms "
              f"(medians of {len(runs)})")
        try:
            os.unlink(image)
        except OSError:
            pass
    shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
