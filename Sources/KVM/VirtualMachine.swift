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

    /// The in-kernel interrupt controllers (PIC, I/O APIC, a local APIC per
    /// vCPU). Before any vCPU is created.
    public func createInterruptController() throws {
        guard ckvm_ioctl_int(fd, ckvm_create_irqchip(), 0) == 0 else { throw KVMError("KVM_CREATE_IRQCHIP") }
    }

    /// The in-kernel i8254 PIT (its speaker port included).
    public func createPIT() throws {
        var config = kvm_pit_config()
        guard ckvm_ioctl_ptr(fd, ckvm_create_pit2(), &config) == 0 else { throw KVMError("KVM_CREATE_PIT2") }
    }

    /// Sets the level of interrupt line `gsi` (PIC and I/O APIC input).
    public func setInterruptLine(_ gsi: UInt32, high: Bool) throws {
        var level = kvm_irq_level()
        level.irq = gsi
        level.level = high ? 1 : 0
        guard ckvm_ioctl_ptr(fd, ckvm_irq_line(), &level) == 0 else { throw KVMError("KVM_IRQ_LINE \(gsi)") }
    }

    /// Intel only: a page the CPU needs for real mode under EPT; must lie
    /// outside guest RAM.
    public func setIdentityMapAddress(_ address: UInt64) throws {
        var a = address
        guard ckvm_ioctl_ptr(fd, ckvm_set_identity_map_addr(), &a) == 0 else { throw KVMError("KVM_SET_IDENTITY_MAP_ADDR") }
    }

    /// Needed on Intel before running a vCPU; harmless elsewhere.
    public func setTSSAddress(_ address: UInt64) throws {
        guard ckvm_ioctl_int(fd, ckvm_set_tss_addr(), UInt(address)) == 0 else {
            throw KVMError("KVM_SET_TSS_ADDR")
        }
    }
}
