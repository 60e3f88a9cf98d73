import CKVM
import Glibc

public typealias Registers = kvm_regs
public typealias SpecialRegisters = kvm_sregs
public typealias Segment = kvm_segment

/// Why KVM_RUN returned to the VMM, decoded from the shared `kvm_run` page.
public enum VMExit: Sendable {
    case io(port: UInt16, isWrite: Bool, size: Int, count: Int, dataOffset: Int)
    case mmio(address: UInt64, isWrite: Bool, length: Int)
    case halt
    case shutdown
    case interrupted
    case internalError(suberror: UInt32, data: [UInt64])
    case failEntry(reason: UInt64)
    case systemEvent(type: UInt32)
    case exception(vector: UInt32, errorCode: UInt32)
    case other(reason: UInt32)
}

/// A virtual CPU. Used by one thread at a time; `kick()` may be called from any.
public final class VCPU: @unchecked Sendable {
    public let fd: Int32
    public let id: Int
    let run: UnsafeMutablePointer<kvm_run>
    public let mapSize: Int
    /// The general registers are exchanged through kvm_run (KVM_CAP_SYNC_REGS)
    /// instead of KVM_GET_REGS/KVM_SET_REGS: two ioctls fewer per exit, each
    /// a vcpu load and put.
    let registersInRun: Bool
    /// kvm_run holds the registers once KVM_RUN has returned at least once.
    private var ranOnce = false

