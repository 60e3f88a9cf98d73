/// The balloon's side of XENMEM (H `memory.h`): the guest's xen-balloon
/// driver gives frames back with decrease_reservation and takes them again
/// with populate_physmap (or increase_reservation). Frames are identity
/// mapped (mfn = pfn), so a frame comes back under its own number.
extension PVCPU {
    /// struct xen_memory_reservation on x86-64: extent_start (guest handle)
    /// @0, nr_extents @8, extent_order @16, mem_flags @20, domid (u16) @24.
    /// Returns the number of extents done (from `startExtent` on), or an error.
    func memoryReservation(_ cmd: UInt64, _ arg: UInt64, startExtent: UInt64) -> Int64 {
        guard let list = readGuestWord(arg), let count = readGuestWord(arg + 8),
              let orderAndFlags = readGuestWord(arg + 16), let domid = readGuestWord(arg + 24) else { return -XenErrno.EFAULT }
        let order = orderAndFlags & 0xffff_ffff
        guard domid & 0xffff == 0x7ff0 else { return -XenErrno.EPERM }          // DOMID_SELF only
        // Linux balloons single pages; larger extents are not offered.
        guard order == 0 else { return -XenErrno.EINVAL }
        guard count <= domain.frames, startExtent <= count else { return -XenErrno.EINVAL }
        let giving = cmd == 1
        var done = startExtent
        while done < count {
            let slot = list &+ done * 8
            guard let frame = readGuestWord(slot) else { break }
            if giving {
                guard giveBack(frame) else { break }
            } else {
                guard takeBack(frame) else { break }
                // populate_physmap writes back the frame it gave (its own number).
                guard writeGuestWord(frame, at: slot) else { break }
            }
            done += 1
        }
        trace("memory_op \(cmd): \(done - startExtent) of \(count - startExtent) extents")
        return Int64(done)
    }

    /// Releases `frame`'s host memory once it is no longer the guest's.
    private func giveBack(_ frame: UInt64) -> Bool {
        domain.mmu.withLock { types -> Bool in
            guard types.giveBack(frame) else { return false }
            domain.memory.discard(frame << 12, length: Layout.pageSize)
            return true
        }
    }

    /// Returns `frame` to the guest, zeroed (discarding it again makes sure:
    /// a leftover mapping may have written it while it was out).
    private func takeBack(_ frame: UInt64) -> Bool {
        // Under the page-type lock: no mapping of it can be made meanwhile.
        domain.mmu.withLock { types -> Bool in
            guard types.takeBack(frame) else { return false }
            domain.memory.discard(frame << 12, length: Layout.pageSize)
            return true
        }
    }
}
