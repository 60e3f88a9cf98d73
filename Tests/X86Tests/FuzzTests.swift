import Testing
import X86

/// Random and half-random byte strings: nothing may trap, lengths stay within
/// 15 and the bytes given, and emulation results stay self-consistent.
@Suite struct FuzzTests {
    /// Bytes that steer random strings into the interesting encodings.
    static let prefixes: [UInt8] = [0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x2e, 0x3e, 0x26, 0x36, 0x64, 0x65, 0x40, 0x41, 0x44, 0x48, 0x49, 0x4c, 0x4f]
    static let openers: [[UInt8]] = [
        [0x88], [0x89], [0xc6], [0xc7], [0x86], [0x87], [0x0f, 0xb0], [0x0f, 0xb1], [0x0f, 0xc7], [0x0f, 0xc0], [0x0f, 0xc1],
        [0x00], [0x01], [0x08], [0x09], [0x10], [0x11], [0x18], [0x19], [0x20], [0x21], [0x28], [0x29], [0x30], [0x31],
        [0x80], [0x81], [0x83], [0x0f, 0xba], [0x0f, 0xab], [0x0f, 0xb3], [0x0f, 0xbb], [0x0f, 0xc3], [0xaa], [0xab],
        [0xa2], [0xa3], [0xf6], [0xf7], [0xfe], [0xff],
        [0x0f, 0x01], [0x0f, 0x00], [0x0f, 0x20], [0x0f, 0x22], [0x0f, 0x21], [0x0f, 0x23], [0x8c], [0x8e],
        [0x0f, 0x0b, 0x78, 0x65, 0x6e], [0x0f, 0x38], [0x0f, 0x3a], [0xe4], [0xe5], [0x6c], [0x6f], [0xcd], [0xce], [0xcf],
    ]

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 0x5eed_1234)
        var buffer = [UInt8](repeating: 0, count: 24)
        var decoded = 0, emulated = 0, classified = 0, violations = 0
        var regs = RegisterFile()
        for iteration in 0..<200_000 {
            let available = Int(rng.next() % 21)  // 0...20 bytes
            var n = 0
            if iteration & 1 == 1 {
                // Half-random: some prefixes, an interesting opcode, random rest.
                for _ in 0..<Int(rng.next() % 4) where n < available {
                    buffer[n] = Self.prefixes[Int(rng.next() % UInt64(Self.prefixes.count))]
                    n += 1
                }
                for b in Self.openers[Int(rng.next() % UInt64(Self.openers.count))] where n < available {
                    buffer[n] = b
                    n += 1
                }
            }
            while n < available {
                buffer[n] = UInt8(truncatingIfNeeded: rng.next())
                n += 1
            }
            for i in 0..<16 { regs[i] = rng.next() % 3 == 0 ? rng.next() : rng.next() & 0xffff }
            regs.rip = rng.next()
            regs.rflags = 2 | (rng.next() & 0xcd5)
            let old = rng.next()
            let failRead = rng.next() % 8 == 0

            buffer.withUnsafeBytes { all in
                let bytes = UnsafeRawBufferPointer(rebasing: all[0..<available])
                if let insn = decode(bytes) {
                    decoded += 1
                    if insn.length < 1 || insn.length > 15 || insn.length > available { violations += 1 }
                    if insn.bytes.count != insn.length { violations += 1 }
                    _ = effectiveAddress(insn, registers: regs, fsBase: rng.next(), gsBase: rng.next())
                    var r = regs
                    if let w = emulateMemoryWrite(insn, registers: &r, fsBase: 0x1000, gsBase: 0x2000, oldValue: { _, _ in failRead ? nil : old }) {
                        emulated += 1
                        if ![1, 2, 4, 8, 16].contains(w.size) { violations += 1 }
                        if r.rip != regs.rip &+ UInt64(insn.length) { violations += 1 }
                        if case .store(let v) = w.write, w.size < 8, v >> UInt64(8 * w.size) != 0 { violations += 1 }
                    } else if r != regs {
                        violations += 1  // refused emulation must not touch registers
                    }
                }
                if let p = decodePrivileged(bytes) {
                    classified += 1
                    if p.length < 1 || p.length > 15 || p.length > available { violations += 1 }
                }
            }
        }
        #expect(violations == 0)
        // The steering must actually reach the code under test.
        #expect(decoded > 50_000)
        #expect(emulated > 5_000)
        #expect(classified > 1_000)
    }

    @Test func everyTruncationOfRandomInstructionsIsRefused() {
        // If n bytes decode to an instruction of length L, every shorter
        // prefix of it must be refused, and any extra bytes must not matter.
        var rng = SplitMix64(seed: 42)
        var buffer = [UInt8](repeating: 0, count: 15)
        var checked = 0, violations = 0
        for _ in 0..<20_000 {
            for i in 0..<15 { buffer[i] = UInt8(truncatingIfNeeded: rng.next()) }
            buffer.withUnsafeBytes { all in
                guard let insn = decode(all) else { return }
                checked += 1
                for n in 0..<insn.length where decode(UnsafeRawBufferPointer(rebasing: all[0..<n])) != nil {
                    violations += 1
                }
                if decode(UnsafeRawBufferPointer(rebasing: all[0..<insn.length])) != insn { violations += 1 }
            }
        }
        #expect(violations == 0)
        #expect(checked > 10_000)
    }
}
