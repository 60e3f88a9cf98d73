import CKVM
import Glibc

/// The two shortcuts a device model needs from KVM so that neither a queue
/// notification nor an interrupt passes through a vCPU thread.
extension VirtualMachine {
    /// Binds eventfd `fd` to guest writes of `length` bytes at guest-physical
    /// `address` (KVM_IOEVENTFD): KVM signals the eventfd and resumes the
    /// guest at once, with no MMIO exit.
    public func attachIOEventFD(address: UInt64, length: UInt32, eventFD fd: Int32) throws {
        guard ckvm_ioeventfd(self.fd, address, length, fd, 0) == 0 else {
            throw KVMError("KVM_IOEVENTFD at 0x\(String(address, radix: 16))")
        }
    }

    /// Removes a binding made by `attachIOEventFD` with the same arguments.
    public func detachIOEventFD(address: UInt64, length: UInt32, eventFD fd: Int32) {
        _ = ckvm_ioeventfd(self.fd, address, length, fd, 1)
    }

    /// Delivers one message-signalled interrupt (KVM_SIGNAL_MSI): the MSI-X
    /// table entry's address and data, as a PCI device would write them.
    /// Returns false if KVM refused it (the guest's APIC blocked it, or a
    /// malformed message: both the guest's doing).
    @discardableResult
    public func sendMSI(address: UInt64, data: UInt32) -> Bool {
        ckvm_signal_msi(fd, address, data) > 0
    }
}
