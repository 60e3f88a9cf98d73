/// Where the hypervisor's own pieces live, in guest-virtual and guest-physical
/// space. The guest owns guest-physical [0, RAM); the hypervisor area sits far
/// above it and is never mappable by the guest (page-table validation refuses
/// any frame outside the guest's RAM).
public enum Layout {
    public static let pageSize: UInt64 = 4096
    public static let pageShift: UInt64 = 12

    // L4 slots 256–271 are Xen's (HV_START_LOW .. 0xffff880000000000); Linux
    // leaves them alone. We use three of them in every address space.
    /// Read-only machine-to-phys table: Linux reads it at the address
    /// XENMEM_machphys_mapping reports, on every PTE read. Not slot 256 as on
    /// Xen: this host's KVM (kvm_pvm) faults every access to slot 256.
    public static let m2pVirtual: UInt64 = 0xffff_8180_0000_0000
    public static let m2pSlot = 259
    /// Trampoline, IDT, per-vCPU GDT/TSS/stacks/return-link areas (slot 257).
    public static let trampolineVirtual: UInt64 = 0xffff_8080_0000_0000
    public static let trampolineSlot = 257
    /// The hypervisor's map of all guest RAM (slot 258), supervisor-only:
    /// the trampoline re-stores page-table entries through it (see Trampoline).
    public static let directVirtual: UInt64 = 0xffff_8100_0000_0000
    public static let directSlot = 258
    public static let hypervisorSlots = 256..<272

    /// Guest-physical base of the hypervisor area (64 GiB): guest RAM must stay below.
    public static let hypervisorPhysical: UInt64 = 1 << 36
    public static let maxGuestMemory: UInt64 = hypervisorPhysical

    // Offsets inside the trampoline slot.
    public static let codeOffset: UInt64 = 0x0000
    public static let syscallOffset: UInt64 = 0x1000
    public static let idtOffset: UInt64 = 0x2000
    /// The hypercall doorbell: a user-writable page with no memory behind it,
    /// so the landing page's store to it exits to the VMM as MMIO straight
    /// from CPL3, without an exception through the trampoline.
    public static let doorbellOffset: UInt64 = 0x3000
    /// Guest-physical address of the doorbell: above the hypervisor area, in
    /// no memory slot.
    public static let doorbellPhysical: UInt64 = hypervisorPhysical + (1 << 35)
    /// Per-vCPU blocks start here, `perCPUStride` apart.
    public static let perCPUOffset: UInt64 = 0x20_0000
    public static let perCPUStride: UInt64 = 0x4_0000   // 256 KiB of address space each

    // Inside a per-vCPU block.
    public static let gdtOffset: UInt64 = 0x0000          // 16 pages: limit 0xffff
    public static let gdtPages = 16
    public static let tssOffset: UInt64 = 0x1_0000
    public static let stackOffset: UInt64 = 0x1_1000      // 2 pages, grows down from 0x1_3000
    public static let stackTop: UInt64 = 0x1_3000
    // 0x1_3000: left unmapped, above the stack.
    public static let replayOffset: UInt64 = 0x1_4000     // return-link chains (replay area)
    public static let replayPages = 32                    // 4096 entries
    public static var replayCapacity: Int { replayPages * 512 }

    public static func perCPUVirtual(_ vcpu: Int) -> UInt64 {
        trampolineVirtual + perCPUOffset + UInt64(vcpu) * perCPUStride
    }

    // Segment selectors of the hypervisor part of every GDT (page 14, as Xen).
    public static let hypervisorCS: UInt16 = 0xe008
    public static let hypervisorDS: UInt16 = 0xe010
    public static let flatRing3CS32: UInt16 = 0xe023
    public static let flatRing3SS: UInt16 = 0xe02b
    public static let flatRing3CS64: UInt16 = 0xe033
    public static let tssSelector: UInt16 = 0xe040
    public static let flatKernelCS = flatRing3CS64
    public static let flatKernelSS = flatRing3SS
}

/// I/O ports the trampoline uses to exit to the VMM.
public enum TrampolinePort {
    /// Ports 0–63: the vector of the exception or interrupt that entered the trampoline.
    public static let vectorLimit: UInt16 = 64
    /// The return stub finished a replay round and wants more work.
    public static let replayRound: UInt16 = 0x40
}
