import Testing
import X86

/// A Linux PTE: NX | mfn 0x12345 | D A U RW P (0x67).
let pte: UInt64 = 0x8000_0000_1234_5067
let pteAddress: UInt64 = 0xffff_8880_0123_4ff8

@Suite struct MovTests {
    @Test func movRegisterToMemory() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        r.rsi = pte
        r.rip = 0xffff_ffff_8100_0000
        let w = try #require(emulate([0x48, 0x89, 0x37], &r, &m))  // mov %rsi,(%rdi)
        #expect(w.operation == .mov)
        #expect(w.address == 0x1000 && w.size == 8)
        #expect(w.write == .store(pte))
        #expect(w.newValue == pte)
        #expect(w.oldValue == nil && !w.isLocked)
        #expect(m.reads.isEmpty)  // a plain store reads nothing
        #expect(r.rip == 0xffff_ffff_8100_0003)
    }

    @Test func subRegisterSources() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rax = 0x1122_3344_5566_abcd
        r.rcx = 0x2000
        r.rsi = 0x77
        r.r9 = 0xaaaa_bbbb_cccc_dddd
        r.r10 = 0x1ee
        r.r11 = 0x3000
        r.r12 = 0x4000
        r.rbx = 0x5000
        #expect(try #require(emulate([0x88, 0x21], &r, &m)).write == .store(0xab))  // mov %ah,(%rcx)
        #expect(try #require(emulate([0x40, 0x88, 0x31], &r, &m)).write == .store(0x77))  // mov %sil,(%rcx)
        let b = try #require(emulate([0x45, 0x88, 0x13], &r, &m))  // mov %r10b,(%r11)
        #expect(b.write == .store(0xee) && b.size == 1 && b.address == 0x3000)
        let d = try #require(emulate([0x45, 0x89, 0x4c, 0x24, 0x10], &r, &m))  // mov %r9d,0x10(%r12)
        #expect(d.write == .store(0xcccc_dddd) && d.size == 4 && d.address == 0x4010)
        let w = try #require(emulate([0x66, 0x89, 0x03], &r, &m))  // mov %ax,(%rbx)
        #expect(w.write == .store(0xabcd) && w.size == 2 && w.address == 0x5000)
    }

    @Test func movImmediate() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        #expect(try #require(emulate([0xc6, 0x07, 0x7f], &r, &m)).write == .store(0x7f))
        let w = try #require(emulate([0x66, 0xc7, 0x07, 0x34, 0x12], &r, &m))
        #expect(w.write == .store(0x1234) && w.size == 2)
        let l = try #require(emulate([0xc7, 0x07, 0x00, 0x00, 0x00, 0x80], &r, &m))
        #expect(l.write == .store(0x8000_0000) && l.size == 4)
        // Iz is sign-extended to 64 bits under REX.W.
        let q = try #require(emulate([0x48, 0xc7, 0x07, 0xfe, 0xff, 0xff, 0xff], &r, &m))
        #expect(q.write == .store(0xffff_ffff_ffff_fffe) && q.size == 8)
        r.rsp = 0x8000
        let s = try #require(emulate([0x48, 0xc7, 0x44, 0x24, 0x08, 0x78, 0x56, 0x34, 0x12], &r, &m))
        #expect(s.address == 0x8008 && s.write == .store(0x1234_5678))
    }

    @Test func movToAbsoluteAndSegmentOffsets() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rax = 0x0102_0304_0506_0708
        let a = try #require(emulate([0x48, 0xa3, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], &r, &m))
        #expect(a.address == 0x1122_3344_5566_7788 && a.size == 8 && a.write == .store(r.rax))
        let b = try #require(emulate([0xa2, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], &r, &m))
        #expect(b.size == 1 && b.write == .store(0x08))
        let f = try #require(emulate([0x64, 0x48, 0x89, 0x04, 0x25, 0x28, 0, 0, 0], &r, &m, fsBase: 0x7000))
        #expect(f.address == 0x7028)
        r.rax = 0x10
        let g = try #require(emulate([0x65, 0x89, 0x00], &r, &m, gsBase: 0xffff_8880_0000_0000))
        #expect(g.address == 0xffff_8880_0000_0010 && g.size == 4)
    }

    @Test func ripRelativeStore() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rip = 0xffff_ffff_8100_0000
        r.rax = 5
        let w = try #require(emulate([0x48, 0x89, 0x05, 0x00, 0x01, 0x00, 0x00], &r, &m))
        #expect(w.address == 0xffff_ffff_8100_0107)
        #expect(r.rip == 0xffff_ffff_8100_0007)
    }

    @Test func refusedForms() {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        let before = r
        let refused: [[UInt8]] = [
            [0x48, 0x89, 0xf7],  // mov %rsi,%rdi: register destination
            [0xf0, 0x48, 0x89, 0x37],  // lock mov: #UD
            [0x48, 0x8b, 0x37],  // mov (%rdi),%rsi: a load
            [0x48, 0x39, 0x37],  // cmp: no write
            [0x48, 0x83, 0x3f, 0x00],  // cmpq $0: no write
            [0x48, 0x85, 0x37],  // test
            [0x48, 0x0f, 0xa3, 0x37],  // bt: no write
            [0x48, 0x0f, 0xba, 0x27, 0x05],  // bt $5: no write
            [0xf3, 0x48, 0xab],  // rep stos
            [0xf0, 0xab],  // lock stos
            [0x66, 0x0f, 0xc3, 0x07],  // 66 movnti: no such form
            [0x48, 0xf7, 0x27],  // mul
            [0xff, 0x37],  // push (%rdi)
            [0x0f, 0xc7, 0x37],  // vmptrld/rdrand group 9 /6
            [0x0f, 0xc7, 0xc9],  // cmpxchg8b with a register: #UD
            [0x90],
        ]
        for bytes in refused {
            #expect(emulate(bytes, &r, &m) == nil, "\(InstructionBytes(bytes))")
            #expect(r == before)
        }
    }
}

