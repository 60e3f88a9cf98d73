#!/usr/bin/env python3
"""Guest I/O beside the host, in one run: fio and iperf3 inside a PV guest
(Debian bookworm from scripts/build-rootfs.sh, booted with systemd) and the
same tools on the host, on the same file and the same TAP link.

Block, two ways, each like for like:
- cold: a 32 GiB data file of random bytes (no read hits a hole) is the
  guest's xvdb. Page caches are dropped before every run, and 15 s never
  read to the file's end, so every byte either side reads comes from the
  host's disk. Sequential read (1 MiB blocks, queue depth 16) and 4 KiB
  random read (queue depth 32), 15 s each.
- warm: a 1 GiB file (xvdc) already in the host's page cache, read
  sequentially again and again: what the guest's I/O path costs when the
  disk costs nothing. The host's fio runs with --invalidate=0 (fio's
  default drops the file's cache at every pass, which would make the host
  read its disk while the guest read the cache).
The guest's fio uses O_DIRECT (its own page cache out of the way). The
cold disk is the VMM's default, cache=none: blkback reads it with O_DIRECT
too. So each cold figure of the guest sits beside two of the host's: fio
buffered (what a process reading the file gets from the host's page cache
and its read-ahead) and fio --direct=1 (the disk itself, read the way the
guest and the VMM read it). The warm disk is attached with
cache=writeback, so that the guest's reads come from the host's cache.

Network: iperf3 TCP, 10 s, guest -> host and host -> guest (-R), over a TAP
whose host end has 10.77.0.1/24. The host's own iperf3 over loopback is
printed as the ceiling of this machine, not as a like-for-like peer.

QEMU cannot run a guest's user space on this host's KVM (see
docs/BENCHMARKS.md), so the QEMU columns of the issue are not measured here.

Usage: bench/pv_io.py [--runs 3] [--xeno PATH] [--cold-gib 32] [--block-only]
"""
import argparse, collections, contextlib, json, os, select, shutil, statistics, subprocess, tempfile, time

CACHE = os.environ.get("XENOLITH_CACHE", "/var/cache/xenolith")
IMAGE = CACHE + "/images/bookworm.ext4"
TAP, HOST_IP, GUEST_IP = "xbench0", "10.77.0.1", "10.77.0.2"

def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)

def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")

FIO_SEQ = "--name=seq --rw=read --bs=1M --iodepth=16 --ioengine=libaio --runtime=15 --time_based --output-format=json"
FIO_RAND = "--name=rand --rw=randread --bs=4k --iodepth=32 --ioengine=libaio --runtime=15 --time_based --output-format=json"

def fio_value(text, key):
    """MB/s (key=bw) or IOPS (key=iops) from fio's JSON."""
    start = text.index("{")
    data = json.loads(text[start:text.rindex("}") + 1])
    read = data["jobs"][0]["read"]
    return read["bw"] / 1024.0 if key == "bw" else read["iops"]

def prepare_cache(warm_file):
    """Before a run: `warm_file` read into the host's page cache, or with
    None (a cold run) every cache dropped."""
    if warm_file:
        sh(f"cat {warm_file} > /dev/null")
    else:
        drop_caches()

def host_fio(path, args, key, warm=False, direct=False):
    """The host's fio on `path`: cold (caches dropped first) or warm (the
    file read into the page cache first, and kept there); buffered unless
    `direct`."""
    prepare_cache(path if warm else None)
    out = subprocess.run(f"fio --filename={path} --direct={int(direct)} {'--invalidate=0 ' if warm else ''}{args}",
                         shell=True, check=True, capture_output=True, text=True).stdout
    return fio_value(out, key)

def random_file(path, mib):
    """`mib` MiB of incompressible bytes (an AES-CTR keystream: /dev/urandom
    is four times slower here, and a sparse file's holes would read as free)."""
    sh(f"openssl enc -aes-128-ctr -pass pass:xenolith -nosalt -pbkdf2 < /dev/zero 2>/dev/null | head -c {mib}M > {path}")

def pv_argv(xeno, cold, warm):
    """The command line of a PV guest of the Debian image at `root`, with the
    cold and warm files as xvdb (cache=none, the default) and xvdc
    (cache=writeback)."""
    return lambda root: [xeno, "run", "--memory", "1G", "--vcpus", "2", "--disk", root, "--disk", cold,
                         "--disk", warm + ",cache=writeback",
                         "--net", f"tap={TAP},mac=00:16:3e:77:00:02", "--cmdline", "console=hvc0 root=/dev/xvda quiet"]

