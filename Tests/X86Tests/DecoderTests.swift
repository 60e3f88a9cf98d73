import Testing
import X86

/// Encodings with lengths as GNU as/objdump produce them.
let knownLengths: [([UInt8], Int)] = [
    ([0x48, 0x89, 0x37], 3),  // mov %rsi,(%rdi)
    ([0x45, 0x89, 0x4c, 0x24, 0x10], 5),  // mov %r9d,0x10(%r12)
    ([0x66, 0x89, 0x03], 3),  // mov %ax,(%rbx)
    ([0x88, 0x21], 2),  // mov %ah,(%rcx)
    ([0xc6, 0x07, 0x7f], 3),  // movb $0x7f,(%rdi)
    ([0x66, 0xc7, 0x07, 0x34, 0x12], 5),  // movw $0x1234,(%rdi)
    ([0xc7, 0x07, 0x00, 0x00, 0x00, 0x80], 6),  // movl $0x80000000,(%rdi)
    ([0x48, 0xc7, 0x44, 0x24, 0x08, 0x78, 0x56, 0x34, 0x12], 9),  // movq $0x12345678,0x8(%rsp)
    ([0x64, 0x48, 0x89, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00], 9),  // mov %rax,%fs:0x28
    ([0x48, 0xa3, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], 10),  // movabs %rax,0x1122334455667788
    ([0x67, 0xa3, 0x44, 0x33, 0x22, 0x11], 6),  // addr32 mov %eax,0x11223344
    ([0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8], 10),  // movabs $imm64,%rax
    ([0x66, 0xb8, 0x34, 0x12], 4),  // mov $0x1234,%ax
    ([0x41, 0xb8, 1, 2, 3, 4], 6),  // mov $imm32,%r8d
    ([0xf0, 0x48, 0x0f, 0xb1, 0x0f], 5),  // lock cmpxchg %rcx,(%rdi)
    ([0xf0, 0x48, 0x0f, 0xc7, 0x0f], 5),  // lock cmpxchg16b (%rdi)
    ([0xf0, 0x48, 0x0f, 0xba, 0x2f, 0x3f], 6),  // lock btsq $0x3f,(%rdi)
    ([0x66, 0xf0, 0x81, 0x07, 0x34, 0x12], 6),  // lock addw $0x1234,(%rdi)
    ([0xf0, 0x48, 0x81, 0x0f, 0x00, 0x01, 0x00, 0x00], 8),  // lock orq $0x100,(%rdi)
    ([0x48, 0x89, 0x05, 0x00, 0x01, 0x00, 0x00], 7),  // mov %rax,0x100(%rip)
    ([0x48, 0x89, 0x04, 0xcd, 0x7f, 0x00, 0x00, 0x00], 8),  // mov %rax,0x7f(,%rcx,8)
    ([0x49, 0x89, 0x45, 0x00], 4),  // mov %rax,0x0(%r13)
    ([0x4a, 0x89, 0x44, 0x2d, 0x00], 5),  // mov %rax,0x0(%rbp,%r13,1)
    ([0x67, 0x48, 0x89, 0x04, 0x58], 5),  // mov %rax,(%eax,%ebx,2)
    ([0x67, 0x48, 0xab], 3),  // stos %rax,%es:(%edi)
    ([0xc8, 0x10, 0x00, 0x02], 4),  // enter $0x10,$0x2
    ([0xc2, 0x08, 0x00], 3),  // ret $0x8
    ([0xe8, 0, 0, 0, 0], 5),  // call rel32
    ([0x0f, 0x84, 0, 0, 0, 0], 6),  // je rel32
    ([0x74, 0x05], 2),  // je rel8
    ([0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0], 10),  // nopw %cs:0x0(%rax,%rax,1)
    ([0xf3, 0x0f, 0x1e, 0xfa], 4),  // endbr64
    ([0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x08], 6),  // palignr $8,%xmm1,%xmm0
    ([0x66, 0x0f, 0x38, 0x00, 0xc1], 5),  // pshufb %xmm1,%xmm0
    ([0xdd, 0x04, 0x24], 3),  // fldl (%rsp)
    ([0xf6, 0x07, 0x01], 3),  // testb $1,(%rdi)
    ([0xf6, 0x17], 2),  // notb (%rdi): group 3 /2 has no immediate
    ([0x66, 0xf7, 0x07, 0x34, 0x12], 5),  // testw $0x1234,(%rdi)
    ([0x48, 0xf7, 0x1f], 3),  // negq (%rdi)
    ([0xc7, 0xf8, 0, 0, 0, 0], 6),  // xbegin rel32
    ([0x8f, 0x07], 2),  // pop (%rdi)
    ([0x0f, 0x22, 0xd8], 3),  // mov %rax,%cr3
    ([0x0f, 0x01, 0xd1], 3),  // xsetbv
    ([0xcd, 0x80], 2),  // int $0x80
    ([0xe4, 0x71], 2),  // in $0x71,%al
    ([0x0f, 0x0b], 2),  // ud2
]