@Suite struct AtomicTests {
    @Test func xchgLoadsTheOldValue() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = pteAddress
        r.rax = 0
        m.store(pte, at: pteAddress, size: 8)
        let w = try #require(emulate([0x48, 0x87, 0x07], &r, &m))  // xchg %rax,(%rdi)
        #expect(w.operation == .xchg && w.isLocked)  // implicitly locked
        #expect(w.write == .store(0) && w.oldValue == pte)
        #expect(r.rax == pte)
        #expect(m.reads.count == 1 && m.reads[0] == (pteAddress, 8))

        // xchg %r8d,(%rdi,%rcx,8): a 32-bit load zero-extends r8.
        r.rdi = 0x1000
        r.rcx = 3
        r.r8 = 0xffff_ffff_0000_0001
        m.store(0x1234_5678_9abc_def0, at: 0x1018, size: 8)
        let d = try #require(emulate([0x44, 0x87, 0x04, 0xcf], &r, &m))
        #expect(d.address == 0x1018 && d.size == 4 && d.write == .store(1))
        #expect(r.r8 == 0x9abc_def0)

        // xchg %bl,(%rdi): an 8-bit load merges.
        r.rbx = 0x1111
        let b = try #require(emulate([0x86, 0x1f], &r, &m))
        #expect(b.size == 1 && b.write == .store(0x11) && b.oldValue == 0)
        #expect(r.rbx == 0x1100)
    }

    @Test func cmpxchgMatch() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = pteAddress
        r.rax = pte
        r.rcx = pte & ~2  // write-protect
        m.store(pte, at: pteAddress, size: 8)
        let w = try #require(emulate([0xf0, 0x48, 0x0f, 0xb1, 0x0f], &r, &m))  // lock cmpxchg %rcx,(%rdi)
        #expect(w.operation == .cmpxchg && w.isLocked)
        #expect(w.write == .store(pte & ~2) && w.oldValue == pte)
        #expect(r.rax == pte)
        #expect(r.rflags & ZF != 0)
        #expect(r.rflags & (CF | SF | OF) == 0)
    }

    @Test func cmpxchgMismatchLoadsAccumulator() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        r.rax = 5
        r.rcx = 9
        m.store(7, at: 0x1000, size: 8)
        let w = try #require(emulate([0xf0, 0x48, 0x0f, 0xb1, 0x0f], &r, &m))
        #expect(w.write == MemoryWrite.none && w.newValue == nil && w.oldValue == 7)
        #expect(r.rax == 7)
        // Flags of CMP 5, 7: borrow, negative.
        #expect(r.rflags & (ZF | CF | SF) == CF | SF)
        #expect(r.rip == 5)
    }

    @Test func cmpxchg32BitZeroExtendsOnlyOnMismatch() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        m.store(2, at: 0x1000, size: 4)
        // Match: only eax is compared; rax is left as it was.
        r.rax = 0xffff_ffff_0000_0002
        r.r8 = 0x1_0000_0003
        let hit = try #require(emulate([0xf0, 0x44, 0x0f, 0xb1, 0x07], &r, &m))  // lock cmpxchg %r8d,(%rdi)
        #expect(hit.write == .store(3) && hit.size == 4)
        #expect(r.rax == 0xffff_ffff_0000_0002)
        // Mismatch: eax is loaded, clearing bits 63:32.
        r.rax = 0xffff_ffff_0000_0001
        let miss = try #require(emulate([0xf0, 0x44, 0x0f, 0xb1, 0x07], &r, &m))
        #expect(miss.write == MemoryWrite.none)
        #expect(r.rax == 2)
    }

    @Test func cmpxchgByte() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rsi = 0x1000
        r.rax = 0xff42
        r.rdx = 0x99
        m.store(0x42, at: 0x1000, size: 1)
        let w = try #require(emulate([0x0f, 0xb0, 0x16], &r, &m))  // cmpxchg %dl,(%rsi)
        #expect(w.size == 1 && w.write == .store(0x99) && !w.isLocked)
        #expect(r.rflags & ZF != 0)
    }

    @Test func cmpxchg8b() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        m.store(0x1111_2222_3333_4444, at: 0x1000, size: 8)
        r.rdx = 0xdead_0000_1111_2222
        r.rax = 0xdead_0000_3333_4444
        r.rcx = 0x5555_6666
        r.rbx = 0x7777_8888
        let hit = try #require(emulate([0xf0, 0x0f, 0xc7, 0x0f], &r, &m))
        #expect(hit.operation == .cmpxchg8b && hit.size == 8)
        #expect(hit.write == .store(0x5555_6666_7777_8888))
        #expect(r.rflags & ZF != 0)
        #expect(r.rdx == 0xdead_0000_1111_2222)  // untouched on a match
        r.rax = 0
        let miss = try #require(emulate([0xf0, 0x0f, 0xc7, 0x0f], &r, &m))
        #expect(miss.write == MemoryWrite.none)
        #expect(r.rflags & ZF == 0)
        #expect(r.rdx == 0x1111_2222 && r.rax == 0x3333_4444)
    }

    @Test func cmpxchg16b() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        m.store(0xaaaa, at: 0x1000, size: 8)
        m.store(0xbbbb, at: 0x1008, size: 8)
        r.rax = 0xaaaa
        r.rdx = 0xbbbb
        r.rbx = 1
        r.rcx = 2
        let hit = try #require(emulate([0xf0, 0x48, 0x0f, 0xc7, 0x0f], &r, &m))
        #expect(hit.operation == .cmpxchg16b && hit.size == 16)
        #expect(hit.write == .store128(low: 1, high: 2))
        #expect(hit.oldValue == 0xaaaa && hit.oldValueHigh == 0xbbbb)
        #expect(hit.newValue == nil)
        #expect(r.rflags & ZF != 0)
        r.rdx = 0
        let miss = try #require(emulate([0xf0, 0x48, 0x0f, 0xc7, 0x0f], &r, &m))
        #expect(miss.write == MemoryWrite.none)
        #expect(r.rax == 0xaaaa && r.rdx == 0xbbbb && r.rflags & ZF == 0)
        // Misaligned: #GP in hardware, refused here.
        r.rdi = 0x1008
        #expect(emulate([0xf0, 0x48, 0x0f, 0xc7, 0x0f], &r, &m) == nil)
    }

    @Test func xadd() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        r.rax = 1
        m.store(~0, at: 0x1000, size: 8)
        let w = try #require(emulate([0xf0, 0x48, 0x0f, 0xc1, 0x07], &r, &m))  // lock xadd %rax,(%rdi)
        #expect(w.operation == .xadd && w.write == .store(0))
        #expect(r.rax == ~0)
        #expect(r.rflags & (CF | ZF | PF | AF | SF | OF) == CF | ZF | PF | AF)
        // Byte: 0x7f + 1 overflows into the sign bit.
        r.rcx = 0x1234_5601
        m.store(0x7f, at: 0x1000, size: 1)
        let b = try #require(emulate([0xf0, 0x0f, 0xc0, 0x0f], &r, &m))  // lock xadd %cl,(%rdi)
        #expect(b.size == 1 && b.write == .store(0x80))
        #expect(r.rcx == 0x1234_567f)
        #expect(r.rflags & (CF | ZF | PF | AF | SF | OF) == AF | SF | OF)
    }
}