class Guest:
    """The Debian image booted from a copy of it by `argv_for(copy)` (a PV
    guest by default), driven through its console."""
    def __init__(self, argv_for):
        self.root = tempfile.mktemp(prefix="xeno-bench-root-", suffix=".ext4")
        sh(f"cp --sparse=always {IMAGE} {self.root}")
        self.p = subprocess.Popen(argv_for(self.root), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, bufsize=0)
        self.out = b""
        self.expect(b"xenolith login: ", 600)
        self.send("root")
        self.expect(b"root@xenolith:~# ", 60)
        # udev names the NIC enX0 (netfront) or enp0sN (virtio-net) in the Debian system.
        self.send(f"nic=$(ls /sys/class/net | grep -v '^lo$' | head -1); ip addr add {GUEST_IP}/24 dev $nic; ip link set $nic up; stty -echo")
        self.expect(b"root@xenolith:~# ", 60)

    def send(self, line):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def expect(self, cue, timeout):
        deadline = time.monotonic() + timeout
        while cue not in self.out:
            r, _, _ = select.select([self.p.stdout], [], [], max(0.1, deadline - time.monotonic()))
            if not r:
                raise RuntimeError(f"guest: no {cue!r} within {timeout} s; last output: {self.out[-400:]!r}")
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"guest ended; last output: {self.out[-400:]!r}")
            self.out += chunk
        at = self.out.index(cue) + len(cue)
        seen, self.out = self.out[:at], self.out[at:]
        return seen.decode(errors="replace")

    def run(self, command, timeout=120):
        """Runs `command`, returns what it printed between two markers."""
        self.send(f"echo BEGIN-OUT; {command}; echo END-OUT")
        text = self.expect(b"\nEND-OUT", timeout)
        return text[text.rindex("BEGIN-OUT") + len("BEGIN-OUT"):text.rindex("END-OUT")]

    # The guest's names of the cold and the warm data disk.
    cold_disk, warm_disk = "/dev/xvdb", "/dev/xvdc"

    def fio(self, args, key, warm_file=None):
        """fio on the cold disk (the host's caches dropped first), or on the
        warm one with `warm_file`, its host file, read into the host's page
        cache first."""
        prepare_cache(warm_file)
        device = self.warm_disk if warm_file else self.cold_disk
        return fio_value(self.run(f"fio --filename={device} --direct=1 {args}"), key)

    def close(self):
        try:
            self.send("poweroff")
            self.p.wait(timeout=120)
        except Exception:
            self.p.kill()
        os.unlink(self.root)

@contextlib.contextmanager
def bench_files(cold_gib):
    """The cold and the warm data file, and the TAP with the host's address;
    all removed afterwards."""
    cold = tempfile.mktemp(prefix="xeno-bench-cold-", suffix=".img")
    warm = tempfile.mktemp(prefix="xeno-bench-warm-", suffix=".img")
    try:
        random_file(cold, cold_gib << 10)
        random_file(warm, 1024)
        sh(f"ip tuntap add dev {TAP} mode tap && ip addr add {HOST_IP}/24 dev {TAP} && ip link set {TAP} up")
        yield cold, warm
    finally:
        subprocess.run(f"ip link del {TAP}", shell=True, stderr=subprocess.DEVNULL)
        for f in (cold, warm):
            if os.path.exists(f):
                os.unlink(f)

# The block measurements: name, fio job, figure, warm.
BLOCK = (("seq", FIO_SEQ, "bw", False), ("rand", FIO_RAND, "iops", False), ("warm", FIO_SEQ, "bw", True))

def measure_block(g, prefix, run, cold, warm, results, ratios):
    """Each of guest `g`'s block figures (results[prefix + "_seq"]...) right
    beside the host's (results["host_seq"], and for cold reads also
    results["hostdirect_seq"]...), so that both meet the same disk (this
    machine's disk swings by 2x in minutes), who goes first alternating run
    by run: the side that reads the file second has read faster here,
    caches below this machine's page cache presumably. ratios[prefix +
    "_seq"] gets the guest/host-buffered ratio of each pair, ratios[prefix +
    "_seq_direct"] the guest/host-direct one."""
    for key, args, metric, warm_run in BLOCK:
        def host():
            results["host_" + key].append(host_fio(warm if warm_run else cold, args, metric, warm=warm_run))
            if not warm_run:
                results["hostdirect_" + key].append(host_fio(cold, args, metric, direct=True))
        guest = lambda: results[f"{prefix}_{key}"].append(g.fio(args, metric, warm_file=warm if warm_run else None))
        for side in ((host, guest) if run % 2 == 0 else (guest, host)):
            side()
        mine = results[f"{prefix}_{key}"][-1]
        ratios.setdefault(f"{prefix}_{key}", []).append(mine / results["host_" + key][-1])
        if not warm_run:
            ratios.setdefault(f"{prefix}_{key}_direct", []).append(mine / results["hostdirect_" + key][-1])

