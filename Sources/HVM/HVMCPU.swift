import CKVM
import Glibc
import KVM
import Machine
import Synchronization
import X86

/// One HVM vCPU and its host thread: KVM_RUN, then port I/O to the machine's
/// devices. The interrupt controllers and the PIT are in the kernel, so the
/// only exits are device ports, the odd MMIO probe, and the ends of the run.
final class HVMCPU: @unchecked Sendable {
    unowned let domain: HVMDomain
    let id: Int
    let vcpu: VCPU
    private let stopping = Atomic<Bool>(false)
    /// Whether the vCPU is in the machine (ACPI CPU hotplug). An absent
    /// vCPU's thread is parked outside KVM_RUN and uses no host CPU.
    private let present: Atomic<Bool>
    /// Whether the thread can take a kick signal: a signal to a thread
    /// that has exited (and been joined) would go to whatever thread now
    /// has its ID, so kicks and the thread's exit take turns here. Hotplug
    /// requests come from the control socket at any time, even while the
    /// run ends.
    private enum ThreadState { case notStarted, running, exited }
    private let threadState = Mutex(ThreadState.notStarted)
    private var thread = pthread_t()
    private var pthread = pthread_t()
    /// VM exits so far: only this vCPU's thread writes it (a plain load
    /// and store, no locked add), the control socket's `stats` reads it.
    let exitCount = Atomic<UInt64>(0)
    var exits: UInt64 { exitCount.load(ordering: .relaxed) }
    /// Set while the thread sleeps at the domain's pause gate.
    let parkedForPause = Atomic<Bool>(false)

    init(domain: HVMDomain, id: Int, vcpu: VCPU, present: Bool) {
        self.domain = domain
        self.id = id
        self.vcpu = vcpu
        self.present = Atomic(present)
    }

    /// The boot processor's state at the kernel's 64-bit entry. The other
    /// vCPUs wait in KVM for the INIT/SIPI the kernel sends them.
    func setBootState(entry: UInt64) throws {
        var s = try vcpu.specialRegisters()
        func load(_ seg: LongModeEntry.Segment) -> kvm_segment {
            var k = kvm_segment()
            k.selector = seg.selector; k.base = seg.base; k.limit = seg.limit; k.type = seg.type
            k.present = seg.present ? 1 : 0; k.dpl = seg.dpl; k.s = seg.system
            k.l = seg.longMode ? 1 : 0; k.db = seg.defaultBig ? 1 : 0; k.g = seg.granularity ? 1 : 0
            return k
        }
        s.cs = load(LongModeEntry.code)
        let data = load(LongModeEntry.data)
        s.ds = data; s.es = data; s.fs = data; s.gs = data; s.ss = data
        s.tr = load(LongModeEntry.taskRegister)
        s.gdt.base = BootLayout.gdtAddress; s.gdt.limit = UInt16(LongModeEntry.gdt.count - 1)
        s.idt.base = 0; s.idt.limit = 0
        s.cr0 = LongModeEntry.cr0
        s.cr3 = BootLayout.pml4Address
        s.cr4 = LongModeEntry.cr4
        s.efer = LongModeEntry.efer
        try vcpu.setSpecialRegisters(s)
        var r = Registers()
        r.rip = entry
        r.rsi = BootLayout.zeroPageAddress
        r.rsp = BootLayout.stackTop
        r.rbp = BootLayout.stackTop
        r.rflags = 0x2
        try vcpu.setRegisters(r)
    }

    // MARK: Thread

