import Testing
import X86

/// Every emulated instruction form against results recorded on a real CPU
/// (GoldenVectors.swift): registers, defined flags and memory must match.
@Suite struct GoldenTests {
    @Test func emulatorMatchesHardware() {
        let windowBase: UInt64 = 0xffff_8880_0123_4000
        var checked = 0
        for vector in goldenVectors {
            guard let insn = dec(vector.bytes) else {
                Issue.record("does not decode: \(vector.text)")
                continue
            }
            for (index, expected) in vector.digests.enumerated() {
                let seed = Golden.seed(vector.bytes, index)
                let (regs, window) = Golden.inputs(seed: seed, text: vector.text, windowBase: windowBase)
                var after = regs
                let result = emulateMemoryWrite(insn, registers: &after) { address, size in
                    let offset = Int(truncatingIfNeeded: address &- windowBase)
                    guard offset >= 0, offset + size <= Golden.windowSize else { return nil }
                    return (0..<size).reduce(0) { $0 | UInt64(window[offset + $1]) << UInt64(8 * $1) }
                }
                guard let result else {
                    Issue.record("not emulated: \(vector.text) seed \(seed)")
                    continue
                }
                #expect(after.rip == regs.rip + UInt64(insn.length))
                var memory = window
                let offset = Int(truncatingIfNeeded: result.address &- windowBase)
                guard offset >= 0, offset + result.size <= Golden.windowSize else {
                    Issue.record("address outside the window: \(vector.text) seed \(seed)")
                    continue
                }
                switch result.write {
                case .store(let v):
                    for i in 0..<result.size { memory[offset + i] = UInt8(truncatingIfNeeded: v >> UInt64(8 * i)) }
                case .store128(let low, let high):
                    for i in 0..<8 {
                        memory[offset + i] = UInt8(truncatingIfNeeded: low >> UInt64(8 * i))
                        memory[offset + 8 + i] = UInt8(truncatingIfNeeded: high >> UInt64(8 * i))
                    }
                case .none:
                    break
                }
                let digest = Golden.digest(after, window: memory, windowBase: windowBase, text: vector.text)
                #expect(digest == expected, "\(vector.text) (\(InstructionBytes(vector.bytes))) seed \(seed)")
                checked += 1
            }
        }
        #expect(checked == goldenVectors.count * 4)
        #expect(goldenVectors.count > 400)
    }
}
