import CKVM
import Glibc

extension VCPU {
    /// The size of KVM's `struct kvm_xsave` (the legacy 4 KiB layout).
    public static let xsaveSize = 4096
    /// The size of `struct kvm_fpu` (KVM_GET_FPU / KVM_SET_FPU).
    public static let fpuSize = MemoryLayout<kvm_fpu>.size

    /// The vCPU's x87/SSE/AVX state (KVM_GET_XSAVE) into `buffer`, which
    /// holds `xsaveSize` bytes. Where KVM has no XSAVE, the FXSAVE-era state
    /// (KVM_GET_FPU) in its first `fpuSize` bytes; returns which it was.
    public func saveFPU(into buffer: UnsafeMutableRawBufferPointer) throws -> FPUFormat {
        precondition(buffer.count >= Self.xsaveSize)
        if ckvm_ioctl_ptr(fd, ckvm_get_xsave(), buffer.baseAddress) == 0 { return .xsave }
        guard ckvm_ioctl_ptr(fd, ckvm_get_fpu(), buffer.baseAddress) == 0 else { throw KVMError("KVM_GET_FPU") }
        return .fpu
    }

    /// Loads state `saveFPU` produced.
    public func restoreFPU(_ buffer: UnsafeRawBufferPointer, format: FPUFormat) throws {
        precondition(buffer.count >= Self.xsaveSize)
        let p = UnsafeMutableRawPointer(mutating: buffer.baseAddress)
        switch format {
        case .xsave:
            guard ckvm_ioctl_ptr(fd, ckvm_set_xsave(), p) == 0 else { throw KVMError("KVM_SET_XSAVE") }
        case .fpu:
            guard ckvm_ioctl_ptr(fd, ckvm_set_fpu(), p) == 0 else { throw KVMError("KVM_SET_FPU") }
        }
    }

    public enum FPUFormat: UInt32, Sendable { case fpu = 1, xsave = 2 }
}