    init(fd: Int32, id: Int, mapSize: Int, syncRegisters: Bool) throws {
        let p = mmap(nil, mapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else {
            let e = errno
            close(fd)
            throw KVMError("mmap kvm_run", errno: e)
        }
        self.fd = fd
        self.id = id
        self.mapSize = mapSize
        self.run = ckvm_run_cast(p)
        self.registersInRun = syncRegisters
        if syncRegisters {
            // Valid from the first exit on; before it KVM_GET_REGS answers.
            ckvm_set_valid_regs(run, ckvm_sync_x86_regs())
        }
    }

    deinit {
        munmap(UnsafeMutableRawPointer(run), mapSize)
        close(fd)
    }

    /// The shared kvm_run page, for reading and writing I/O data in place.
    public var runPage: UnsafeMutableRawPointer { UnsafeMutableRawPointer(run) }

    /// Enters the guest until the next exit. EINTR (a kick) is `.interrupted`.
    public func enter() throws -> VMExit {
        let rc = ckvm_ioctl_int(fd, ckvm_run(), 0)
        ranOnce = true
        if rc != 0 {
            let e = errno
            if e == EINTR || e == EAGAIN {
                ckvm_set_immediate_exit(run, 0)
                return .interrupted
            }
            throw KVMError("KVM_RUN on vCPU \(id)", errno: e)
        }
        switch Int32(ckvm_exit_reason(run)) {
        case KVM_EXIT_IO:
            return .io(port: ckvm_io_port(run), isWrite: ckvm_io_direction(run) == UInt8(KVM_EXIT_IO_OUT),
                       size: Int(ckvm_io_size(run)), count: Int(ckvm_io_count(run)),
                       dataOffset: Int(ckvm_io_data_offset(run)))
        case KVM_EXIT_MMIO:
            return .mmio(address: ckvm_mmio_address(run), isWrite: ckvm_mmio_is_write(run) != 0,
                         length: Int(ckvm_mmio_length(run)))
        case KVM_EXIT_HLT: return .halt
        case KVM_EXIT_SHUTDOWN: return .shutdown
        case KVM_EXIT_INTR: return .interrupted
        case KVM_EXIT_INTERNAL_ERROR:
            let n = min(ckvm_internal_ndata(run), 16)
            return .internalError(suberror: ckvm_internal_suberror(run),
                                  data: (0..<n).map { ckvm_internal_data(run, $0) })
        case KVM_EXIT_FAIL_ENTRY: return .failEntry(reason: ckvm_fail_entry_reason(run))
        case KVM_EXIT_SYSTEM_EVENT: return .systemEvent(type: ckvm_system_event_type(run))
        case KVM_EXIT_EXCEPTION:
            return .exception(vector: ckvm_exception_vector(run), errorCode: ckvm_exception_error(run))
        case let r: return .other(reason: UInt32(r))
        }
    }

    /// MMIO data buffer of the current exit (8 bytes).
    public var mmioData: UnsafeMutablePointer<UInt8> { ckvm_mmio_data(run) }

    /// Makes the next or current KVM_RUN return promptly. Pair with a signal to
    /// interrupt a running guest; the flag covers the race where the signal
    /// arrives before the thread enters KVM_RUN.
    public func requestImmediateExit() { ckvm_set_immediate_exit(run, 1) }

    /// KVM_KVMCLOCK_CTRL: tells the guest (through kvm-clock's
    /// PVCLOCK_GUEST_STOPPED flag) that the host stopped this vCPU, so its
    /// soft-lockup watchdog does not take the pause for a hang. Call with
    /// the vCPU outside KVM_RUN. A guest without kvm-clock refuses it
    /// (EINVAL); that is nothing to report.
    public func reportPausedToGuest() { _ = ckvm_ioctl_int(fd, ckvm_kvmclock_ctrl(), 0) }

    public func registers() throws -> Registers {
        if registersInRun && ranOnce { return ckvm_sync_regs(run).pointee }
        var r = kvm_regs()
        guard ckvm_ioctl_ptr(fd, ckvm_get_regs(), &r) == 0 else { throw KVMError("KVM_GET_REGS") }
        return r
    }

    public func setRegisters(_ regs: Registers) throws {
        if registersInRun && ranOnce {
            // Applied by the next KVM_RUN; later reads see them already.
            ckvm_sync_regs(run).pointee = regs
            ckvm_mark_dirty_regs(run, ckvm_sync_x86_regs())
            return
        }
        var r = regs
        guard ckvm_ioctl_ptr(fd, ckvm_set_regs(), &r) == 0 else { throw KVMError("KVM_SET_REGS") }
    }

    public func specialRegisters() throws -> SpecialRegisters {
        var s = kvm_sregs()
        guard ckvm_ioctl_ptr(fd, ckvm_get_sregs(), &s) == 0 else { throw KVMError("KVM_GET_SREGS") }
        return s
    }

    public func setSpecialRegisters(_ sregs: SpecialRegisters) throws {
        var s = sregs
        guard ckvm_ioctl_ptr(fd, ckvm_set_sregs(), &s) == 0 else { throw KVMError("KVM_SET_SREGS") }
    }

    /// Reads MSRs; returns nil for any KVM refused.
    public func readMSRs(_ indices: [UInt32]) throws -> [UInt64] {
        try withMSRBuffer(indices.map { ($0, 0) }) { buf, n in
            let got = ckvm_ioctl_ptr(fd, ckvm_get_msrs(), buf)
            guard got == n else { throw KVMError("KVM_GET_MSRS (\(got) of \(n))") }
            let entries = (buf + MemoryLayout<kvm_msrs>.size).assumingMemoryBound(to: kvm_msr_entry.self)
            return (0..<n).map { entries[Int($0)].data }
        }
    }

    public func writeMSRs(_ values: [(UInt32, UInt64)]) throws {
        try withMSRBuffer(values) { buf, n in
            let got = ckvm_ioctl_ptr(fd, ckvm_set_msrs(), buf)
            guard got == n else { throw KVMError("KVM_SET_MSRS (\(got) of \(n))") }
        }
    }

    /// KVM_SET_MSRS: how many of `values`, in order, KVM took.
    func writeMSRsCounting(_ values: [(UInt32, UInt64)]) throws -> Int {
        try withMSRBuffer(values) { buf, _ in
            let got = ckvm_ioctl_ptr(fd, ckvm_set_msrs(), buf)
            guard got >= 0 else { throw KVMError("KVM_SET_MSRS") }
            return Int(got)
        }
    }

    private func withMSRBuffer<T>(_ values: [(UInt32, UInt64)],
                                  _ body: (UnsafeMutableRawPointer, Int32) throws -> T) rethrows -> T {
        let bytes = MemoryLayout<kvm_msrs>.size + values.count * MemoryLayout<kvm_msr_entry>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16)
        defer { raw.deallocate() }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        raw.assumingMemoryBound(to: kvm_msrs.self).pointee.nmsrs = UInt32(values.count)
        let entries = (raw + MemoryLayout<kvm_msrs>.size).assumingMemoryBound(to: kvm_msr_entry.self)
        for (i, v) in values.enumerated() {
            entries[i].index = v.0
            entries[i].data = v.1
        }
        return try body(raw, Int32(values.count))
    }