def measure_tcp(g, prefix, results):
    """iperf3 guest -> host and host -> guest over the TAP."""
    s = iperf_server(HOST_IP)
    try:
        results[prefix + "_g2h"].append(iperf_mbps(g.run(f"iperf3 -c {HOST_IP} -t 10 -J", 60)))
        results[prefix + "_h2g"].append(iperf_mbps(g.run(f"iperf3 -c {HOST_IP} -t 10 -J -R", 60)))
    finally:
        s.kill(); s.wait()

def print_block(prefix, med, ratios):
    def pairs(r):
        return f"median {100 * statistics.median(r):.0f}% ({', '.join(f'{100 * x:.0f}' for x in r)})"
    for key, name, unit in (("seq", "sequential read, cold ", "MB/s"), ("rand", "4 KiB random read, cold", "IOPS"),
                            ("warm", "sequential read, warm ", "MB/s")):
        line = (f"block {name}  {prefix} {med[f'{prefix}_{key}']:.0f} {unit}   host buffered {med['host_' + key]:.0f} {unit}, "
                f"{prefix}/host of each pair: {pairs(ratios[f'{prefix}_{key}'])}")
        if f"{prefix}_{key}_direct" in ratios:
            line += (f"\n{'':32}host direct {med['hostdirect_' + key]:.0f} {unit}, "
                     f"{prefix}/host of each pair: {pairs(ratios[f'{prefix}_{key}_direct'])}")
        print(line)

def iperf_server(address):
    """A persistent iperf3 server, returned once it accepts connections
    (a probe connection it rejects is harmless to later tests)."""
    import socket
    p = subprocess.Popen(["iperf3", "-s", "-B", address], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, 5201), timeout=1).close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("iperf3 -s did not listen")

def iperf_mbps(text):
    start = text.index("{")
    data = json.loads(text[start:text.rindex("}") + 1])
    if "error" in data:
        raise RuntimeError(f"iperf3: {data['error']}")
    return data["end"]["sum_received"]["bits_per_second"] / 1e6

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--xeno", default=os.path.join(os.path.dirname(__file__), "../.build/release/xeno"))
    ap.add_argument("--cold-gib", type=int, default=32,
                    help="the cold file's size: more than 15 s of either side's reads")
    ap.add_argument("--block-only", action="store_true", help="skip the network measurements")
    a = ap.parse_args()
    for tool in ("fio", "iperf3"):
        if not shutil.which(tool):
            sh(f"apt-get install -y -q {tool} >/dev/null")
    results = collections.defaultdict(list)
    ratios = {}
    with bench_files(a.cold_gib) as (cold, warm):
        for run in range(a.runs):
            g = Guest(pv_argv(a.xeno, cold, warm))
            try:
                measure_block(g, "guest", run, cold, warm, results, ratios)
                print(f"run {run + 1}: block " + ", ".join(f"{k}={results[k][-1]:.0f}" for k in
                      ("host_seq", "hostdirect_seq", "guest_seq", "host_rand", "hostdirect_rand", "guest_rand",
                       "host_warm", "guest_warm")), flush=True)
                if a.block_only:
                    continue
                measure_tcp(g, "guest", results)
            finally:
                g.close()
            if a.block_only:
                continue
            lo = iperf_server("127.0.0.1")
            out = subprocess.run(["iperf3", "-c", "127.0.0.1", "-t", "10", "-J"], capture_output=True, text=True).stdout
            lo.kill(); lo.wait()
            try:
                results["loopback"].append(iperf_mbps(out))
            except RuntimeError as e:     # the ceiling only: a failed loopback run does not void the guest's figures
                print(f"run {run + 1}: host loopback iperf3 failed: {e}", flush=True)
                results["loopback"].append(float("nan"))
            print(f"run {run + 1}: " + ", ".join(f"{k}={v[-1]:.0f}" for k, v in results.items() if v), flush=True)
    med = {k: statistics.median(v) if v else float("nan") for k, v in results.items()}
    print(f"\nmedians of {a.runs} runs")
    print_block("guest", med, ratios)
    print(f"TCP guest->host {med['guest_g2h']:.0f} Mbit/s, host->guest {med['guest_h2g']:.0f} Mbit/s (host loopback {med['loopback']:.0f} Mbit/s)")

if __name__ == "__main__":
    main()
