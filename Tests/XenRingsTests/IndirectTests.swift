import BlockStorage
import Testing
@testable import XenRings

/// BLKIF_OP_INDIRECT: one ring slot names up to 8 granted pages of segment
/// descriptors; the backend copies them out, lets the pages go, then moves
/// the data like a plain read or write, and answers with the operation the
/// request carried.
@Suite struct BlockIndirectTests {
    /// Grant of the descriptor page in these tests: data frame 11, read-only.
    static let descriptorPage = Guest.readOnly(11)

    /// Writes `segments` as descriptors into frame 11 and returns the request.
    func indirect(_ g: Guest, _ op: UInt8, id: UInt64 = 9, sector: UInt64 = 0, segments: [Segment], count: Int? = nil,
                  pages: [UInt32] = [BlockIndirectTests.descriptorPage]) -> BlockRequest {
        let page = g.domain.page(11)
        for (i, s) in segments.enumerated() {
            page.storeBytes(of: s.ref, toByteOffset: i * 8, as: UInt32.self)
            page.storeBytes(of: s.first, toByteOffset: i * 8 + 4, as: UInt8.self)
            page.storeBytes(of: s.last, toByteOffset: i * 8 + 5, as: UInt8.self)
        }
        var r = BlockRequest()
        withUnsafeMutableBytes(of: &r.bytes) { b in
            b.storeBytes(of: BlockRequests.indirect, as: UInt8.self)
            b.storeBytes(of: op, toByteOffset: 1, as: UInt8.self)
            b.storeBytes(of: UInt16(count ?? segments.count), toByteOffset: 2, as: UInt16.self)
            b.storeBytes(of: id, toByteOffset: 8, as: UInt64.self)
            b.storeBytes(of: sector, toByteOffset: 16, as: UInt64.self)
            for (i, ref) in pages.enumerated() { b.storeBytes(of: ref, toByteOffset: 28 + i * 4, as: UInt32.self) }
        }
        return r
    }

    func noClaimsLeft(_ g: Guest) -> Bool {
        (3..<Guest.frames).allSatisfy { f in
            g.domain.entries.pinCount(Guest.writable(f)).claims == 0 && g.domain.entries.pinCount(Guest.readOnly(f)).claims == 0
        }
    }

    @Test("an indirect read of 24 segments over 8 pages fills them in order from the disk, and every grant is let go")
    func readAcrossPages() {
        let g = Guest()
        let store = MemoryStore(sectors: 512)
        // Frames 3...10, three times over: sectors 16...207, page by page.
        let segments = (0..<24).map { Segment(ref: Guest.writable(3 + $0 % 8)) }
        let r = indirect(g, BlockRequests.read, sector: 16, segments: segments)
        #expect(g.succeeds(r, on: store))
        // The last pass over a frame wins: frame 3 + k holds segment 16 + k's page, sectors 16 + 8 * (16 + k)...
        for k in 0..<8 {
            #expect(g.byte(3 + k, 0) == UInt8(truncatingIfNeeded: 16 + 8 * (16 + k) + 1))
            #expect(g.byte(3 + k, 4095) == UInt8(truncatingIfNeeded: 16 + 8 * (16 + k) + 7 + 1))
        }
        #expect(store.reads == 1)           // one vectored read for the whole request
        #expect(g.counters.bytesRead == 24 * 4096)
        #expect(noClaimsLeft(g))
    }

    @Test("an indirect write takes partial pages (first and last sector) to consecutive disk sectors")
    func writePartialPages() {
        let g = Guest()
        let store = MemoryStore(sectors: 64)
        g.domain.page(3).initializeMemory(as: UInt8.self, repeating: 0xaa, count: 4096)
        g.domain.page(4).initializeMemory(as: UInt8.self, repeating: 0xbb, count: 4096)
        let r = indirect(g, BlockRequests.write, sector: 10,
                         segments: [Segment(ref: Guest.readOnly(3), first: 6, last: 7), Segment(ref: Guest.readOnly(4), first: 0, last: 0)])
        #expect(g.succeeds(r, on: store))
        #expect(store.bytes[10 * 512] == 0xaa && store.bytes[12 * 512 - 1] == 0xaa)
        #expect(store.bytes[12 * 512] == 0xbb && store.bytes[13 * 512 - 1] == 0xbb)
        #expect(store.bytes[13 * 512] == 14)      // untouched: sector 13 holds 13 + 1
        #expect(noClaimsLeft(g))
    }

    @Test("on the ring an indirect request is answered as the read it carried (Linux checks the operation)")
    func responseOperation() {
        let g = Guest()
        let store = MemoryStore(sectors: 64)
        g.post(indirect(g, BlockRequests.read, id: 0x77, segments: [Segment(ref: Guest.writable(5))]), at: 0)
        g.setIndex(0, 0, 1)
        #expect(g.serveBlock(store).corruption == nil)
        #expect(g.blockResponse(0) == (0x77, BlockRequests.read, BlockRequests.okay))
    }

    @Test("hostile indirect requests fail alone, before any data moves, with every grant let go")
    func refusals() {
        let g = Guest()
        let store = MemoryStore(sectors: 64)
        let one = [Segment(ref: Guest.writable(3))]
        #expect(g.refusal(indirect(g, BlockRequests.flush, segments: one), on: store) == .indirectOperation(BlockRequests.flush))
        #expect(g.refusal(indirect(g, BlockRequests.indirect, segments: one), on: store) == .indirectOperation(BlockRequests.indirect))
        #expect(g.refusal(indirect(g, BlockRequests.read, segments: []), on: store) == .indirectSegmentCount(0))
        #expect(g.refusal(indirect(g, BlockRequests.read, segments: one, count: 257), on: store) == .indirectSegmentCount(257))
        #expect(g.refusal(indirect(g, BlockRequests.read, segments: one, count: 0xffff), on: store) == .indirectSegmentCount(0xffff))
        // The descriptor page's grant is out of the table, or not granted.
        #expect(g.refusal(indirect(g, BlockRequests.read, segments: one, pages: [4000]), on: store)
                == .indirectPage(page: 0, .refOutOfRange(ref: 4000, entries: 512)))
        if case .indirectPage(0, .notPermitAccess)? = g.refusal(indirect(g, BlockRequests.read, segments: one, pages: [100]), on: store) {} else {
            Issue.record("an ungranted descriptor page was not refused as such")
        }
        // A descriptor that names sectors outside its page, or a grant the guest never made.
        #expect(g.refusal(indirect(g, BlockRequests.read, segments: [Segment(ref: Guest.writable(3)), Segment(ref: Guest.writable(4), first: 3, last: 8)]), on: store)
                == .sectorsOutsidePage(segment: 1, first: 3, last: 8))
        #expect(g.refusal(indirect(g, BlockRequests.read, segments: [Segment(ref: Guest.writable(3)), Segment(ref: Guest.readOnly(4))]), on: store)
                == .grant(segment: 1, .readOnly(ref: Guest.readOnly(4))))
        // Past the end of the disk, and a write to a read-only disk.
        #expect(g.refusal(indirect(g, BlockRequests.read, sector: 60, segments: one), on: store) == .beyondDisk(sector: 60))
        #expect(g.refusal(indirect(g, BlockRequests.write, segments: [Segment(ref: Guest.readOnly(3))]), on: MemoryStore(readOnly: true))
                == .readOnlyDisk)
        #expect(store.reads == 0 && store.writes == 0)
        #expect(noClaimsLeft(g))
        #expect(BlockRefusal.indirectSegmentCount(257).description == "indirect request of 257 segments (1 to 256 allowed)")
    }
}
