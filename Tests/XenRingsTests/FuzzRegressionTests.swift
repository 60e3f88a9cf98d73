import BlockStorage
import Testing
@testable import XenRings

/// Inputs scripts/fuzz-xen-rings.sh found, as unit tests. Each names the
/// crash file the fuzzer wrote (kept in scripts/fuzz-xen-rings-crashes/,
/// which the script replays before fuzzing).
@Suite struct XenRingFuzzRegressionTests {
    /// crash-4a559c79a232083b5efde2ce9e9ebb51e200a35f: a read whose first
    /// segment names the receive ring's own grant (2) and whose second has
    /// last_sect 0xf8. The request failed, and giving back its claims cleared
    /// the in-use flags of grant 2, which netback still held as its ring: the
    /// guest could have ended access to a page the backend kept writing.
    /// Claims are now counted per grant.
    @Test("a failed request that named a ring's grant leaves that grant in use")
    func ringGrantNamedBySegment() {
        let g = Guest()
        let r = blockRequest(BlockRequests.read, id: 0x0101, sector: 0,
                             segments: [Segment(ref: 2, first: 0, last: 7), Segment(ref: 0, first: 0, last: 0xf8),
                                        Segment(ref: 0xb6, first: 0x8b, last: 0x54)])
        g.post(r, at: 0)
        g.setIndex(0, 0, 1)
        let store = MemoryStore()
        #expect(g.serveBlock(store).corruption == nil)
        #expect(g.blockResponse(0) == (0x0101, BlockRequests.read, BlockRequests.error))
        #expect(g.inUse(0) && g.inUse(1) && g.inUse(2))
        #expect(g.domain.entries.pinCount(2) == (1, 1))
        #expect(g.refusal(r, on: store) == .sectorsOutsidePage(segment: 1, first: 0, last: 0xf8))
        // A request that succeeds with a ring's grant gives back only its own claim too.
        #expect(g.succeeds(blockRequest(BlockRequests.read, segments: [Segment(ref: 1)]), on: store))
        #expect(g.inUse(1) && g.domain.entries.pinCount(1) == (1, 1))
    }

    /// crash-d4fb6771daf6464f6ddd47096eb9f2e38b105288: a discard on a
    /// read-only disk reached the disk, which refused it (a `FlatFileDisk`
    /// does). feature-discard is not offered on read-only disks, so blkback
    /// now refuses it itself, as it does writes.
    @Test("a discard on a read-only disk is refused before the disk sees it")
    func discardOnReadOnlyDisk() {
        let g = Guest()
        let store = MemoryStore(readOnly: true)
        var r = blockRequest(BlockRequests.discard, id: 0x23, sector: 0x49)
        withUnsafeMutableBytes(of: &r.bytes) { $0.storeBytes(of: UInt64(0x9b), toByteOffset: 24, as: UInt64.self) }
        #expect(g.refusal(r, on: store) == .readOnlyDisk)
        #expect(store.discards == 0)
        g.post(r, at: 0)
        g.setIndex(0, 0, 1)
        _ = g.serveBlock(store)
        #expect(g.blockResponse(0).status == BlockRequests.error)
        #expect(store.discards == 0)
        let writable = MemoryStore()
        #expect(g.succeeds(blockRequest(BlockRequests.discard, sector: 0), on: writable))
        #expect(writable.discards == 1)
    }

    /// crash-1b6e8eebc8e7b69df93c748bb224c59a01a0c67b: the guest rewrote the
    /// frame of grant 2 while netback held it as its receive ring, then
    /// reconnected the disk on grant 2. The second claim read the new frame,
    /// so the one grant stood for two pages at once. As in Xen's active
    /// entries, a claimed grant now keeps the frame its first claim read.
    @Test("a grant's frame is fixed while it is claimed")
    func frameFixedWhileClaimed() {
        let g = Guest()
        g.domain.grant(2, frame: 0, flags: GrantEntries.permitAccess | GrantEntries.reading | GrantEntries.writing)
        let page = g.domain.claimGrant(2, writable: true)
        #expect(page == g.domain.page(2))
        #expect(g.domain.entries.pinCount(2) == (2, 2))
        g.domain.releaseGrant(2, writable: true)
        g.domain.releaseGrant(2, writable: true)        // netback lets go of its ring
        #expect(g.idle(2))
        #expect(g.domain.claimGrant(2, writable: true) == g.domain.page(0))   // unclaimed: the entry's frame again
    }
}
