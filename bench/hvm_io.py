#!/usr/bin/env python3
"""HVM guest I/O beside QEMU, in one run, on hardware-assisted KVM: the same
Debian guest (scripts/build-rootfs.sh, booted by the kit's kernel and
initramfs, 2 vCPUs, 1 GiB) under `xeno run --hvm` (virtio-blk and virtio-net
over PCI) and under QEMU (`-M pc`, virtio-blk-pci with aio=threads, cache=none
as Xenolith's default and cache=writeback for the warm file as Xenolith's
`cache=writeback` there, userspace virtio-net on a TAP, vhost off), each running
the fio and iperf3 of bench/pv_io.py (cold and warm files, as there: /dev/vdb
and /dev/vdc) and over the same TAP; the host's own fio on the same files runs beside
each guest's, as in bench/pv_io.py.

On a software-nested KVM (kvm_pvm) no HVM guest reaches user space, so this
refuses to run there and says so; PV guests are measured by bench/pv_io.py.

Usage: bench/hvm_io.py [--runs 3] [--xeno PATH] [--cold-gib 32] [--block-only]
"""
import argparse, collections, os, shutil, statistics, sys
import pv_io
from pv_io import TAP, bench_files, measure_block, measure_tcp, print_block, sh

KIT = pv_io.CACHE + "/kit"
CMDLINE = "console=ttyS0 root=/dev/vda quiet"
MAC = "52:54:00:77:00:02"


class HVMGuest(pv_io.Guest):
    """The Debian guest under one VMM, driven through its serial console."""
    cold_disk, warm_disk = "/dev/vdb", "/dev/vdc"


def xenolith_argv(xeno, cold, warm):
    return lambda root: [xeno, "run", "--hvm", "--memory", "1G", "--vcpus", "2", "--disk", root, "--disk", cold,
                         "--disk", warm + ",cache=writeback", "--net", f"tap={TAP},mac={MAC}", "--cmdline", CMDLINE]


def qemu_argv(cold, warm):
    def argv(root):
        a = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-M", "pc", "-m", "1G", "-smp", "2",
             "-nographic", "-nodefaults", "-serial", "stdio", "-no-reboot",
             "-kernel", KIT + "/vmlinuz", "-initrd", KIT + "/initrd.img", "-append", CMDLINE,
             "-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no,vhost=off",
             "-device", f"virtio-net-pci,netdev=n0,mac={MAC}"]
        # The same caching as Xenolith's disks: none for the root and the
        # cold disk (O_DIRECT), the host's page cache for the warm one.
        for i, (path, cache) in enumerate(((root, "none"), (cold, "none"), (warm, "writeback"))):
            a += ["-drive", f"file={path},if=none,id=d{i},format=raw,aio=threads,cache={cache}",
                  "-device", f"virtio-blk-pci,drive=d{i}"]
        return a
    return argv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--xeno", default=os.path.join(os.path.dirname(__file__), "../.build/release/xeno"))
    ap.add_argument("--cold-gib", type=int, default=32)
    ap.add_argument("--block-only", action="store_true", help="skip the network measurements")
    a = ap.parse_args()
    if os.path.exists("/sys/module/kvm_pvm"):
        sys.exit("hvm_io: this KVM is software-nested (kvm_pvm): an HVM guest cannot run user space here, "
                 "so neither VMM's guest can run fio; run bench/pv_io.py for PV guests, or this on hardware-assisted KVM")
    for tool in ("fio", "iperf3", "qemu-system-x86_64"):
        if not shutil.which(tool):
            sh(f"apt-get install -y -q {'qemu-system-x86' if tool.startswith('qemu') else tool} >/dev/null")
    results, ratios = collections.defaultdict(list), {}
    with bench_files(a.cold_gib) as (cold, warm):
        for run in range(a.runs):
            for prefix, argv in (("xeno", xenolith_argv(a.xeno, cold, warm)), ("qemu", qemu_argv(cold, warm))):
                g = HVMGuest(argv)
                try:
                    measure_block(g, prefix, run, cold, warm, results, ratios)
                    if not a.block_only:
                        measure_tcp(g, prefix, results)
                finally:
                    g.close()
            print(f"run {run + 1}: " + ", ".join(f"{k}={v[-1]:.0f}" for k, v in results.items() if v), flush=True)
    med = {k: statistics.median(v) if v else float("nan") for k, v in results.items()}
    print(f"\nmedians of {a.runs} runs (the host beside each VMM's guest)")
    for prefix in ("xeno", "qemu"):
        print_block(prefix, med, ratios)
    print(f"Xenolith / QEMU: sequential cold {100 * med['xeno_seq'] / med['qemu_seq']:.0f}%, "
          f"random {100 * med['xeno_rand'] / med['qemu_rand']:.0f}%, warm {100 * med['xeno_warm'] / med['qemu_warm']:.0f}%")
    if not a.block_only:
        print(f"TCP guest->host {med['xeno_g2h']:.0f} / {med['qemu_g2h']:.0f} Mbit/s, "
              f"host->guest {med['xeno_h2g']:.0f} / {med['qemu_h2g']:.0f} Mbit/s (Xenolith / QEMU)")


if __name__ == "__main__":
    main()
