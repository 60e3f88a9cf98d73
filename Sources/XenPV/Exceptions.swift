import KVM
import X86

extension PVCPU {
    var registerFile: RegisterFile {
        get {
            let r = ctx.regs
            var f = RegisterFile()
            f.rax = r.rax; f.rcx = r.rcx; f.rdx = r.rdx; f.rbx = r.rbx; f.rsp = r.rsp; f.rbp = r.rbp
            f.rsi = r.rsi; f.rdi = r.rdi; f.r8 = r.r8; f.r9 = r.r9; f.r10 = r.r10; f.r11 = r.r11
            f.r12 = r.r12; f.r13 = r.r13; f.r14 = r.r14; f.r15 = r.r15; f.rip = r.rip; f.rflags = r.rflags
            return f
        }
        set {
            ctx.regs.rax = newValue.rax; ctx.regs.rcx = newValue.rcx; ctx.regs.rdx = newValue.rdx
            ctx.regs.rbx = newValue.rbx; ctx.regs.rsp = newValue.rsp; ctx.regs.rbp = newValue.rbp
            ctx.regs.rsi = newValue.rsi; ctx.regs.rdi = newValue.rdi; ctx.regs.r8 = newValue.r8
            ctx.regs.r9 = newValue.r9; ctx.regs.r10 = newValue.r10; ctx.regs.r11 = newValue.r11
            ctx.regs.r12 = newValue.r12; ctx.regs.r13 = newValue.r13; ctx.regs.r14 = newValue.r14
            ctx.regs.r15 = newValue.r15; ctx.regs.rip = newValue.rip; ctx.regs.rflags = newValue.rflags
        }
    }

    /// Up to 15 instruction bytes at the guest's rip.
    func instructionBytes() -> InstructionBytes? {
        var buf = (UInt64(0), UInt64(0))
        let rip = ctx.regs.rip
        let first = min(15, 4096 - Int(rip & 0xfff))
        return withUnsafeMutableBytes(of: &buf) { raw -> InstructionBytes? in
            guard let p = guestPointer(rip, length: first) else { return nil }
            raw.baseAddress!.copyMemory(from: p, byteCount: first)
            var n = first
            if first < 15, let q = guestPointer(rip &+ UInt64(first), length: 15 - first) {
                (raw.baseAddress! + first).copyMemory(from: q, byteCount: 15 - first)
                n = 15
            }
            return InstructionBytes(UnsafeRawBufferPointer(rebasing: raw[0..<n]))
        }
    }

    /// An exception from the guest (kernel or user) reached the trampoline.
    func exception(vector: Int, error: UInt64) throws {
        switch vector {
        case 14:
            let cr2 = try kvm.specialRegisters().cr2
            trace("page fault cr2=\(String(cr2, radix: 16)) pa=\(translate(cr2).map { String($0, radix: 16) } ?? "-") hv=\(domain.hypervisor.translate(cr2).map { String($0, radix: 16) } ?? "-") l4e=\(String(domain.memory.load((hardwareCR3 & PTE.frameMask) + UInt64(PTE.index(cr2, level: 4)) * 8, as: UInt64.self) ?? 0, radix: 16))")
            if inKernel && error & 3 == 3, try emulatePageTableWrite(address: cr2) { return }
            vcpuInfo.storeBytes(of: cr2, toByteOffset: 16, as: UInt64.self)
            let err = inKernel ? error & ~UInt64(4) : error | 4
            try injectException(14, error: err)
        case 13:
            if error & 3 == 2 {
                // `int n` through a DPL-0 gate: deliver vector n if the guest allows it.
                let n = Int(error >> 3)
                let dpl = trapFlags[n] & 3
                if trapAddress[n] != 0 && (inKernel || dpl == 3) {
                    ctx.regs.rip &+= (n == 3 || n == 4) ? 1 : 2
                    try injectException(n, error: nil)
                    return
                }
            }
            if error == 0 && inKernel, try emulatePrivileged() { return }
            try injectException(13, error: error)
        case 6:
            if try emulatePrivileged() { return }
            try injectException(6, error: nil)
        case 7:
            try injectException(7, error: nil)
        default:
            try injectException(vector, error: Self.hasErrorCode(vector) ? error : nil)
        }
    }

    // MARK: Writable page tables