@Suite struct ArithmeticTests {
    func run(_ bytes: [UInt8], mem: UInt64, rsi: UInt64 = 0, rax: UInt64 = 0, flags: UInt64 = 2) throws -> (WriteResult, RegisterFile) {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        r.rsi = rsi
        r.rax = rax
        r.rflags = flags
        m.store(mem, at: 0x1000, size: 8)
        let w = try #require(emulate(bytes, &r, &m))
        #expect(w.address == 0x1000 && w.oldValue != nil && r.rip == UInt64(bytes.count))
        return (w, r)
    }

    @Test func orAndXorSetLogicalFlags() throws {
        let (o, ro) = try run([0xf0, 0x48, 0x09, 0x37], mem: 0x1000, rsi: 1, flags: 2 | CF | OF)  // lock or %rsi,(%rdi)
        #expect(o.operation == .alu(.or) && o.write == .store(0x1001) && o.isLocked)
        #expect(ro.rflags & RFLAGS.arithmetic == 0)  // CF/OF cleared; 0x01 has odd parity
        let (a, ra) = try run([0xf0, 0x48, 0x21, 0x37], mem: 0x8000_0000_0000_00ff, rsi: 0x8000_0000_0000_0000)
        #expect(a.write == .store(0x8000_0000_0000_0000))
        #expect(ra.rflags & RFLAGS.arithmetic == SF | PF)
        let (x, rx) = try run([0xf0, 0x31, 0x37], mem: 0xdead_beef_1234_5678, rsi: 0x1234_5678)  // 32-bit xor
        #expect(x.size == 4 && x.write == .store(0))
        #expect(rx.rflags & RFLAGS.arithmetic == ZF | PF)
        let (b, _) = try run([0xf0, 0x08, 0x07], mem: 0x10, rax: 0x0f01)  // lock or %al,(%rdi)
        #expect(b.size == 1 && b.write == .store(0x11))
    }

