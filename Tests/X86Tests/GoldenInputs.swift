import X86

// Inputs and digest for the golden vectors in GoldenVectors.swift. The
// expected digests were produced by executing each instruction natively on
// this project's x86-64 host (AMD EPYC, at CPL3 from a small C/asm harness
// that loads these registers, runs the bytes and saves registers and flags;
// the harness is not part of the package) with exactly these inputs.
// Only `rdi` holds an address (the 64-byte window's middle), so the digest
// records rdi relative to the window and is independent of where it lives.

struct GoldenRNG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Golden {
    static let windowSize = 64
    static let statusFlags: UInt64 = 0x8d5  // CF PF AF ZF SF OF

    /// The seed of vector `index` for an instruction.
    static func seed(_ bytes: [UInt8], _ index: Int) -> UInt64 {
        UInt64(index) &* 0x1_0001 &+ UInt64(bytes.count) &* 0x100 &+ UInt64(bytes.last ?? 0)
    }

    /// Registers and the initial 64-byte window for one vector; rdi is set
    /// to `windowBase + 32` (windowBase must be 16-aligned).
    static func inputs(seed: UInt64, text: String, windowBase: UInt64) -> (RegisterFile, [UInt8]) {
        var rng = GoldenRNG(state: seed)
        var regs = RegisterFile()
        for i in 0..<16 { regs[i] = rng.next() }
        for i in 0..<16 where rng.next() % 3 == 0 { regs[i] = rng.next() % 4 &- 2 }
        var window = [UInt8](repeating: 0, count: windowSize)
        for i in 0..<windowSize { window[i] = UInt8(truncatingIfNeeded: rng.next()) }
        regs.rsp = 0
        regs.rip = 0x1000
        regs.rdi = windowBase + 32
        let df: UInt64 = text.hasPrefix("stos") && rng.next() & 1 == 1 ? RFLAGS.direction : 0
        regs.rflags = 0x202 | (rng.next() & statusFlags) | df
        if text.contains("bt") {
            // Bit offsets up to ±120 bits stay inside the window.
            let offset = UInt64(bitPattern: Int64(rng.next() % 240) - 120)
            for i in [GPR.rax, GPR.rsi, GPR.rcx, GPR.r10, GPR.r11, GPR.r12, GPR.rdx] { regs[i] = offset }
        }
        func load(_ at: Int) -> UInt64 {
            (0..<8).reduce(0) { $0 | UInt64(window[at + $1]) << UInt64(8 * $1) }
        }
        if text.contains("cmpxchg") && rng.next() & 1 == 1 {
            // Make the comparison succeed half of the time.
            if text.contains("16b") {
                regs.rax = load(32)
                regs.rdx = load(40)
            } else if text.contains("8b") {
                regs.rax = load(32) & 0xffff_ffff
                regs.rdx = load(32) >> 32
            } else {
                regs.rax = (regs.rax & ~0xffff_ffff) | (load(32) & 0xffff_ffff)
            }
        }
        return (regs, window)
    }

    /// The flags an instruction defines (undefined ones are not compared).
    static func flagMask(_ text: String) -> UInt64 {
        var mask: UInt64 = ~0
        if text.contains("and") || text.contains("or") || text.contains("xor") { mask &= ~RFLAGS.auxiliaryCarry }
        if text.contains("bt") { mask &= ~(RFLAGS.overflow | RFLAGS.sign | RFLAGS.auxiliaryCarry | RFLAGS.parity | RFLAGS.zero) }
        return mask
    }

    /// FNV-1a over the registers (rdi relative to the window), masked flags
    /// and the window's bytes after the instruction.
    static func digest(_ regs: RegisterFile, window: [UInt8], windowBase: UInt64, text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ v: UInt64) {
            for i in 0..<8 {
                h ^= (v >> UInt64(8 * i)) & 0xff
                h = h &* 0x0000_0100_0000_01b3
            }
        }
        for i in 0..<16 { mix(i == GPR.rdi ? regs[i] &- windowBase : regs[i]) }
        mix(regs.rflags & flagMask(text))
        for b in window { mix(UInt64(b)) }
        return h
    }
}