    public func setCPUID(_ entries: [CPUIDEntry]) throws {
        let bytes = MemoryLayout<kvm_cpuid2>.size + entries.count * MemoryLayout<kvm_cpuid_entry2>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16)
        defer { raw.deallocate() }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        raw.assumingMemoryBound(to: kvm_cpuid2.self).pointee.nent = UInt32(entries.count)
        let out = (raw + MemoryLayout<kvm_cpuid2>.size).assumingMemoryBound(to: kvm_cpuid_entry2.self)
        for (i, e) in entries.enumerated() { out[i] = e.raw }
        guard ckvm_ioctl_ptr(fd, ckvm_set_cpuid2(), raw) == 0 else { throw KVMError("KVM_SET_CPUID2") }
    }

    /// Delivers exception `vector` to the guest on the next entry, as the
    /// CPU would (KVM_SET_VCPU_EVENTS): for a trap such as #BP, rip must
    /// already point past the instruction.
    public func injectException(vector: UInt8, errorCode: UInt32? = nil) throws {
        var events = kvm_vcpu_events()
        guard ckvm_ioctl_ptr(fd, ckvm_get_vcpu_events(), &events) == 0 else { throw KVMError("KVM_GET_VCPU_EVENTS") }
        events.exception.injected = 1
        events.exception.nr = vector
        events.exception.has_error_code = errorCode == nil ? 0 : 1
        events.exception.error_code = errorCode ?? 0
        events.exception.pending = 0
        events.flags = 0
        guard ckvm_ioctl_ptr(fd, ckvm_set_vcpu_events(), &events) == 0 else { throw KVMError("KVM_SET_VCPU_EVENTS") }
    }

    /// The SSE control and status register (through KVM_GET_FPU/KVM_SET_FPU).
    public func mxcsr() throws -> UInt32 {
        var f = kvm_fpu()
        guard ckvm_ioctl_ptr(fd, ckvm_get_fpu(), &f) == 0 else { throw KVMError("KVM_GET_FPU") }
        return f.mxcsr
    }

    public func setMXCSR(_ value: UInt32) throws {
        var f = kvm_fpu()
        guard ckvm_ioctl_ptr(fd, ckvm_get_fpu(), &f) == 0 else { throw KVMError("KVM_GET_FPU") }
        f.mxcsr = value
        guard ckvm_ioctl_ptr(fd, ckvm_set_fpu(), &f) == 0 else { throw KVMError("KVM_SET_FPU") }
    }

    /// KVM_INTERRUPT: queue an external interrupt (userspace irqchip only).
    public func injectInterrupt(vector: UInt32) throws {
        guard ckvm_interrupt(fd, vector) == 0 else { throw KVMError("KVM_INTERRUPT \(vector)") }
    }

    /// Guest TSC frequency in kHz.
    public func tscKHz() throws -> UInt32 {
        let r = ckvm_ioctl_int(fd, ckvm_get_tsc_khz(), 0)
        guard r > 0 else { throw KVMError("KVM_GET_TSC_KHZ") }
        return UInt32(r)
    }
}

extension VCPU {
    /// The kick signal: blocked in the vCPU thread except while it runs guest
    /// code, so a kick that arrives early makes the next KVM_RUN return at once.
    public static let kickSignal = SIGUSR1

    /// Call on the vCPU's own thread before the first `enter()`.
    public func prepareKickSignal() throws {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { _ in }
        sigaction(VCPU.kickSignal, &sa, nil)
        ckvm_block_signal(VCPU.kickSignal)
        var mask = sigset_t()
        ckvm_unblocked_mask_without(VCPU.kickSignal, &mask)
        guard ckvm_set_signal_mask(fd, &mask) == 0 else { throw KVMError("KVM_SET_SIGNAL_MASK") }
    }

    /// Eats a pending kick after KVM_RUN returned EINTR, so it does not fire again.
    public static func consumeKick() {
        while ckvm_consume_signal(kickSignal, 0) > 0 {}
    }

    /// Sleeps until a kick arrives or `timeoutNanoseconds` pass; true if kicked.
    public static func waitForKick(timeoutNanoseconds: UInt64) -> Bool {
        ckvm_consume_signal(kickSignal, Int(min(timeoutNanoseconds, 3_600_000_000_000))) > 0
    }
}