    @Test func addSubAdcSbb() throws {
        let (a, ra) = try run([0xf0, 0x48, 0x01, 0x37], mem: 0x7fff_ffff_ffff_ffff, rsi: 1)
        #expect(a.write == .store(0x8000_0000_0000_0000))
        #expect(ra.rflags & RFLAGS.arithmetic == OF | SF | AF | PF)
        let (s, rs) = try run([0xf0, 0x48, 0x29, 0x37], mem: 0, rsi: 1)
        #expect(s.write == .store(~0))
        #expect(rs.rflags & RFLAGS.arithmetic == CF | SF | AF | PF)
        let (c, rc) = try run([0xf0, 0x48, 0x11, 0x37], mem: ~0, rsi: 0, flags: 2 | CF)  // adc
        #expect(c.write == .store(0))
        #expect(rc.rflags & RFLAGS.arithmetic == CF | ZF | AF | PF)
        let (b, rb) = try run([0xf0, 0x48, 0x19, 0x37], mem: 0, rsi: 0, flags: 2 | CF)  // sbb
        #expect(b.write == .store(~0))
        #expect(rb.rflags & CF != 0)
        // 32-bit add carries out of bit 31 only.
        let (l, rl) = try run([0xf0, 0x01, 0x37], mem: 0xffff_ffff, rsi: 1)
        #expect(l.size == 4 && l.write == .store(0))
        #expect(rl.rflags & (CF | ZF) == CF | ZF)
    }

