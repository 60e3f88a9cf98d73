import CKVM
import Glibc

/// Pieces of KVM's own state a save image carries whole: each is a fixed
/// kernel structure (linux/kvm.h) moved by a GET/SET ioctl pair. They are
/// stored as the kernel's bytes, checked by length on the way back; KVM's
/// SET ioctls validate their contents (a bad segment, an unknown MP state,
/// a reserved bit) and refuse what a real vCPU could not hold.
public enum VCPUStatePart: Int32, CaseIterable, Sendable {
    case registers = 7, specialRegisters = 6, extendedControl = 1, localAPIC = 2
    case multiprocessing = 3, events = 4, debugRegisters = 5

    /// The structure's size in this kernel's ABI.
    public var size: Int { Int(ckvm_vcpu_state_size(rawValue)) }

    /// The ioctl's name without its GET_/SET_ (for errors).
    var name: String {
        switch self {
        case .registers: "REGS"
        case .specialRegisters: "SREGS"
        case .extendedControl: "XCRS"
        case .localAPIC: "LAPIC"
        case .multiprocessing: "MP_STATE"
        case .events: "VCPU_EVENTS"
        case .debugRegisters: "DEBUGREGS"
        }
    }
}

/// The VM-wide parts: the in-kernel PICs, I/O APIC and PIT, and kvm-clock.
public enum VMStatePart: Int32, CaseIterable, Sendable {
    case masterPIC = 1, slavePIC = 2, ioAPIC = 3, pit = 4, clock = 5

    public var size: Int { Int(ckvm_vm_state_size(rawValue)) }
}

extension VCPU {
    /// The vCPU's `part` as the kernel's bytes. Call with the vCPU outside KVM_RUN.
    public func state(_ part: VCPUStatePart) throws -> [UInt8] {
        if part == .registers {
            // Through `registers()`: with synced registers the run page holds the current ones.
            var r = try registers()
            return withUnsafeBytes(of: &r) { Array($0) }
        }
        var bytes = [UInt8](repeating: 0, count: part.size)
        let rc = bytes.withUnsafeMutableBytes { ckvm_ioctl_ptr(fd, ckvm_vcpu_state_request(part.rawValue, 0), $0.baseAddress) }
        guard rc == 0 else { throw KVMError("KVM_GET_" + part.name) }
        return bytes
    }

    /// Loads `bytes` that `state(part)` produced (here or on the host that saved it).
    public func setState(_ part: VCPUStatePart, _ bytes: [UInt8]) throws {
        guard bytes.count == part.size else {
            throw KVMError("KVM_SET_\(part.name): \(bytes.count) bytes saved, this kernel's structure has \(part.size)", errno: 0)
        }
        if part == .registers {
            var r = Registers()
            withUnsafeMutableBytes(of: &r) { $0.copyBytes(from: bytes) }
            try setRegisters(r)
            return
        }
        var copy = bytes
        let rc = copy.withUnsafeMutableBytes { ckvm_ioctl_ptr(fd, ckvm_vcpu_state_request(part.rawValue, 1), $0.baseAddress) }
        guard rc == 0 else { throw KVMError("KVM_SET_" + part.name) }
    }

    /// Writes MSRs one batch at a time and returns the indices KVM refused
    /// (KVM_SET_MSRS stops at the first it refuses; the rest are retried).
    public func writeMSRsReportingRefused(_ values: [(UInt32, UInt64)]) -> [UInt32] {
        var refused: [UInt32] = []
        var rest = values[...]
        while !rest.isEmpty {
            let batch = Array(rest)
            let done = (try? writeMSRsCounting(batch)) ?? 0
            if done >= batch.count { break }
            refused.append(batch[done].0)
            rest = rest.dropFirst(done + 1)
        }
        return refused
    }
}

extension VirtualMachine {
    public func state(_ part: VMStatePart) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: part.size)
        let rc = bytes.withUnsafeMutableBytes { ckvm_vm_state_ioctl(fd, part.rawValue, 0, $0.baseAddress) }
        guard rc == 0 else { throw KVMError("getting the VM's \(part) state") }
        return bytes
    }

    public func setState(_ part: VMStatePart, _ bytes: [UInt8]) throws {
        guard bytes.count == part.size else {
            throw KVMError("the VM's \(part) state: \(bytes.count) bytes saved, this kernel's structure has \(part.size)", errno: 0)
        }
        var copy = bytes
        let rc = copy.withUnsafeMutableBytes { ckvm_vm_state_ioctl(fd, part.rawValue, 1, $0.baseAddress) }
        guard rc == 0 else { throw KVMError("setting the VM's \(part) state") }
    }

    /// kvm-clock now (ns): KVM_GET_CLOCK's value.
    public func clockNanoseconds() throws -> UInt64 {
        let bytes = try state(.clock)
        return bytes.withUnsafeBytes { ckvm_clock_data_value($0.baseAddress) }
    }

    /// Sets kvm-clock to `ns` now (KVM_SET_CLOCK).
    public func setClock(nanoseconds ns: UInt64) throws {
        var bytes = [UInt8](repeating: 0, count: VMStatePart.clock.size)
        bytes.withUnsafeMutableBytes { ckvm_clock_data_set_value($0.baseAddress, ns) }
        try setState(.clock, bytes)
    }
}

extension KVMSystem {
    /// The MSRs KVM saves and restores for a vCPU (KVM_GET_MSR_INDEX_LIST).
    public func msrIndexList() throws -> [UInt32] {
        var out = [UInt32](repeating: 0, count: 1024)
        let n = out.withUnsafeMutableBufferPointer { ckvm_msr_index_list(fd, $0.baseAddress, 1024) }
        guard n >= 0 else { throw KVMError("KVM_GET_MSR_INDEX_LIST") }
        return Array(out.prefix(Int(n)))
    }
}