@Suite struct DecoderTests {
    @Test(arguments: knownLengths.indices)
    func lengthsMatchObjdump(_ i: Int) throws {
        let (bytes, length) = knownLengths[i]
        let insn = try #require(dec(bytes))
        #expect(insn.length == length)
        #expect(insn.bytes == InstructionBytes(bytes.prefix(length)))
        // Trailing bytes are not consumed.
        let padded = try #require(dec(bytes + [0x90, 0x90, 0x90]))
        #expect(padded.length == length)
    }

    @Test(arguments: knownLengths.indices)
    func truncatedInputIsRefused(_ i: Int) {
        let (bytes, length) = knownLengths[i]
        for n in 0..<length {
            #expect(dec(Array(bytes.prefix(n))) == nil, "prefix of \(n) bytes of \(InstructionBytes(bytes))")
        }
    }

    @Test func lockCmpxchgFields() throws {
        let insn = try #require(dec([0xf0, 0x48, 0x0f, 0xb1, 0x0f]))
        #expect(insn.prefixes.lock)
        #expect(insn.prefixes.count == 1)
        #expect(insn.rex == REX(raw: 0x48))
        #expect(insn.rex?.w == true)
        #expect(insn.map == .secondary)
        #expect(insn.opcode == 0xb1)
        #expect(insn.modrm == ModRM(raw: 0x0f))
        #expect(insn.reg == GPR.rcx)
        #expect(insn.rm == GPR.rdi)
        #expect(insn.operandSize == 8)
        #expect(insn.addressSize == 8)
        #expect(insn.sib == nil)
        #expect(insn.displacementSize == 0)
        #expect(insn.immediateSize == 0)
    }

    @Test func rexExtendsRegAndBase() throws {
        // mov %r9d,0x10(%r12)
        let insn = try #require(dec([0x45, 0x89, 0x4c, 0x24, 0x10]))
        #expect(insn.rex?.r == true && insn.rex?.b == true && insn.rex?.w == false)
        #expect(insn.reg == GPR.r9)
        #expect(insn.operandSize == 4)
        #expect(insn.sib == SIB(raw: 0x24))
        #expect(insn.displacement == 0x10)
        #expect(insn.displacementSize == 1)
        let m = try #require(insn.memoryOperand)
        #expect(m.base == GPR.r12)
        #expect(m.index == nil)
    }

    @Test func immediatesAndDisplacementsAreSignExtended() throws {
        let q = try #require(dec([0x48, 0xc7, 0x07, 0xfe, 0xff, 0xff, 0xff]))
        #expect(q.immediate == 0xffff_fffe)
        #expect(q.immediateSize == 4)
        #expect(q.signExtendedImmediate == -2)
        let w = try #require(dec([0x66, 0xc7, 0x07, 0x34, 0x12]))
        #expect(w.operandSize == 2)
        #expect(w.immediate == 0x1234 && w.immediateSize == 2)
        let d = try #require(dec([0x48, 0x8b, 0x47, 0xf8]))  // mov -0x8(%rdi),%rax
        #expect(d.displacement == -8)
        let imm64 = try #require(dec([0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8]))
        #expect(imm64.immediate == 0x0807_0605_0403_0201 && imm64.immediateSize == 8)
        #expect(imm64.opcodeRegister == GPR.rax)
        let r8 = try #require(dec([0x49, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8]))
        #expect(r8.opcodeRegister == GPR.r8)
        let enter = try #require(dec([0xc8, 0x10, 0x00, 0x02]))
        #expect(enter.immediate == 0x10 && enter.secondImmediate == 2 && enter.secondImmediateSize == 1)
        let moffs = try #require(dec([0x48, 0xa3, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]))
        #expect(moffs.displacement == 0x1122_3344_5566_7788 && moffs.displacementSize == 8)
    }

    @Test func prefixesAreRecorded() throws {
        let i = try #require(dec([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x67, 0x66, 0xf2, 0xf3, 0x90]))
        #expect(i.prefixes.segment == .gs)  // the last segment override wins
        #expect(i.prefixes.rep == .rep)  // F3 came last
        #expect(i.prefixes.operandSize && i.prefixes.addressSize)
        #expect(i.prefixes.count == 10)
        #expect(i.length == 11)
        #expect(try #require(dec([0x64, 0x8b, 0x00])).prefixes.segment == .fs)
        #expect(try #require(dec([0xf3, 0xf2, 0xa4])).prefixes.rep == .repne)
    }

    @Test func rexMustImmediatelyPrecedeTheOpcode() throws {
        // 48 66 89 07: the REX is followed by a legacy prefix, so it is ignored:
        // this is mov %ax,(%rdi), not mov %rax,(%rdi).
        let i = try #require(dec([0x48, 0x66, 0x89, 0x07]))
        #expect(i.rex == nil)
        #expect(i.operandSize == 2)
        #expect(i.length == 4)
        // Of two REX bytes, only the last one counts.
        let j = try #require(dec([0x41, 0x48, 0x89, 0x07]))
        #expect(j.rex == REX(raw: 0x48))
        #expect(j.rm == GPR.rdi)
        // REX.W overrides 0x66.
        #expect(try #require(dec([0x66, 0x48, 0x89, 0x07])).operandSize == 8)
    }

