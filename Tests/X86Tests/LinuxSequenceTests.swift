import Testing
import X86

/// The instructions Linux 6.1's x86 and Xen PV code runs against PTEs, with
/// the bytes found in Debian's linux-image-6.1.0-56-cloud-amd64. Each would
/// fault on a read-only L1 page and must be emulated (PV-NOTES 4).
@Suite struct LinuxSequenceTests {
    /// The PTE under test, in a frame the guest maps read-only.
    let address: UInt64 = 0xffff_8880_0123_4ab8

    func run(_ bytes: [UInt8], _ r: inout RegisterFile, pteValue: UInt64 = pte) throws -> (WriteResult, UInt64) {
        var m = FakeMemory()
        m.store(pteValue, at: address, size: 8)
        let start = r.rip
        let w = try #require(emulate(bytes, &r, &m))
        #expect(r.rip == start + UInt64(bytes.count))
        // The caller's view: the whole new 8-byte entry to validate.
        let entry = try #require(w.applied(to: pteValue, at: address & ~7))
        return (w, entry)
    }

    @Test func ptepGetAndClear() throws {
        // native_ptep_get_and_clear: xchg(&ptep->pte, 0) → xor %eax,%eax; xchg %rax,(%rdi)
        var r = RegisterFile()
        r.rip = 0xffff_ffff_8121_d0a8
        r.rdi = address
        r.rax = 0
        let (w, entry) = try run([0x48, 0x87, 0x07], &r)
        #expect(w.operation == .xchg && w.size == 8 && w.isLocked)
        #expect(entry == 0)
        #expect(r.rax == pte)  // the caller gets the old PTE back
    }

    @Test func setPte() throws {
        // native_set_pte: WRITE_ONCE(*ptep, pte) → mov %rsi,(%rdi)
        var r = RegisterFile()
        r.rip = 0xffff_ffff_8107_35d0
        r.rdi = address
        r.rsi = 0x8000_0000_0abc_d063
        let (w, entry) = try run([0x48, 0x89, 0x37], &r, pteValue: 0)
        #expect(w.operation == .mov && w.oldValue == nil)
        #expect(entry == 0x8000_0000_0abc_d063)
    }

    @Test func lockCmpxchgOnPte() throws {
        // try_cmpxchg(&ptep->pte, &old, new): lock cmpxchg %rdx,(%rdi)
        var r = RegisterFile()
        r.rdi = address
        r.rax = pte
        r.rdx = pte & ~0x40  // clear Dirty
        let (w, entry) = try run([0xf0, 0x48, 0x0f, 0xb1, 0x17], &r)
        #expect(w.operation == .cmpxchg && w.isLocked && w.oldValue == pte)
        #expect(entry == pte & ~0x40)
        #expect(r.rflags & ZF != 0)

        // Lost race: the entry changed under us; no store, rax reloaded, ZF=0.
        var r2 = RegisterFile()
        r2.rdi = address
        r2.rax = pte | 0x100
        r2.rdx = 0
        var m = FakeMemory()
        m.store(pte, at: address, size: 8)
        let miss = try #require(emulate([0xf0, 0x48, 0x0f, 0xb1, 0x17], &r2, &m))
        #expect(miss.write == MemoryWrite.none)
        #expect(r2.rax == pte && r2.rflags & ZF == 0)
    }

    @Test func testAndClearYoung() throws {
        // ptep_test_and_clear_young: lock btrq $_PAGE_BIT_ACCESSED,(%rdx)
        var r = RegisterFile()
        r.rdx = address
        let (w, entry) = try run([0xf0, 0x48, 0x0f, 0xba, 0x32, 0x05], &r)
        #expect(w.operation == .btr && w.isLocked)
        #expect(entry == pte & ~0x20)
        #expect(r.rflags & CF != 0)  // it was young
    }

    @Test func setWrprotect() throws {
        // ptep_set_wrprotect: clear_bit(_PAGE_BIT_RW) → lock andb $0xfd,(%rdi)
        var r = RegisterFile()
        r.rdi = address
        let (w, entry) = try run([0xf0, 0x80, 0x27, 0xfd], &r)
        #expect(w.operation == .alu(.and) && w.size == 1 && w.address == address)
        #expect(entry == pte & ~2)
        // The byte form on a higher byte of the entry: lock andb $0xfd,0x1(%rdi)
        let (w1, entry1) = try run([0xf0, 0x80, 0x67, 0x01, 0xfd], &r)
        #expect(w1.address == address + 1)
        #expect(entry1 == pte & ~0x200)
    }

    @Test func clearBitWithRegister() throws {
        // clear_bit(nr, addr) with a variable nr: lock btr %r14,(%rbx)
        var r = RegisterFile()
        r.rbx = address
        r.r14 = 63  // NX
        let (w, entry) = try run([0xf0, 0x4c, 0x0f, 0xb3, 0x33], &r)
        #expect(w.address == address)
        #expect(entry == pte & ~(1 << 63))
    }

    @Test func orAndAndQuadwords() throws {
        var r = RegisterFile()
        r.rdi = address
        r.rsi = 0x40
        let (o, eo) = try run([0xf0, 0x48, 0x09, 0x37], &r, pteValue: pte & ~0x40)  // lock or %rsi,(%rdi)
        #expect(o.isLocked && eo == pte)
        r.rsi = ~UInt64(0x2)
        let (a, ea) = try run([0xf0, 0x48, 0x21, 0x37], &r)  // lock and %rsi,(%rdi)
        #expect(a.isLocked && ea == pte & ~2)
        #expect(r.rflags & ZF == 0)
    }

    @Test func forcedCPUIDPrefix() throws {
        let p = try #require(priv([0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2, 0x41, 0x89, 0x00]))
        #expect(p.op == .xenForcedCPUID && p.length == 7)
    }
}
