import KVM
import Machine
import Virtio

/// Guest RAM by guest-physical address, for device models: the memfd holds
/// RAM below the PCI hole first and RAM above 4 GiB after it, so an address
/// above 4 GiB is not its offset in the memfd (which is all `GuestMemory`
/// itself knows). The PCI hole and anything past RAM translate to nil.
struct GuestPhysicalMemory: GuestMemoryView, @unchecked Sendable {
    let memory: GuestMemory
    let lowTop: UInt64

    init(memory: GuestMemory, layout: BootLayout) {
        self.memory = memory
        lowTop = layout.lowRAMTop
    }

    func pointer(_ gpa: UInt64, length: UInt64) -> UnsafeMutableRawPointer? {
        if gpa < lowTop {
            // Wholly below the hole (a buffer may not run on into it).
            guard length <= lowTop - gpa else { return nil }
            return memory.pointer(gpa, length: length)
        }
        guard gpa >= BootLayout.fourGiB else { return nil }
        let offset = gpa - BootLayout.fourGiB + lowTop
        guard offset >= lowTop else { return nil }      // overflowed
        return memory.pointer(offset, length: length)
    }
}
