#!/usr/bin/env bash
# Fuzzes the virtqueue core (Sources/Virtio) with libFuzzer and AddressSanitizer.
#
#   scripts/fuzz-virtqueue.sh [runs] [extra libFuzzer flags...]
#
# Compiles Sources/Virtio (without its KVM glue) and Sources/VirtqueueFuzz as
# one module with `swiftc -sanitize=fuzzer,address`, outside SwiftPM, so
# `swift build` / `swift test` never need the fuzzer runtime. Runs `runs`
# executions (default 1000000) from a few hand-made seeds plus whatever corpus
# earlier runs left in $FUZZ_DIR (default /tmp/virtqueue-fuzz). A crash
# leaves crash-* there and makes the script fail. See docs/FUZZING.md.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-1000000}
shift || true
work=${FUZZ_DIR:-/tmp/virtqueue-fuzz}
swiftc=${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
mkdir -p "$work/corpus" "$work/seeds"

# Every file of the core except the one that imports KVM.
sources=()
for f in Sources/Virtio/*.swift; do
    [ "$(basename "$f")" = "GuestMemory+GuestMemoryView.swift" ] || sources+=("$f")
done
sources+=(Sources/VirtqueueFuzz/*.swift)

binary=$work/virtqueue-fuzz
echo "fuzz-virtqueue: compiling ${#sources[@]} files"
"$swiftc" -sanitize=fuzzer,address -parse-as-library -O -g \
    -module-name VirtqueueFuzz "${sources[@]}" -o "$binary"

# Seeds: valid queues with real chains, so the fuzzer starts past the
# configuration checks. Layout of an input: docs/FUZZING.md.
poke() { printf "$2" | dd of="$1" bs=1 seek=$(($3)) conv=notrunc status=none; }
seed() {  # seed FILE HEADER(13 bytes, printf escapes) PROGRAM
    local file=$work/seeds/$1
    : > "$file"
    printf "$2" >> "$file"
    printf "$3" >> "$file"
    head -c 4096 /dev/zero >> "$file"
    image=$(( 13 + $(printf "$3" | wc -c) ))
    # Rings of a size-8 queue: descriptors at 0x000, avail at 0x100, used at 0x200.
    # Descriptor 0: 0x400+16 readable, NEXT 1. Descriptor 1: 0x500+32 writable.
    poke "$file" '\x00\x04\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x01\x00\x01\x00' $((image + 0x00))
    poke "$file" '\x00\x05\x00\x00\x00\x00\x00\x00\x20\x00\x00\x00\x02\x00\x00\x00' $((image + 0x10))
    # Descriptor 2: indirect table at 0x600 of two entries (0x700+8 readable, NEXT 1; 0x780+8 writable).
    poke "$file" '\x00\x06\x00\x00\x00\x00\x00\x00\x20\x00\x00\x00\x04\x00\x00\x00' $((image + 0x20))
    poke "$file" '\x00\x07\x00\x00\x00\x00\x00\x00\x08\x00\x00\x00\x01\x00\x01\x00' $((image + 0x600))
    poke "$file" '\x80\x07\x00\x00\x00\x00\x00\x00\x08\x00\x00\x00\x02\x00\x00\x00' $((image + 0x610))
    # avail: flags 0, idx 2, ring [0, 2].
    poke "$file" '\x00\x00\x02\x00\x00\x00\x02\x00' $((image + 0x100))
}
header='\x03\x03\x0f\x00\x00\x00\x00\x00\x01\x00\x02\x00'   # size 8, both features, 16 segments
seed drain "$header\x00" ''
seed program "$header\x0c" '\x00\x00\x01\x04\x08\x0b\x05\x06\x02\x03\x04\x09'
seed noevent '\x03\x01\x0f\x00\x00\x00\x00\x00\x01\x00\x02\x00\x00' ''

echo "fuzz-virtqueue: $runs runs, corpus $work/corpus"
cd "$work"
"$binary" -runs="$runs" -max_len=8192 -print_final_stats=1 "$@" corpus seeds