    @Test func fifteenByteLimit() throws {
        // 14 prefixes + NOP = 15 bytes: valid.
        let ok = [UInt8](repeating: 0x66, count: 14) + [0x90]
        #expect(try #require(dec(ok)).length == 15)
        // 15 prefixes + NOP = 16 bytes: #GP in hardware, refused here.
        #expect(dec([UInt8](repeating: 0x66, count: 15) + [0x90]) == nil)
        // An instruction ending exactly at byte 15.
        let long = [0x64, 0x67, 0xf0, 0x48, 0x81, 0x84, 0x24, 1, 2, 3, 4, 5, 6, 7, 8] as [UInt8]
        #expect(try #require(dec(long)).length == 15)
        // One more prefix pushes the immediate past byte 15.
        #expect(dec([0x2e] + long) == nil)
        // Only the first 15 bytes are ever looked at.
        #expect(dec([UInt8](repeating: 0x66, count: 40)) == nil)
    }

    @Test func invalidOrUnsupportedOpcodesAreRefused() {
        let refused: [[UInt8]] = [
            [0x06], [0x07], [0x0e], [0x16], [0x17], [0x1e], [0x1f], [0x27], [0x2f], [0x37], [0x3f],
            [0x60], [0x61], [0x62, 0xf1, 0x7c, 0x48, 0x10, 0x07],  // EVEX
            [0x82, 0xc0, 0x01], [0x9a, 0, 0, 0, 0, 0, 0], [0xce], [0xd4, 0x0a], [0xd5, 0x0a], [0xd6], [0xea, 0, 0, 0, 0, 0, 0],
            [0xc4, 0xe2, 0xbb, 0xf7, 0xf6], [0xc5, 0xf8, 0x77],  // VEX (shrx, vzeroupper)
            [0x8f, 0xc8, 0, 0, 0],  // XOP
            [0xfe, 0x17], [0xff, 0x3f],  // group 4 /2, group 5 /7
            [0xc7, 0xc8, 0, 0, 0, 0], [0xc6, 0x0f, 0],  // group 11 /1
            [0x66, 0xe8, 0, 0], [0x66, 0xe9, 0, 0], [0x66, 0x0f, 0x80, 0, 0],  // vendor-dependent
            [0x0f, 0x0f, 0xc1, 0xb4], [0x0f, 0x0e], [0x0f, 0xff, 0x00], [0x0f, 0x04], [0x0f, 0x24, 0xc0],
            [0x0f, 0xb8, 0xc0, 0, 0, 0, 0], [0x66, 0x0f, 0x78, 0xc0, 1, 2],
            [], [0x66], [0x48], [0xf0, 0x66, 0x48],
        ]
        for bytes in refused {
            #expect(dec(bytes) == nil, "\(InstructionBytes(bytes))")
        }
    }

    @Test func controlRegisterMovesIgnoreMod() throws {
        // 0f 22 1c: mod 0, rm 4 would mean "SIB follows" elsewhere; for MOV
        // to CR the operand is always the register: 3 bytes, no SIB.
        let i = try #require(dec([0x0f, 0x22, 0x1c, 0x25, 0, 0, 0, 0]))
        #expect(i.length == 3)
        #expect(i.sib == nil)
        #expect(i.memoryOperand == nil)
        #expect(i.reg == 3 && i.rm == GPR.rsp)
        #expect(try #require(dec([0x0f, 0x21, 0x05, 1, 2, 3, 4])).length == 3)
    }

    @Test func inlineBufferDecodes() throws {
        var b = InstructionBytes()
        for x: UInt8 in [0xf0, 0x48, 0x0f, 0xb1, 0x0f, 0xcc] { b.append(x) }
        #expect(b.count == 6)
        #expect(b[3] == 0xb1 && b[6] == 0 && b[-1] == 0)
        #expect(b.description == "f0 48 0f b1 0f cc")
        let i = try #require(decode(b))
        #expect(i.length == 5)
        let full = InstructionBytes([UInt8](repeating: 0x90, count: 20))
        #expect(full.count == 15)
        #expect(full[14] == 0x90)
        [UInt8](repeating: 0x66, count: 3).withUnsafeBytes { raw in
            #expect(InstructionBytes(raw).count == 3)
        }
    }
}

@Suite struct KernelCorpusTests {
    @Test func kernelEncodingsDecodeToObjdumpLengths() {
        var wrong: [String] = []
        for bytes in kernelEncodings {
            // Followed by bytes that would extend any over-long decode.
            let padded = bytes + [0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x90, 0x90, 0x90, 0x90]
            if dec(padded)?.length != bytes.count { wrong.append(InstructionBytes(bytes).description) }
            for n in 0..<bytes.count where dec(Array(bytes.prefix(n))) != nil {
                wrong.append("truncated to \(n): \(InstructionBytes(bytes))")
            }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(20))")
        #expect(kernelEncodings.count >= 1000)
    }
}