    @Test func immediateGroups() throws {
        let (andb, _) = try run([0xf0, 0x80, 0x27, 0xfd], mem: pte)  // lock andb $0xfd,(%rdi)
        #expect(andb.size == 1 && andb.write == .store(0x65))
        let (orq, _) = try run([0xf0, 0x48, 0x81, 0x0f, 0x00, 0x01, 0x00, 0x00], mem: pte)  // lock orq $0x100
        #expect(orq.size == 8 && orq.write == .store(pte | 0x100))
        let (andq, _) = try run([0xf0, 0x48, 0x83, 0x27, 0xfd], mem: pte)  // lock andq $-3: sign-extended imm8
        #expect(andq.write == .store(pte & ~2))
        let (orq4, _) = try run([0xf0, 0x48, 0x83, 0x0f, 0x04], mem: pte)
        #expect(orq4.write == .store(pte | 4))
        let (addw, _) = try run([0x66, 0xf0, 0x81, 0x07, 0x34, 0x12], mem: 0xffff_0001)
        #expect(addw.size == 2 && addw.write == .store(0x1235))
        let (subw, rw) = try run([0x66, 0xf0, 0x83, 0x2f, 0x01], mem: 0)
        #expect(subw.write == .store(0xffff))
        #expect(rw.rflags & (CF | SF) == CF | SF)
        // A 32-bit Iz is sign-extended to 64 bits.
        let (orNeg, _) = try run([0x48, 0x81, 0x0f, 0x00, 0x00, 0x00, 0x80], mem: 0)
        #expect(orNeg.write == .store(0xffff_ffff_8000_0000))
    }

    @Test func incDecNotNeg() throws {
        let (i, ri) = try run([0xf0, 0x48, 0xff, 0x07], mem: 0x7fff_ffff_ffff_ffff, flags: 2 | CF)
        #expect(i.operation == .inc && i.write == .store(0x8000_0000_0000_0000))
        #expect(ri.rflags & RFLAGS.arithmetic == CF | OF | SF | AF | PF)  // CF kept
        let (d, rd) = try run([0xf0, 0xff, 0x0f], mem: 1)
        #expect(d.operation == .dec && d.size == 4 && d.write == .store(0))
        #expect(rd.rflags & RFLAGS.arithmetic == ZF | PF)
        let (n, rn) = try run([0xf0, 0x48, 0xf7, 0x17], mem: 0xff, flags: 2 | CF | ZF)
        #expect(n.operation == .not && n.write == .store(~0xff))
        #expect(rn.rflags == 2 | CF | ZF)  // NOT changes no flags
        let (g0, rg0) = try run([0xf0, 0x48, 0xf7, 0x1f], mem: 0)
        #expect(g0.write == .store(0))
        #expect(rg0.rflags & (CF | ZF) == ZF)
        let (g1, rg1) = try run([0xf0, 0x48, 0xf7, 0x1f], mem: 1)
        #expect(g1.operation == .neg && g1.write == .store(~0))
        #expect(rg1.rflags & (CF | SF | ZF) == CF | SF)
    }
}

