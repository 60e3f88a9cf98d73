#!/usr/bin/env python3
"""Which initcall a running HVM guest's kernel is in, read from its own log.

    scripts/hvm-initcalls.py PID [COUNT]      # as root; PID of `xeno run --hvm`

Boot the guest with `initcall_debug` on its command line. Its "calling" and
"initcall ... returned" records are KERN_DEBUG, so the console at an
ordinary loglevel never shows them, but they are in the kernel's log buffer
in guest RAM, which is the VMM's memfd mapping: this reads that mapping
through /proc/PID/mem and prints the last COUNT records (the buffer is a
ring, so on a long boot the order can wrap). A "calling" without its
"returned" is the initcall the kernel is in now.
"""
import re
import sys

if len(sys.argv) < 2:
    sys.exit(__doc__)
pid = int(sys.argv[1])
count = int(sys.argv[2]) if len(sys.argv) > 2 else 12

ram = None
with open(f"/proc/{pid}/maps") as maps:
    for line in maps:
        if "/memfd:xenolith-" in line:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            ram = (start, end)
            break
if ram is None:
    sys.exit(f"process {pid} has no xenolith guest-memory mapping")

record = re.compile(rb"(calling  [A-Za-z_0-9.]+\+0x[0-9a-f]+/0x[0-9a-f]+ @ \d+"
                    rb"|initcall [A-Za-z_0-9.]+\+0x[0-9a-f]+/0x[0-9a-f]+ returned -?\d+ after \d+ usecs)")
hits = []
chunk = 16 << 20
with open(f"/proc/{pid}/mem", "rb") as mem:
    for offset in range(0, ram[1] - ram[0], chunk):
        mem.seek(ram[0] + offset)
        data = mem.read(min(chunk + 256, ram[1] - ram[0] - offset))
        for m in record.finditer(data):
            if m.start() < chunk:
                hits.append((offset + m.start(), m.group(0).decode()))
if not hits:
    sys.exit("no initcall_debug records in guest memory (is initcall_debug on the command line?)")
print(f"{len(hits)} records; the last {min(count, len(hits))} by address:")
for address, text in hits[-count:]:
    print(f"  {address:#012x}  {text}")
