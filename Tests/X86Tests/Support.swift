import X86

/// Decodes a byte array (tests only; the decoder itself never allocates).
func dec(_ bytes: [UInt8]) -> Instruction? {
    bytes.withUnsafeBytes { decode($0) }
}

func priv(_ bytes: [UInt8]) -> PrivilegedInstruction? {
    bytes.withUnsafeBytes { decodePrivileged($0) }
}

/// A sparse little-endian guest memory for the emulator's read closure.
struct FakeMemory {
    var bytes: [UInt64: UInt8] = [:]
    /// Addresses whose read fails (as an unmapped page would).
    var unreadable: Set<UInt64> = []
    var reads: [(UInt64, Int)] = []

    mutating func store(_ value: UInt64, at address: UInt64, size: Int) {
        for i in 0..<size {
            bytes[address &+ UInt64(i)] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i))
        }
    }

    func load(_ address: UInt64, size: Int) -> UInt64? {
        var v: UInt64 = 0
        for i in 0..<size {
            let a = address &+ UInt64(i)
            if unreadable.contains(a) { return nil }
            v |= UInt64(bytes[a] ?? 0) << UInt64(8 * i)
        }
        return v
    }
}

/// Decodes and emulates one write with `memory` as the old contents.
func emulate(
    _ bytes: [UInt8], _ regs: inout RegisterFile, _ memory: inout FakeMemory,
    fsBase: UInt64 = 0, gsBase: UInt64 = 0
) -> WriteResult? {
    guard let insn = dec(bytes) else { return nil }
    let mem = memory
    var reads: [(UInt64, Int)] = []
    let r = emulateMemoryWrite(insn, registers: &regs, fsBase: fsBase, gsBase: gsBase) { a, s in
        reads.append((a, s))
        return mem.load(a, size: s)
    }
    memory.reads = reads
    return r
}

/// Deterministic PRNG (SplitMix64) for the fuzz tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

let CF = RFLAGS.carry, PF = RFLAGS.parity, AF = RFLAGS.auxiliaryCarry
let ZF = RFLAGS.zero, SF = RFLAGS.sign, OF = RFLAGS.overflow