@Suite struct BitTests {
    @Test func immediateBitOffsets() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        m.store(0, at: 0x1000, size: 8)
        let s = try #require(emulate([0xf0, 0x48, 0x0f, 0xba, 0x2f, 0x3f], &r, &m))  // lock btsq $63
        #expect(s.operation == .bts && s.write == .store(1 << 63) && s.size == 8)
        #expect(r.rflags & CF == 0)
        m.store(pte, at: 0x1000, size: 8)
        let c = try #require(emulate([0xf0, 0x48, 0x0f, 0xba, 0x37, 0x05], &r, &m))  // lock btrq $5
        #expect(c.operation == .btr && c.write == .store(pte & ~0x20))
        #expect(r.rflags & CF != 0)
        let x = try #require(emulate([0xf0, 0x0f, 0xba, 0x3f, 0x01], &r, &m))  // lock btcl $1
        #expect(x.operation == .btc && x.size == 4 && x.write == .store(0x1234_5065))
        // The immediate is taken modulo the operand width.
        let big = try #require(emulate([0x48, 0x0f, 0xba, 0x2f, 0x45], &r, &m))  // btsq $0x45 → bit 5
        #expect(big.address == 0x1000 && big.write == .store(pte))
        let w = try #require(emulate([0x66, 0x0f, 0xba, 0x2f, 0x11], &r, &m))  // btsw $0x11 → bit 1
        #expect(w.size == 2 && w.write == .store(0x5067))
    }

    @Test func registerBitOffsetsReachBeyondTheOperand() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        // lock bts %rsi,(%rdi)
        let bts: [UInt8] = [0xf0, 0x48, 0x0f, 0xab, 0x37]
        r.rsi = 70
        var w = try #require(emulate(bts, &r, &m))
        #expect(w.address == 0x1008 && w.size == 8 && w.write == .store(1 << 6))
        r.rsi = UInt64(bitPattern: -1)
        w = try #require(emulate(bts, &r, &m))
        #expect(w.address == 0x0ff8 && w.write == .store(1 << 63))
        r.rsi = UInt64(bitPattern: -64)
        w = try #require(emulate(bts, &r, &m))
        #expect(w.address == 0x0ff8 && w.write == .store(1))
        r.rsi = UInt64(bitPattern: -65)
        w = try #require(emulate(bts, &r, &m))
        #expect(w.address == 0x0ff0 && w.write == .store(1 << 63))
        // 32-bit: the offset is the sign-extended esi; bits 63:32 of rsi are ignored.
        r.rsi = 0xffff_ffff_0000_0021  // 33
        m.store(~0, at: 0x1004, size: 4)
        w = try #require(emulate([0xf0, 0x0f, 0xbb, 0x37], &r, &m))  // lock btc %esi,(%rdi)
        #expect(w.address == 0x1004 && w.size == 4 && w.write == .store(0xffff_fffd))
        #expect(r.rflags & CF != 0)
        r.rsi = 0xffff_ffff  // -1
        w = try #require(emulate([0xf0, 0x0f, 0xbb, 0x37], &r, &m))
        #expect(w.address == 0x0ffc && w.write == .store(0x8000_0000))
        // 16-bit: bts %si,(%rdi) with si = 17.
        r.rsi = 0x10011
        w = try #require(emulate([0x66, 0x0f, 0xab, 0x37], &r, &m))
        #expect(w.address == 0x1002 && w.size == 2 && w.write == .store(2))
        // btr with an r14 offset from Linux's clear_bit (lock btr %r14,(%rbx)).
        r.rbx = 0x2000
        r.r14 = 130
        m.store(~0, at: 0x2010, size: 8)
        w = try #require(emulate([0xf0, 0x4c, 0x0f, 0xb3, 0x33], &r, &m))
        #expect(w.operation == .btr && w.address == 0x2010 && w.write == .store(~UInt64(4)))
    }
}

@Suite struct StringAndNonTemporalTests {
    @Test func movnti() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        r.rax = pte
        r.rcx = 0x1_2345_6789
        let q = try #require(emulate([0x48, 0x0f, 0xc3, 0x07], &r, &m))
        #expect(q.operation == .movnti && q.size == 8 && q.write == .store(pte))
        let l = try #require(emulate([0x0f, 0xc3, 0x0f], &r, &m))
        #expect(l.size == 4 && l.write == .store(0x2345_6789))
    }

    @Test func stos() throws {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        r.rax = 0x1122_3344_5566_7788
        let b = try #require(emulate([0xaa], &r, &m))
        #expect(b.operation == .stos && b.address == 0x1000 && b.size == 1 && b.write == .store(0x88))
        #expect(r.rdi == 0x1001 && r.rip == 1)
        let w = try #require(emulate([0x66, 0xab], &r, &m))
        #expect(w.address == 0x1001 && w.size == 2 && w.write == .store(0x7788))
        #expect(r.rdi == 0x1003)
        let l = try #require(emulate([0xab], &r, &m))
        #expect(l.size == 4 && l.write == .store(0x5566_7788))
        #expect(r.rdi == 0x1007)
        // Direction flag set: rdi counts down.
        r.rflags |= RFLAGS.direction
        let q = try #require(emulate([0x48, 0xab], &r, &m))
        #expect(q.address == 0x1007 && q.size == 8 && q.write == .store(r.rax))
        #expect(r.rdi == 0x0fff)
        // 32-bit address size: edi is used and written (bits 63:32 cleared).
        r.rflags &= ~RFLAGS.direction
        r.rdi = 0x1_0000_0ff8
        let a = try #require(emulate([0x67, 0x48, 0xab], &r, &m))
        #expect(a.address == 0x0ff8)
        #expect(r.rdi == 0x1000)
        // The destination is always ES:rdi; a segment prefix does not move it.
        let s = try #require(emulate([0x64, 0xaa], &r, &m, fsBase: 0x9000))
        #expect(s.address == 0x1000)
    }
}

