import Testing
import X86

@Suite struct EffectiveAddressTests {
    func ea(_ bytes: [UInt8], _ regs: RegisterFile, fs: UInt64 = 0, gs: UInt64 = 0) -> UInt64? {
        guard let i = dec(bytes) else { return nil }
        return effectiveAddress(i, registers: regs, fsBase: fs, gsBase: gs)
    }

    @Test func baseIndexScaleDisplacement() {
        var r = RegisterFile()
        r.rdi = 0x1000
        r.r12 = 0x2000
        r.rax = 0x100
        r.rbx = 0x10
        r.rcx = 2
        r.r13 = 0x30
        r.rbp = 0x5000
        r.rsp = 0x7ff0
        #expect(ea([0x48, 0x89, 0x37], r) == 0x1000)  // (%rdi)
        #expect(ea([0x45, 0x89, 0x4c, 0x24, 0x10], r) == 0x2010)  // 0x10(%r12)
        #expect(ea([0x48, 0x89, 0x04, 0x98], r) == 0x140)  // (%rax,%rbx,4)
        #expect(ea([0x48, 0x89, 0x04, 0xcd, 0x7f, 0, 0, 0], r) == 0x8f)  // 0x7f(,%rcx,8): no base
        #expect(ea([0x49, 0x89, 0x45, 0x00], r) == 0x30)  // 0(%r13): r13 needs a displacement
        #expect(ea([0x48, 0x89, 0x04, 0x24], r) == 0x7ff0)  // (%rsp)
        #expect(ea([0x4a, 0x89, 0x04, 0x65, 0, 0, 0, 0], r) == 0x4000)  // (,%r12,2): index 12 is valid
        #expect(ea([0x4a, 0x89, 0x44, 0x2d, 0x00], r) == 0x5030)  // (%rbp,%r13,1)
        #expect(ea([0x42, 0x89, 0x04, 0x24], r) == 0x9ff0)  // (%rsp,%r12,1): REX.X makes index 4 real
        #expect(ea([0x48, 0x89, 0x04, 0x25, 0x78, 0x56, 0x34, 0x12], r) == 0x1234_5678)  // absolute
        // SIB base 5 with mod 0 is "no base" even with REX.B.
        #expect(ea([0x41, 0x89, 0x04, 0x25, 0, 0x10, 0, 0], r) == 0x1000)
        #expect(ea([0x48, 0x8b, 0x47, 0xf8], r) == 0xff8)  // -8(%rdi)
        // Wraps modulo 2^64.
        r.rdi = 0xffff_ffff_ffff_fff8
        #expect(ea([0x48, 0x89, 0x77, 0x10], r) == 8)
    }

    @Test func ripRelativeUsesTheNextInstruction() {
        var r = RegisterFile()
        r.rip = 0xffff_ffff_8100_0000
        #expect(ea([0x48, 0x89, 0x05, 0x00, 0x01, 0x00, 0x00], r) == 0xffff_ffff_8100_0107)
        #expect(ea([0x48, 0x8b, 0x05, 0xf0, 0xff, 0xff, 0xff], r) == 0xffff_ffff_80ff_fff7)
        // mod 0 rm 5 with REX.B is still RIP-relative (not r13).
        r.r13 = 0x5555
        #expect(ea([0x49, 0x89, 0x05, 0, 0, 0, 0], r) == 0xffff_ffff_8100_0007)
        // A prefix lengthens the instruction and so moves the target.
        #expect(ea([0x64, 0x48, 0x89, 0x05, 0, 0, 0, 0], r, fs: 0x1_0000) == 0xffff_ffff_8101_0008)
    }

    @Test func addressSizePrefixTruncates() {
        var r = RegisterFile()
        r.rax = 0x1_ffff_fff0
        r.rbx = 0x10
        // (%eax,%ebx,2) = 0xfffffff0 + 0x20 wraps to 0x10 in 32 bits.
        #expect(ea([0x67, 0x48, 0x89, 0x04, 0x58], r) == 0x10)
        r.rip = 0x1_0000_0000
        #expect(ea([0x67, 0x48, 0x89, 0x05, 0, 1, 0, 0], r) == 0x108)  // EIP-relative
        // The FS/GS base is added after truncation.
        #expect(ea([0x64, 0x67, 0x89, 0x00], r, fs: 0xffff_8880_0000_0000) == 0xffff_8880_ffff_fff0)
    }

    @Test func segmentOverrides() {
        var r = RegisterFile()
        r.rax = 8
        r.rdi = 0x100
        #expect(ea([0x64, 0x48, 0x89, 0x04, 0x25, 0x28, 0, 0, 0], r, fs: 0xffff_8880_0000_1000) == 0xffff_8880_0000_1028)
        #expect(ea([0x65, 0x89, 0x00], r, fs: 1, gs: 0x100) == 0x108)
        // ES/CS/SS/DS have base 0 in 64-bit mode.
        for p: UInt8 in [0x26, 0x2e, 0x36, 0x3e] {
            #expect(ea([p, 0x89, 0x07], r, fs: 0x1000, gs: 0x2000) == 0x100)
        }
    }

    @Test func moffsAndNoMemoryOperand() {
        var r = RegisterFile()
        #expect(ea([0x48, 0xa3, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], r) == 0x1122_3344_5566_7788)
        #expect(ea([0x65, 0xa1, 0x10, 0, 0, 0, 0, 0, 0, 0], r, gs: 0x5000) == 0x5010)
        #expect(ea([0x67, 0xa3, 0x44, 0x33, 0x22, 0x11], r) == 0x1122_3344)
        r.rdi = 0x1000
        #expect(ea([0x48, 0x89, 0xc7], r) == nil)  // mov %rax,%rdi
        #expect(ea([0x0f, 0x22, 0xd8], r) == nil)  // mov %rax,%cr3
        #expect(ea([0x0f, 0x20, 0x07], r) == nil)  // mov %cr0,%rdi despite mod 0
        #expect(ea([0x48, 0xab], r) == nil)  // stos: implicit operand
        #expect(ea([0x90], r) == nil)
    }
}
