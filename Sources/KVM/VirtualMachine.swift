import CKVM
import Glibc

/// A KVM VM: memory slots and vCPU creation.
public final class VirtualMachine: @unchecked Sendable {
    public let fd: Int32
    public let system: KVMSystem

    init(fd: Int32, system: KVMSystem) {
        self.fd = fd
        self.system = system
    }

    deinit { close(fd) }

    /// Maps `size` bytes at host address `host` to guest-physical `guestPhysical`.
    public func setMemoryRegion(slot: UInt32, guestPhysical: UInt64, size: UInt64,
                                host: UnsafeMutableRawPointer?, readOnly: Bool = false,
                                logDirty: Bool = false) throws {
        var region = kvm_userspace_memory_region()
        region.slot = slot
        region.flags = (readOnly ? UInt32(KVM_MEM_READONLY) : 0) | (logDirty ? UInt32(KVM_MEM_LOG_DIRTY_PAGES) : 0)
        region.guest_phys_addr = guestPhysical
        region.memory_size = size
        region.userspace_addr = UInt64(UInt(bitPattern: host))
        guard ckvm_ioctl_ptr(fd, ckvm_set_user_memory_region(), &region) == 0 else {
            throw KVMError("KVM_SET_USER_MEMORY_REGION slot \(slot)")
        }
    }

    public func createVCPU(id: Int) throws -> VCPU {
        let vfd = ckvm_ioctl_int(fd, ckvm_create_vcpu(), UInt(id))
        guard vfd >= 0 else { throw KVMError("KVM_CREATE_VCPU \(id)") }
        let sync = UInt64(max(0, system.checkExtension(Int32(ckvm_cap_sync_regs())))) & ckvm_sync_x86_regs() != 0
        return try VCPU(fd: vfd, id: id, mapSize: system.vcpuMapSize, syncRegisters: sync)
    }

    /// Needed on Intel before running a vCPU; harmless elsewhere.
    public func setTSSAddress(_ address: UInt64) throws {
        guard ckvm_ioctl_int(fd, ckvm_set_tss_addr(), UInt(address)) == 0 else {
            throw KVMError("KVM_SET_TSS_ADDR")
        }
    }
}