@Suite struct EmulationFailureTests {
    @Test func failedReadLeavesRegistersAlone() {
        var r = RegisterFile()
        var m = FakeMemory()
        r.rdi = 0x1000
        r.rax = 42
        m.unreadable = [0x1003]
        let before = r
        for bytes: [UInt8] in [
            [0x48, 0x87, 0x07], [0xf0, 0x48, 0x0f, 0xb1, 0x0f], [0xf0, 0x48, 0x09, 0x37],
            [0xf0, 0x48, 0x0f, 0xba, 0x37, 0x05], [0xf0, 0x48, 0x0f, 0xc1, 0x07], [0xf0, 0x0f, 0xc7, 0x0f],
        ] {
            #expect(emulate(bytes, &r, &m) == nil)
            #expect(r == before)
        }
        // A plain store does not read, so it still succeeds.
        #expect(emulate([0x48, 0x89, 0x37], &r, &m) != nil)
    }

    @Test func closureValuesAreMaskedToTheAccessSize() throws {
        var r = RegisterFile()
        r.rdi = 0x1000
        let insn = try #require(dec([0xf0, 0x80, 0x27, 0xfd]))
        let w = try #require(emulateMemoryWrite(insn, registers: &r) { _, _ in 0xffff_ffff_ffff_ff67 })
        #expect(w.oldValue == 0x67 && w.write == .store(0x65))
    }
}

@Suite struct WriteResultTests {
    @Test func appliedMergesIntoTheQuadword() {
        let byte = WriteResult(operation: .alu(.and), address: 0x1003, size: 1, write: .store(0xab), oldValue: 0, isLocked: true)
        #expect(byte.applied(to: 0x1122_3344_5566_7788, at: 0x1000) == 0x1122_3344_ab66_7788)
        let whole = WriteResult(operation: .mov, address: 0x1000, size: 8, write: .store(5), oldValue: nil, isLocked: false)
        #expect(whole.applied(to: ~0, at: 0x1000) == 5)
        let high = WriteResult(operation: .mov, address: 0x1004, size: 4, write: .store(0xdead_beef), oldValue: nil, isLocked: false)
        #expect(high.applied(to: 0x1111_1111_2222_2222, at: 0x1000) == 0xdead_beef_2222_2222)
        // Straddling the entry, outside it, or no store: nil.
        let straddle = WriteResult(operation: .mov, address: 0x1006, size: 4, write: .store(0), oldValue: nil, isLocked: false)
        #expect(straddle.applied(to: 0, at: 0x1000) == nil)
        #expect(whole.applied(to: 0, at: 0x1008) == nil)
        #expect(whole.applied(to: 0, at: 0x1001) == nil)
        let none = WriteResult(operation: .cmpxchg, address: 0x1000, size: 8, write: .none, oldValue: 1, isLocked: true)
        #expect(none.applied(to: 0, at: 0x1000) == nil)
        let wide = WriteResult(operation: .cmpxchg16b, address: 0x1000, size: 16, write: .store128(low: 1, high: 2), oldValue: 0, isLocked: true)
        #expect(wide.applied(to: 0, at: 0x1000) == nil)
    }
}
