import BlockStorage
import Testing
@testable import XenRings

/// Requests that follow each other on the disk are served by one vectored
/// system call, as the host's block layer would merge them; each is still
/// checked and answered on its own.
@Suite struct BlockBatchTests {
    func post(_ g: Guest, _ requests: [BlockRequest]) {
        for (i, r) in requests.enumerated() { g.post(r, at: UInt32(i)) }
        g.setIndex(0, 0, UInt32(requests.count))
    }

    @Test("three reads that follow each other on the disk (plain and two pages) become one read, each answered okay")
    func contiguousReadsMerge() {
        let g = Guest()
        let store = MemoryStore(sectors: 64)
        post(g, [blockRequest(BlockRequests.read, id: 1, sector: 0, segments: [Segment(ref: Guest.writable(3)), Segment(ref: Guest.writable(4))]),
                 blockRequest(BlockRequests.read, id: 2, sector: 16, segments: [Segment(ref: Guest.writable(5), first: 0, last: 3)]),
                 blockRequest(BlockRequests.read, id: 3, sector: 20, segments: [Segment(ref: Guest.writable(6))])])
        #expect(g.serveBlock(store).performed == 3)
        #expect(store.reads == 1)
        for k: UInt32 in 0..<3 { #expect(g.blockResponse(k) == (UInt64(k + 1), BlockRequests.read, BlockRequests.okay)) }
        #expect(g.byte(3, 0) == 1 && g.byte(4, 0) == 9 && g.byte(5, 0) == 17 && g.byte(6, 0) == 21 && g.byte(6, 4095) == 28)
        #expect(g.counters.readRequests == 3 && g.counters.bytesRead == 2 * 4096 + 2048 + 4096)
        #expect((3...6).allSatisfy { g.domain.entries.pinCount(Guest.writable($0)).claims == 0 })
    }

    @Test("a bad request between good ones fails alone; the others are served, and no grant stays claimed")
    func badRequestSplitsTheMerge() {
        let g = Guest()
        let store = MemoryStore(sectors: 64)
        post(g, [blockRequest(BlockRequests.read, id: 1, sector: 0, segments: [Segment(ref: Guest.writable(3))]),
                 blockRequest(BlockRequests.read, id: 2, sector: 8, segments: [Segment(ref: Guest.readOnly(4))]),   // read into a read-only grant
                 blockRequest(BlockRequests.read, id: 3, sector: 16, segments: [Segment(ref: Guest.writable(5))]),
                 blockRequest(BlockRequests.read, id: 4, sector: 24, segments: [Segment(ref: Guest.writable(6))])])
        _ = g.serveBlock(store)
        #expect(g.blockResponse(0).status == BlockRequests.okay)
        #expect(g.blockResponse(1).status == BlockRequests.error)
        #expect(g.blockResponse(2).status == BlockRequests.okay && g.blockResponse(3).status == BlockRequests.okay)
        #expect(store.reads == 2)            // the first alone, the last two merged
        #expect(g.byte(5, 0) == 17 && g.byte(6, 0) == 25)
        #expect((3...6).allSatisfy { g.domain.entries.pinCount(Guest.writable($0)).claims == 0 && g.domain.entries.pinCount(Guest.readOnly($0)).claims == 0 })
    }

    @Test("a merged read that fails is done again request by request, so each gets its own status")
    func failedMergeIsRetriedAlone() {
        let g = Guest()
        let store = MemoryStore(sectors: 64)
        store.failReadsOfMoreVectorsThan = 1
        post(g, [blockRequest(BlockRequests.read, id: 1, sector: 0, segments: [Segment(ref: Guest.writable(3))]),
                 blockRequest(BlockRequests.read, id: 2, sector: 8, segments: [Segment(ref: Guest.writable(4))])])
        _ = g.serveBlock(store)
        #expect(g.blockResponse(0).status == BlockRequests.okay && g.blockResponse(1).status == BlockRequests.okay)
        #expect(g.byte(3, 0) == 1 && g.byte(4, 0) == 9)
        #expect(g.counters.failedRequests == 0 && g.counters.readRequests == 2)
    }

    @Test("requests apart on the disk, or in other directions, are not merged, and keep their order")
    func noMergeAcrossGapsOrDirections() {
        let g = Guest()
        let store = MemoryStore(sectors: 64)
        g.domain.page(4).initializeMemory(as: UInt8.self, repeating: 0xee, count: 4096)
        post(g, [blockRequest(BlockRequests.read, id: 1, sector: 0, segments: [Segment(ref: Guest.writable(3))]),
                 blockRequest(BlockRequests.write, id: 2, sector: 8, segments: [Segment(ref: Guest.readOnly(4))]),
                 blockRequest(BlockRequests.read, id: 3, sector: 8, segments: [Segment(ref: Guest.writable(5))]),
                 blockRequest(BlockRequests.read, id: 4, sector: 40, segments: [Segment(ref: Guest.writable(6))])])
        _ = g.serveBlock(store)
        #expect(store.reads == 3 && store.writes == 1)
        #expect(g.byte(5, 0) == 0xee)       // the read after the write sees it
        #expect(g.byte(6, 0) == 41)
        for k: UInt32 in 0..<4 { #expect(g.blockResponse(k).status == BlockRequests.okay) }
    }
}