    func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { arg in
            let cpu = Unmanaged<HVMCPU>.fromOpaque(arg!).takeRetainedValue()
            cpu.threadMain()
            return nil
        }, box)
    }

    func join() { pthread_join(thread, nil) }

    /// Added: the thread goes (back) to KVM_RUN, where the vCPU waits for
    /// the guest's INIT/SIPI (KVM's in-kernel local APIC handles both).
    func enter() {
        guard !present.exchange(true, ordering: .acquiringAndReleasing) else { return }
        kick()
    }

    /// Ejected (or withdrawn before the guest saw it): the thread leaves
    /// KVM_RUN and parks. The guest offlined the CPU before ejecting it, so
    /// nothing is lost; if it is added again, the guest starts it afresh
    /// with INIT/SIPI.
    func leave() {
        guard present.exchange(false, ordering: .acquiringAndReleasing) else { return }
        vcpu.requestImmediateExit()
        kick()
    }

    /// Stopped at the pause gate, or not running guest code at all (absent,
    /// its thread not running, or stopping).
    var isStoppedForPause: Bool {
        parkedForPause.load(ordering: .acquiring) || !present.load(ordering: .acquiring)
            || stopping.load(ordering: .acquiring) || threadState.withLock { $0 != .running }
    }

    /// Makes the thread leave KVM_RUN (or a park) to look at the pause gate.
    func kickForPause() {
        vcpu.requestImmediateExit()
        kick()
    }

    /// Sleeps at the pause gate, outside KVM_RUN. Before the vCPU runs
    /// again KVM is told it was stopped (KVM_KVMCLOCK_CTRL), so the guest's
    /// lockup watchdogs take the gap in kvm-clock for a pause, not a hang.
    private func parkWhilePaused() {
        // An I/O or MMIO exit's instruction completes only when KVM_RUN is
        // entered again; until then KVM's view of the vCPU is half-way
        // through it. Enter once with an immediate exit (KVM finishes the
        // instruction, then returns before running guest code), so that
        // what a save reads while the vCPU sleeps here is whole.
        vcpu.requestImmediateExit()
        _ = try? vcpu.enter()
        VCPU.consumeKick()
        parkedForPause.store(true, ordering: .releasing)
        let parkedAt = ckvm_monotonic_ns()
        domain.pauseGate.waitWhileClosed { stopping.load(ordering: .acquiring) }
        parkedForPause.store(false, ordering: .releasing)
        addSteal(nanoseconds: ckvm_monotonic_ns() &- parkedAt)
        vcpu.reportPausedToGuest()
    }

    /// Interrupts KVM_RUN or a park, if the thread is there to interrupt.
    private func kick() {
        threadState.withLock { state in
            if state == .running { _ = pthread_kill(pthread, VCPU.kickSignal) }
        }
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        vcpu.requestImmediateExit()
        kick()
    }

    private func threadMain() {
        do {
            try vcpu.prepareKickSignal()
        } catch {
            domain.end(.crash("vCPU \(id): \(error)"))
            return
        }
        pthread = pthread_self()
        setThreadName()
        threadState.withLock { $0 = .running }
        defer { threadState.withLock { $0 = .exited } }
        do {
            while !stopping.load(ordering: .acquiring) {
                if !present.load(ordering: .acquiring) {
                    parkWhileAbsent()
                    continue
                }
                if domain.pauseGate.isClosed {
                    parkWhilePaused()
                    continue
                }
                let exit = try vcpu.enter()
                exitCount.store(exitCount.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
                try handle(exit)
            }
        } catch let failure as HVMFailure {
            domain.end(.crash("vCPU \(id): \(failure.message)\n\(registerDump())"))
        } catch {
            domain.end(.crash("vCPU \(id): \(error)\n\(registerDump())"))
        }
    }

    /// Sleeps until the vCPU is added (or the run stops). A kick wakes it;
    /// the timeout only bounds how long a lost kick could go unnoticed.
    private func parkWhileAbsent() {
        while !stopping.load(ordering: .acquiring) && !present.load(ordering: .acquiring) {
            _ = VCPU.waitForKick(timeoutNanoseconds: 1_000_000_000)
        }
    }

    /// "vcpu N" in /proc/PID/task/*/comm: which thread is which vCPU, for
    /// `top -H` and for tests that check a removed vCPU's thread sleeps.
    private func setThreadName() {
        _ = pthread_setname_np(pthread, "vcpu \(id)")
    }

    struct HVMFailure: Error { let message: String }

    private func handle(_ exit: VMExit) throws {
        switch exit {
        case .io(let port, let isWrite, let size, let count, let dataOffset):
            try portIO(port: port, isWrite: isWrite, size: size, count: count, dataOffset: dataOffset)
        case .mmio(let address, let isWrite, let length):
            // PCI BARs (virtio-pci); unclaimed reads float high.
            let size = min(max(length, 0), 8)
            if isWrite {
                var value: UInt64 = 0
                memcpy(&value, vcpu.mmioData, size)
                domain.mmio.write(address: address, size: size, value: UInt64(littleEndian: value))
            } else {
                var value = domain.mmio.read(address: address, size: size).littleEndian
                memcpy(vcpu.mmioData, &value, size)
            }
        case .interrupted:
            VCPU.consumeKick()
        case .halt:
            // The in-kernel local APIC handles HLT; an exit here means the
            // vCPU halted with interrupts off for good.
            throw HVMFailure(message: "halted with interrupts disabled")
        case .shutdown:
            throw HVMFailure(message: "triple fault (the CPU reset itself)")
        case .systemEvent(let type):
            switch type {
            case 1: domain.end(.poweroff)       // KVM_SYSTEM_EVENT_SHUTDOWN
            case 2: domain.end(.reboot)         // KVM_SYSTEM_EVENT_RESET
            default: throw HVMFailure(message: "system event \(type)")
            }
        case .internalError(let suberror, let data):
            // KVM_INTERNAL_ERROR_EMULATION: KVM's instruction emulator (all
            // guest CPL0 code on a software-nested KVM) gave up.
            if suberror == 1, try emulateFailedInstruction(reported: reportedInstructionBytes(data)) { return }
            throw HVMFailure(message: "KVM could not run the guest (internal error \(suberror), data \(data.map { String($0, radix: 16) }))\(instructionNote())")
        default:
            throw HVMFailure(message: "unexpected exit \(exit)")
        }
    }

    /// IN/OUT, including string forms (`count` items of `size` bytes in the
    /// kvm_run page at `dataOffset`). Sizes and offsets come from KVM, but
    /// are checked against the page all the same.
    private func portIO(port: UInt16, isWrite: Bool, size: Int, count: Int, dataOffset: Int) throws {
        guard size == 1 || size == 2 || size == 4, count >= 1, dataOffset >= 0,
              dataOffset + size * count <= vcpu.mapSize else {
            throw HVMFailure(message: "port I/O exit with size \(size) count \(count) offset \(dataOffset)")
        }
        let data = vcpu.runPage + dataOffset
        for i in 0..<count {
            let item = data + i * size
            if isWrite {
                let value: UInt32 = switch size {
                case 1: UInt32(item.load(as: UInt8.self))
                case 2: UInt32(item.loadUnaligned(as: UInt16.self))
                default: item.loadUnaligned(as: UInt32.self)
                }
                domain.bus.write(port: port, size: size, value: value)
            } else {
                let value = domain.bus.read(port: port, size: size)
                switch size {
                case 1: item.storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
                case 2: item.storeBytes(of: UInt16(truncatingIfNeeded: value), as: UInt16.self)
                default: item.storeBytes(of: value, as: UInt32.self)
                }
            }
        }
    }

    // MARK: Instructions KVM's emulator fails on

    /// Emulation failures handled here, by kind.
    private(set) var emulatedInstructions: [String: Int] = [:]

    /// Carries the guest past an instruction KVM's emulator cannot do and
    /// that needs nothing from the VMM: `fwait` (no pending x87 exception is
    /// ever raised here), `clac`/`stac` when SMAP is hidden anyway, `pause`
    /// and `nop` forms. Anything else is a real failure.
    ///
    /// `reported` holds the bytes KVM's emulator fetched, when it says. If
    /// guest memory no longer holds them, another vCPU rewrote the
    /// instruction in the meantime (text patching: an `int3` placed, then
    /// replaced by the new first byte while this vCPU waited in the VMM), and
    /// running it again executes what is there now, as a CPU that fetched
    /// later would have.
    private func emulateFailedInstruction(reported: [UInt8]) throws -> Bool {
        var r = try vcpu.registers()
        guard let bytes = instructionBytes(rip: r.rip) else { return false }
        if zip(bytes, reported).contains(where: { $0 != $1 }) {
            emulatedInstructions["rewritten-retried", default: 0] += 1
            return true
        }
        if bytes[0] == 0xcc {
            // `int3` (text patching, the alternatives self-test): deliver the
            // breakpoint trap the CPU would raise, after the instruction.
            r.rip &+= 1
            try vcpu.setRegisters(r)
            try vcpu.injectException(vector: 3)
            emulatedInstructions["int3", default: 0] += 1
            domain.emulationFailures.add(1, ordering: .relaxed)
            return true
        }
        if let done = try emulateMXCSRAccess(bytes, registers: &r) { return done }
        let length: Int
        let name: String
        switch (bytes[0], bytes.count > 1 ? bytes[1] : 0, bytes.count > 2 ? bytes[2] : 0) {
        case (0x9b, _, _): (length, name) = (1, "fwait")
        case (0x0f, 0x01, 0xca): (length, name) = (3, "clac")
        case (0x0f, 0x01, 0xcb): (length, name) = (3, "stac")
        case (0xf3, 0x90, _): (length, name) = (2, "pause")
        default: return false
        }
        r.rip &+= UInt64(length)
        try vcpu.setRegisters(r)
        emulatedInstructions[name, default: 0] += 1
        domain.emulationFailures.add(1, ordering: .relaxed)
        return true
    }

    /// The instruction bytes in a KVM_INTERNAL_ERROR_EMULATION exit, when its
    /// flags say they are there (KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES):
    /// data[0] is the flags, then a length byte and up to 15 bytes.
    func reportedInstructionBytes(_ data: [UInt64]) -> [UInt8] {
        guard data.count >= 3, data[0] & 1 != 0 else { return [] }
        var raw: [UInt8] = []
        raw.reserveCapacity(16)
        for word in data[1...2] {
            for shift in stride(from: 0, to: 64, by: 8) { raw.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        let length = min(Int(raw[0]), 15)
        return Array(raw[1..<(1 + length)])
    }

    /// `ldmxcsr m32` / `stmxcsr m32` (0F AE /2, /3), which the kernel runs
    /// in kernel_fpu_begin: MXCSR moves through KVM's FPU state, the operand
    /// through the guest's page tables. nil: not one of these.
    private func emulateMXCSRAccess(_ bytes: [UInt8], registers r: inout Registers) throws -> Bool? {
        let raw = bytes.withUnsafeBytes { decode($0) }
        guard let insn = raw, insn.map == .secondary, insn.opcode == 0xae, let modrm = insn.modrm,
              modrm.mod != 3, modrm.reg == 2 || modrm.reg == 3 else { return nil }
        var file = RegisterFile()
        file.rax = r.rax; file.rcx = r.rcx; file.rdx = r.rdx; file.rbx = r.rbx; file.rsp = r.rsp; file.rbp = r.rbp
        file.rsi = r.rsi; file.rdi = r.rdi; file.r8 = r.r8; file.r9 = r.r9; file.r10 = r.r10; file.r11 = r.r11
        file.r12 = r.r12; file.r13 = r.r13; file.r14 = r.r14; file.r15 = r.r15; file.rip = r.rip
        let s = try vcpu.specialRegisters()
        guard let va = effectiveAddress(insn, registers: file, fsBase: s.fs.base, gsBase: s.gs.base),
              va & 0xfff <= 0xffc, let pa = translate(va), let p = domain.hostPointer(pa, length: 4) else { return false }
        if modrm.reg == 2 {
            let value = p.loadUnaligned(as: UInt32.self)
            // Reserved bits set would be #GP on hardware: refuse rather than load them.
            guard value & 0xffff_0000 == 0 else { return false }
            try vcpu.setMXCSR(value)
            emulatedInstructions["ldmxcsr", default: 0] += 1
        } else {
            p.storeBytes(of: try vcpu.mxcsr(), as: UInt32.self)
            emulatedInstructions["stmxcsr", default: 0] += 1
        }
        r.rip &+= UInt64(insn.length)
        try vcpu.setRegisters(r)
        domain.emulationFailures.add(1, ordering: .relaxed)
        return true
    }

    /// Up to 15 bytes at guest-virtual `rip`, through the guest's page tables.
    private func instructionBytes(rip: UInt64) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(15)
        var va = rip
        while out.count < 15 {
            guard let pa = translate(va) else { break }
            let n = min(15 - out.count, 4096 - Int(va & 0xfff))
            guard let p = domain.hostPointer(pa, length: UInt64(n)) else { break }
            out.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n))
            va &+= UInt64(n)
        }
        return out.isEmpty ? nil : out
    }

    /// Guest-virtual to guest-physical through the guest's 4-level page
    /// tables (CR0.PG off: identity). Entries are guest data: every table
    /// address is checked against guest RAM by `hostPointer`.
    func translate(_ va: UInt64) -> UInt64? {
        guard let s = try? vcpu.specialRegisters() else { return nil }
        if s.cr0 & 0x8000_0000 == 0 { return va }
        var table = s.cr3 & 0x000f_ffff_ffff_f000
        for level in stride(from: 4, through: 1, by: -1) {
            let index = (va >> (12 + 9 * UInt64(level - 1))) & 0x1ff
            guard let p = domain.hostPointer(table + index * 8, length: 8) else { return nil }
            let e = p.load(as: UInt64.self)
            guard e & 1 != 0 else { return nil }
            let frame = e & 0x000f_ffff_ffff_f000
            if level > 1 && e & 0x80 != 0 {
                let span: UInt64 = 1 << (12 + 9 * UInt64(level - 1))
                return (frame & ~(span - 1)) | (va & (span - 1))
            }
            table = frame
        }
        return table | (va & 0xfff)
    }

    /// The bytes at rip, for a failure message.
    private func instructionNote() -> String {
        guard let r = try? vcpu.registers(), let bytes = instructionBytes(rip: r.rip) else { return "" }
        return "; instruction bytes at rip: " + bytes.map { String(format2: $0) }.joined(separator: " ")
    }

    func registerDump() -> String {
        guard let r = try? vcpu.registers(), let s = try? vcpu.specialRegisters() else { return "  (registers unavailable)" }
        func h(_ v: UInt64) -> String { String(v, radix: 16) }
        return """
          rip=\(h(r.rip)) rsp=\(h(r.rsp)) rflags=\(h(r.rflags)) cs=\(h(UInt64(s.cs.selector))) cpl=\(s.cs.selector & 3)
          rax=\(h(r.rax)) rbx=\(h(r.rbx)) rcx=\(h(r.rcx)) rdx=\(h(r.rdx)) rsi=\(h(r.rsi)) rdi=\(h(r.rdi)) rbp=\(h(r.rbp))
          r8=\(h(r.r8)) r9=\(h(r.r9)) r10=\(h(r.r10)) r11=\(h(r.r11)) r12=\(h(r.r12)) r13=\(h(r.r13)) r14=\(h(r.r14)) r15=\(h(r.r15))
          cr0=\(h(s.cr0)) cr2=\(h(s.cr2)) cr3=\(h(s.cr3)) cr4=\(h(s.cr4)) efer=\(h(s.efer)) exits=\(exits)
        """
    }
}

private extension String {
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self.init([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