    /// A kernel write faulted on a read-only page: if the page is an L1 table,
    /// emulate the write as a validated entry update (Linux relies on this).
    private func emulatePageTableWrite(address: UInt64) throws -> Bool {
        guard let pa = translate(address) else { return false }
        let frame = pa >> 12
        let isL1 = domain.mmu.withLock { $0.isPageTable(frame) && $0.kindOf(frame) == .l1 }
        guard isL1, let bytes = instructionBytes(), let insn = decode(bytes) else { return false }
        var regs = registerFile
        let memory = domain.memory
        guard let result = emulateMemoryWrite(insn, registers: &regs, fsBase: fsBase,
                                              gsBase: inKernel ? gsBaseKernel : gsBaseUser,
                                              oldValue: { a, size in
            guard let p = self.translate(a) else { return nil }
            return memory.load(p, as: UInt64.self).map { size == 8 ? $0 : $0 & ((1 << (UInt64(size) * 8)) - 1) }
        }) else { return false }
        guard result.address >> 12 == address >> 12 else { return false }
        let qword = result.address & ~7
        guard let qpa = translate(qword), let old = memory.load(qpa, as: UInt64.self) else { return false }
        if let new = result.applied(to: old, at: qword) {
            let failure = domain.mmu.withLock {
                $0.update(frame: qpa >> 12, index: Int((qpa & 0xfff) / 8), value: new, preserveAD: false,
                          memory: memory, replay: &replay)
            }
            if let failure {
                throw GuestFailure(message: "page-table write refused: \(failure)")
            }
        } else if case .none = result.write {
            // e.g. cmpxchg that compared unequal: registers changed, memory not.
        } else {
            return false
        }
        registerFile = regs
        return true
    }

    // MARK: Privileged instructions (PV-NOTES 8.3, 8.4)

    private func emulatePrivileged() throws -> Bool {
        guard let bytes = instructionBytes() else { trace("no instruction bytes"); return false }
        guard let op = decodePrivileged(bytes) else {
            trace("undecoded privileged instruction: \(bytes.withUnsafeBytes { Array($0) })")
            return false
        }
        trace("emulate \(op.op) rax=\(String(ctx.regs.rax, radix: 16)) rcx=\(String(ctx.regs.rcx, radix: 16)) len=\(op.length)")
        var r = registerFile
        switch op.op {
        case .xenForcedCPUID, .cpuid:
            guard op.op == .xenForcedCPUID || inKernel else { return false }
            let policy = CPUIDPolicy.shared(domain.kvm)
            let (a, b, c, d) = policy.lookup(function: UInt32(truncatingIfNeeded: r.rax),
                                             index: UInt32(truncatingIfNeeded: r.rcx),
                                             vcpu: id, count: domain.config.maxVCPUs)
            r.rax = UInt64(a); r.rbx = UInt64(b); r.rcx = UInt64(c); r.rdx = UInt64(d)
        case .wrmsr:
            guard inKernel else { return false }
            let value = (r.rdx << 32) | (r.rax & 0xffff_ffff)
            switch UInt32(truncatingIfNeeded: r.rcx) {
            case 0xC000_0100: fsBase = value; segmentsDirty = true
            case 0xC000_0101: gsBaseKernel = value; segmentsDirty = true
            case 0xC000_0102: gsBaseUser = value; segmentsDirty = true
            default: break      // dropped, as Xen does for a domU
            }
        case .rdmsr:
            guard inKernel else { return false }
            let value: UInt64
            switch UInt32(truncatingIfNeeded: r.rcx) {
            case 0xC000_0100: value = fsBase
            case 0xC000_0101: value = gsBaseKernel
            case 0xC000_0102: value = gsBaseUser
            case 0xC000_0080: value = 0xd01
            case 0x1b: value = 0xfee0_0900
            case 0x277: value = 0x0000_0501_0007_0406
            case 0xC000_0103: value = UInt64(id)
            case 0x10: value = ckvmTSC()
            default: value = 0
            }
            r.rax = value & 0xffff_ffff; r.rdx = value >> 32
        case .movFromCR(let cr, let gpr):
            guard inKernel else { return false }
            let value: UInt64
            switch cr {
            case 0: value = 0x8005_003b
            case 2: value = vcpuInfo.load(fromByteOffset: 16, as: UInt64.self)
            case 3: value = kernelCR3
            case 4: value = 0x20 | 0x40 | 0x200 | 0x400
            default: value = 0
            }
            r[gpr] = value
        case .movToCR, .movToDR, .movFromDR, .wbinvd, .invd, .clts, .xsetbv:
            guard inKernel else { return false }
            if case .movFromDR(_, let gpr) = op.op { r[gpr] = 0 }
        case .in(let port, let size):
            guard inKernel else { return false }
            let number: UInt16
            switch port {
            case .immediate(let p): number = UInt16(p)
            case .dx: number = UInt16(truncatingIfNeeded: r.rdx)
            }
            let width: UInt64 = size == 1 ? 0xff : size == 2 ? 0xffff : 0xffff_ffff
            // No device answers: all ones, as Xen gives a domU — except the
            // PIT, which reads as 0 so Linux's calibration loops (tens of
            // thousands of port reads, each a round trip here) give up at once.
            let value: UInt64 = (0x40...0x43).contains(number) ? 0 : width
            r.rax = size == 4 ? value : (r.rax & ~width) | value
        case .out:
            guard inKernel else { return false }
        case .hlt:
            guard inKernel else { return false }
            block()
        case .cli, .sti:
            // As Xen: the event mask stands in for IF (a later popf cannot
            // restore it; Linux avoids both on PV).
            guard inKernel else { return false }
            upcallMask = op.op == .cli
        default:
            return false
        }
        r.rip &+= UInt64(op.length)
        registerFile = r
        return true
    }

    private func ckvmTSC() -> UInt64 { (try? kvm.readMSRs([0x10]).first) ?? nil ?? 0 }
}
