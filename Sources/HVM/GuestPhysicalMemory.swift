import KVM
import Machine
import Virtio
import VirtioPCI

/// Guest RAM by guest-physical address, for device models: the memfd holds
/// RAM below the PCI hole first and RAM above 4 GiB after it, so an address
/// above 4 GiB is not its offset in the memfd (which is all `GuestMemory`
/// itself knows). The PCI hole and anything past RAM translate to nil.
struct GuestPhysicalMemory: GuestMemoryView, @unchecked Sendable {
    let memory: GuestMemory
    let lowTop: UInt64
    /// The 4 KiB frames the e820 map calls RAM, as [start, end) ranges: the
    /// only frames a balloon may free (not the EBDA, BIOS area and ACPI
    /// tables below 1 MiB, which are in the memfd but reserved).
    let ramFrames: [(start: UInt64, end: UInt64)]

    init(memory: GuestMemory, layout: BootLayout) {
        self.memory = memory
        lowTop = layout.lowRAMTop
        // Whole pages only: a page part RAM, part reserved is not RAM.
        ramFrames = layout.e820.filter { $0.type == .ram }.compactMap { e in
            let start = (e.address + 4095) / 4096, end = (e.address + e.size) / 4096
            return start < end ? (start, end) : nil
        }
    }

    func pointer(_ gpa: UInt64, length: UInt64) -> UnsafeMutableRawPointer? {
        offset(gpa, length: length).flatMap { memory.pointer($0, length: length) }
    }

    /// Where `length` bytes at `gpa` are in the memfd, if they are wholly
    /// RAM on one side of the hole.
    private func offset(_ gpa: UInt64, length: UInt64) -> UInt64? {
        if gpa < lowTop {
            // Wholly below the hole (a buffer may not run on into it).
            guard length <= lowTop - gpa else { return nil }
            return memory.contains(gpa, length: length) ? gpa : nil
        }
        guard gpa >= BootLayout.fourGiB else { return nil }
        let offset = gpa - BootLayout.fourGiB + lowTop
        guard offset >= lowTop else { return nil }      // overflowed
        return memory.contains(offset, length: length) ? offset : nil
    }
}

/// The balloon frees guest pages by punching them out of the memfd
/// (MADV_REMOVE, as the PV balloon does), which KVM sees through its MMU
/// notifier: the guest's next touch faults in a zero page.
extension GuestPhysicalMemory: BalloonMemory {
    var frameLimit: UInt64 { ramFrames.last?.end ?? 0 }

    func isRAM(frame: UInt64) -> Bool {
        ramFrames.contains { frame >= $0.start && frame < $0.end }
    }

    func release(frames frame: UInt64, count: UInt64) -> Bool {
        // All in one RAM range, so contiguous in the memfd too.
        guard count > 0, ramFrames.contains(where: { frame >= $0.start && frame < $0.end && count <= $0.end - frame }),
              let at = offset(frame * 4096, length: count * 4096) else { return false }
        return memory.discard(at, length: count * 4096)
    }
}
