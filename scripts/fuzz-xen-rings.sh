#!/usr/bin/env bash
# Fuzzes the Xen ring and grant handling (Sources/XenRings: grant entries,
# blkif and netif rings, request checks) with libFuzzer and AddressSanitizer.
#
#   scripts/fuzz-xen-rings.sh [runs] [extra libFuzzer flags...]
#
# Compiles Sources/BlockStorage as its own module, then Sources/XenRings and
# Sources/XenRingFuzz as one module with `swiftc -sanitize=fuzzer,address`,
# outside SwiftPM, so `swift build` / `swift test` never need the fuzzer
# runtime. Runs `runs` executions (default 1000000) from a few hand-made
# seeds plus whatever corpus earlier runs left in $FUZZ_DIR (default
# /tmp/xen-rings-fuzz). A crash leaves crash-* there and makes the script
# fail. See docs/FUZZING.md.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

runs=${1:-1000000}
shift || true
work=${FUZZ_DIR:-/tmp/xen-rings-fuzz}
swiftc=${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
mkdir -p "$work/corpus" "$work/seeds" "$work/modules/CKVM"

# CKVM's atomics are static inline functions in its header: a module map is all it takes.
cat > "$work/modules/CKVM/module.modulemap" <<MAP
module CKVM [system] {
    header "$repo/Sources/CKVM/include/ckvm.h"
    export *
}
MAP

echo "fuzz-xen-rings: compiling BlockStorage"
"$swiftc" -sanitize=address -parse-as-library -O -g -module-name BlockStorage \
    -emit-module -emit-module-path "$work/modules/BlockStorage.swiftmodule" \
    -c Sources/BlockStorage/*.swift -o "$work/BlockStorage.o"

sources=(Sources/XenRings/*.swift Sources/XenRingFuzz/*.swift)
binary=$work/xen-rings-fuzz
echo "fuzz-xen-rings: compiling ${#sources[@]} files"
"$swiftc" -sanitize=fuzzer,address -parse-as-library -O -g \
    -I "$work/modules" -I "$work/modules/CKVM" \
    -module-name XenRingFuzz "${sources[@]}" "$work/BlockStorage.o" -o "$binary" \
    2> >(grep -v "Cannot export local symbol '__asan" >&2)   # ld.gold's noise about ASan's own symbols

# Seeds: programs that connect, post good requests and serve them, so the
# fuzzer starts past the framing. Layout of an input: docs/FUZZING.md.
seed() { printf "$2" > "$work/seeds/$1"; }
# Header 0 (writable disk). A read of sectors 0-7 into frame 3 (grant 3) and a
# write of sectors 8-9 from frame 4 (read-only grant 13), id 1 and 2; publish; serve.
seed block-rw '\x00\x00\x00\x01\x01\x00\x00\x03\x00\x07\x00\x01\x01\x02\x00\x08\x0d\x00\x01\x01\x03\xff'
# A flush without data, a discard of 4 sectors at 16, an unknown operation; serve.
seed block-other '\x00\x00\x02\x00\x03\x00\x00\x00\x00\x03\x00\x04\x00\x10\x04\x00\x06\x00\x05\x00\x00\x01\x03\x00'
# Read-only disk, a write: refused.
seed block-ro '\x01\x00\x01\x01\x07\x00\x00\x0c\x00\x01\x01\x03\x00'
# Transmit: a 60-byte packet in two slots (grant 14 = frame 5 read-only,
# offset 0, more-data; then grant 15, 20 bytes), checksum blank; serve.
seed net-tx '\x00\x04\x0e\x00\x00\x05\x07\x3c\x00\x04\x0f\x00\x00\x00\x08\x14\x00\x05\x06\xff'
# Receive: two buffers (ids 1, 2 on grants 6, 7), three frames of 60, 1500 and 5000 bytes.
seed net-rx '\x00\x07\x01\x00\x06\x07\x02\x00\x07\x08\x09\x03\x3c\x00\xdc\x05\x88\x13'
# Grants: a second table frame, a grant for domain 1, a read-only ring; reconnect.
seed grants '\x02\x0c\x02\x0a\x05\x80\x01\x00\x03\x0a\x00\x00\x05\x00\x00\x0d\x00\x0d\x01'

# libFuzzer prints the stack of a crash itself; Swift's backtracer would
# only add minutes of symbolication.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
# Every crash found so far must stay fixed (each is also a unit test in
# Tests/XenRingsTests/FuzzRegressionTests.swift).
# They are kept as hex text (nothing binary in the repository) and decoded here.
mkdir -p "$work/replays"
replays=()
for hex in scripts/fuzz-xen-rings-crashes/*.hex; do
    out="$work/replays/$(basename "$hex" .hex)"
    python3 -c 'import sys; open(sys.argv[2], "wb").write(bytes.fromhex(open(sys.argv[1]).read().strip()))' "$hex" "$out"
    replays+=("$out")
done
echo "fuzz-xen-rings: replaying ${#replays[@]} earlier crashes"
if ! SWIFT_BACKTRACE=enable=no "$binary" "${replays[@]}" > "$work/replay.log" 2>&1; then
    grep -E 'Fatal error|ERROR:|Running:' "$work/replay.log" >&2
    echo "fuzz-xen-rings: an earlier crash is back (log: $work/replay.log)" >&2
    exit 1
fi

echo "fuzz-xen-rings: $runs runs, corpus $work/corpus"
cd "$work"
"$binary" -runs="$runs" -max_len=4096 -timeout=20 -print_final_stats=1 "$@" corpus seeds
