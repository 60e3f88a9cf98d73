import Testing
import X86

@Suite struct RegisterFileTests {
    @Test func subscriptFollowsEncodingOrder() {
        var r = RegisterFile()
        for i in 0..<16 { r[i] = UInt64(i + 1) * 0x1111 }
        #expect(r.rax == 0x1111)
        #expect(r.rcx == 0x2222)
        #expect(r.rdx == 0x3333)
        #expect(r.rbx == 0x4444)
        #expect(r.rsp == 0x5555)
        #expect(r.rbp == 0x6666)
        #expect(r.rsi == 0x7777)
        #expect(r.rdi == 0x8888)
        #expect(r.r8 == 0x9999)
        #expect(r.r15 == 0x10 * 0x1111)
        #expect(r[GPR.r12] == r.r12)
        // Out-of-range indices wrap instead of trapping.
        #expect(r[16] == r.rax)
        #expect(r[-1] == r.r15)
        #expect(RegisterFile().rflags == 2)
    }

    @Test func thirtyTwoBitWritesZeroExtend() {
        var r = RegisterFile()
        r.rax = 0xffff_ffff_ffff_ffff
        r.write32(GPR.rax, 0x1234_5678)
        #expect(r.rax == 0x1234_5678)
        r.r9 = ~0
        r.write(GPR.r9, size: 4, 0xdead_beef_0000_0001, hasREX: true)
        #expect(r.r9 == 1)
    }

    @Test func narrowWritesMerge() {
        var r = RegisterFile()
        r.rbx = 0x1122_3344_5566_7788
        r.write16(GPR.rbx, 0xabcd)
        #expect(r.rbx == 0x1122_3344_5566_abcd)
        r.write8(GPR.rbx, 0xef, hasREX: false)
        #expect(r.rbx == 0x1122_3344_5566_abef)
        r.r14 = 0x8000_0000_0000_0000
        r.write(GPR.r14, size: 1, 0x1ff, hasREX: true)
        #expect(r.r14 == 0x8000_0000_0000_00ff)
        #expect(r.read(GPR.rbx, size: 2, hasREX: false) == 0xabef)
        #expect(r.read(GPR.rbx, size: 8, hasREX: false) == 0x1122_3344_5566_abef)
    }

    @Test func highByteRegistersWithoutREX() {
        var r = RegisterFile()
        r.rax = 0x1234
        r.rcx = 0x5678
        r.rdx = 0x9abc
        r.rbx = 0xdef0
        r.rsp = 0x1111
        r.rsi = 0x2233
        // 4–7 without REX: AH CH DH BH.
        #expect(r.read8(4, hasREX: false) == 0x12)
        #expect(r.read8(5, hasREX: false) == 0x56)
        #expect(r.read8(6, hasREX: false) == 0x9a)
        #expect(r.read8(7, hasREX: false) == 0xde)
        // With REX: SPL BPL SIL DIL.
        #expect(r.read8(4, hasREX: true) == 0x11)
        #expect(r.read8(6, hasREX: true) == 0x33)
        r.write8(4, 0xff, hasREX: false)  // AH
        #expect(r.rax == 0xff34)
        #expect(r.rsp == 0x1111)
        r.write8(6, 0x44, hasREX: true)  // SIL
        #expect(r.rsi == 0x2244)
        #expect(r.rdx == 0x9abc)
        // r8b..r15b need REX anyway.
        r.r10 = 0x100
        r.write8(10, 0x7, hasREX: true)
        #expect(r.r10 == 0x107)
    }
}
