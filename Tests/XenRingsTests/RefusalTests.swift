import BlockStorage
import Testing
@testable import XenRings

/// What a hostile frontend can put on a blkif ring or in its grant table is
/// refused with a reason: the request fails alone (BLKIF_RSP_ERROR), or a
/// broken ring is reported as corruption so the device is closed.
@Suite struct BlockRefusalTests {
    @Test("req_prod more than a ring ahead of what was consumed is corruption: nothing is served")
    func ringIndexOverflow() {
        let g = Guest()
        let store = MemoryStore()
        g.post(blockRequest(BlockRequests.read, segments: [Segment(ref: Guest.writable(3))]), at: 0)
        g.setIndex(0, 0, BlockRing.entries + 1)
        let (corruption, performed) = g.serveBlock(store)
        #expect(corruption == RingCorruption(ring: .block, produced: 33, consumed: 0))
        #expect(corruption?.description == "the frontend's ring is corrupt (request index 33, 0 consumed)")
        #expect(performed == 0)
        #expect(g.index(0, 8) == 0)          // no response published
        #expect(store.reads == 0)
    }

    @Test("a producer index behind the consumer (wrapped) is corruption too")
    func ringIndexBehind() {
        let g = Guest()
        g.setIndex(0, 0, UInt32.max)
        #expect(g.serveBlock(MemoryStore()).corruption == RingCorruption(ring: .block, produced: UInt32.max, consumed: 0))
    }

    @Test("exactly a ring's worth of requests is served, answered in order with their ids")
    func fullRing() {
        let g = Guest()
        let store = MemoryStore()
        for i in 0..<BlockRing.entries {
            g.post(blockRequest(BlockRequests.read, id: UInt64(1000 + i), sector: UInt64(i), segments: [Segment(ref: Guest.writable(3))]), at: i)
        }
        g.setIndex(0, 0, BlockRing.entries)
        let (corruption, performed) = g.serveBlock(store)
        #expect(corruption == nil)
        #expect(performed == 32)
        #expect(g.index(0, 8) == 32)
        for k in 0..<BlockRing.entries {
            let r = g.blockResponse(k)
            #expect(r.id == UInt64(1000 + k) && r.operation == BlockRequests.read && r.status == BlockRequests.okay)
        }
        #expect(g.index(0, 4) == 33)         // req_event: tell us at the next request
    }

    @Test("more segments than BLKIF_MAX_SEGMENTS_PER_REQUEST (or none) fail the request before any grant is claimed")
    func segmentCount() {
        let g = Guest()
        let store = MemoryStore()
        let twelve = (0..<12).map { _ in Segment(ref: Guest.writable(3)) }
        #expect(g.refusal(blockRequest(BlockRequests.read, segments: twelve, count: 12), on: store) == .segmentCount(12))
        #expect(g.refusal(blockRequest(BlockRequests.write, segments: twelve, count: 255), on: store) == .segmentCount(255))
        #expect(g.refusal(blockRequest(BlockRequests.read, segments: []), on: store) == .segmentCount(0))
        #expect(g.domain.entries.pinCount(3).claims == 0)
        #expect(store.reads == 0 && store.writes == 0)
        #expect(BlockRefusal.segmentCount(12).description == "12 segments (1 to 11 allowed)")
        // On the ring: status BLKIF_RSP_ERROR.
        g.post(blockRequest(BlockRequests.read, id: 5, segments: twelve, count: 12), at: 0)
        g.setIndex(0, 0, 1)
        _ = g.serveBlock(store)
        #expect(g.blockResponse(0).status == BlockRequests.error && g.blockResponse(0).id == 5)
        #expect(g.counters.failedRequests == 1)
    }

    @Test("a grant reference beyond the entries the guest set up")
    func grantRefOutOfRange() {
        let g = Guest()
        let store = MemoryStore()
        #expect(g.refusal(blockRequest(BlockRequests.read, segments: [Segment(ref: 512)]), on: store)
                == .grant(segment: 0, .refOutOfRange(ref: 512, entries: 512)))
        #expect(g.refusal(blockRequest(BlockRequests.write, segments: [Segment(ref: Guest.readOnly(4)), Segment(ref: .max)]), on: store)
                == .grant(segment: 1, .refOutOfRange(ref: .max, entries: 512)))
        g.domain.framesInUse = 0        // before GNTTABOP_setup_table: no entries at all
        #expect(g.refusal(blockRequest(BlockRequests.read, segments: [Segment(ref: 3)]), on: store)
                == .grant(segment: 0, .refOutOfRange(ref: 3, entries: 0)))
        #expect(store.reads == 0 && store.writes == 0)
    }

    @Test("a grant for another domain, or one that is not GTF_permit_access")
    func grantNotForTheBackend() {
        let g = Guest()
        let store = MemoryStore()
        g.domain.grant(21, frame: 5, domain: 1)
        #expect(g.refusal(blockRequest(BlockRequests.read, segments: [Segment(ref: 21)]), on: store)
                == .grant(segment: 0, .otherDomain(ref: 21, domid: 1)))
        for flags: UInt16 in [0, 2, 3, GrantEntries.readOnly] {     // invalid, accept_transfer, transitive, no type
            g.domain.grant(22, frame: 5, flags: flags)
            #expect(g.refusal(blockRequest(BlockRequests.write, segments: [Segment(ref: 22)]), on: store)
                    == .grant(segment: 0, .notPermitAccess(ref: 22, flags: flags)))
            #expect(g.idle(22))
        }
        #expect(store.reads == 0 && store.writes == 0)
    }

    @Test("a read-only grant cannot take a disk read (the backend would write guest memory); it can feed a write")
    func readOnlyGrantForDiskRead() {
        let g = Guest()
        let store = MemoryStore()
        let before = Array(UnsafeRawBufferPointer(start: g.domain.page(4), count: 4096))
        #expect(g.refusal(blockRequest(BlockRequests.read, segments: [Segment(ref: Guest.readOnly(4))]), on: store)
                == .grant(segment: 0, .readOnly(ref: Guest.readOnly(4))))
        #expect(Array(UnsafeRawBufferPointer(start: g.domain.page(4), count: 4096)) == before)
        #expect(g.idle(Guest.readOnly(4)))
        #expect(g.succeeds(blockRequest(BlockRequests.write, segments: [Segment(ref: Guest.readOnly(4))]), on: store))
        #expect(store.writes == 1 && store.reads == 0)
    }

    @Test("a grant naming a frame that is not the guest's RAM, or one ballooned out")
    func grantFrameNotRAM() {
        let g = Guest()
        let store = MemoryStore()
        g.domain.grant(21, frame: 12)
        #expect(g.refusal(blockRequest(BlockRequests.read, segments: [Segment(ref: 21)]), on: store)
                == .grant(segment: 0, .frameNotGuestRAM(ref: 21, frame: 12)))
        #expect(g.idle(21))
        g.domain.ballooned[5] = true
        #expect(g.refusal(blockRequest(BlockRequests.read, segments: [Segment(ref: Guest.writable(5))]), on: store)
                == .grant(segment: 0, .frameNotGuestRAM(ref: 5, frame: 5)))
    }

    @Test("first_sect after last_sect, or last_sect past the page's 8 sectors")
    func sectorsOutsidePage() {
        let g = Guest()
        let store = MemoryStore()
        #expect(g.refusal(blockRequest(BlockRequests.read, segments: [Segment(ref: 3, first: 5, last: 4)]), on: store)
                == .sectorsOutsidePage(segment: 0, first: 5, last: 4))
        #expect(g.refusal(blockRequest(BlockRequests.read, segments: [Segment(ref: 3), Segment(ref: 4, first: 0, last: 8)]), on: store)
                == .sectorsOutsidePage(segment: 1, first: 0, last: 8))
        #expect(g.refusal(blockRequest(BlockRequests.write, segments: [Segment(ref: 3, first: 255, last: 255)]), on: store)
                == .sectorsOutsidePage(segment: 0, first: 255, last: 255))
        // The segment before the bad one was claimed, then given back.
        #expect(g.idle(3) && g.domain.entries.pinCount(3).claims == 0)
        #expect(store.reads == 0 && store.writes == 0)
    }

    @Test("a write to a read-only disk, and a read past the end of the disk")
    func diskLimits() {
        let g = Guest()
        let readOnly = MemoryStore(sectors: 16, readOnly: true)
        #expect(g.refusal(blockRequest(BlockRequests.write, segments: [Segment(ref: 3)]), on: readOnly) == .readOnlyDisk)
        #expect(g.refusal(blockRequest(BlockRequests.flush, segments: [Segment(ref: 3)]), on: readOnly) == .readOnlyDisk)
        #expect(readOnly.writes == 0)
        let store = MemoryStore(sectors: 16)
        #expect(g.refusal(blockRequest(BlockRequests.read, sector: 9, segments: [Segment(ref: 3)]), on: store) == .beyondDisk(sector: 9))
        #expect(g.refusal(blockRequest(BlockRequests.read, sector: UInt64.max / 256, segments: [Segment(ref: 3)]), on: store)
                == .beyondDisk(sector: UInt64.max / 256))
        #expect(g.succeeds(blockRequest(BlockRequests.read, sector: 8, segments: [Segment(ref: 3)]), on: store))
        #expect(store.reads == 1)
    }

    @Test("an operation that was not offered gets BLKIF_RSP_EOPNOTSUPP")
    func unsupportedOperation() {
        let g = Guest()
        var counters = BlockCounters()
        for op: UInt8 in [2, 4, 7, 200] {       // 6 is BLKIF_OP_INDIRECT, offered (BlockIndirectTests)
            #expect(BlockRequests.perform(blockRequest(op), grants: g.domain, store: MemoryStore(), counters: &counters) == BlockRequests.notSupported)
        }
        #expect(counters.failedRequests == 0)
    }

    @Test("a good read lands in the granted sectors only, and every grant is idle afterwards")
    func goodRead() {
        let g = Guest()
        let store = MemoryStore()
        let r = blockRequest(BlockRequests.read, sector: 2, segments: [Segment(ref: 3, first: 1, last: 2), Segment(ref: 4, first: 7, last: 7)])
        #expect(g.succeeds(r, on: store))
        #expect(g.byte(3, 511) == 0 && g.byte(3, 512) == 3 && g.byte(3, 1535) == 4 && g.byte(3, 1536) == 0)
        #expect(g.byte(4, 3583) == 0 && g.byte(4, 3584) == 5 && g.byte(4, 4095) == 5)
        #expect(g.idle(3) && g.idle(4))
        #expect(g.counters.readRequests == 1 && g.counters.bytesRead == 1536)
    }
}

/// The same for netif's two rings.
@Suite struct NetRefusalTests {
    @Test("req_prod more than 256 ahead on either ring is corruption")
    func ringIndexOverflow() {
        let g = Guest()
        g.setIndex(1, 0, NetRings.entries + 1)
        let tx = g.serveTransmit()
        #expect(tx.corruption == RingCorruption(ring: .transmit, produced: 257, consumed: 0))
        #expect(tx.sent.isEmpty)
        g.setIndex(2, 0, 1000)
        #expect(g.serveReceive([60]) == RingCorruption(ring: .receive, produced: 1000, consumed: 0))
    }

    @Test("a packet of more than 18 slots, or one whose slots run past req_prod, is corruption")
    func packetFraming() {
        let g = Guest()
        for i in 0..<UInt32(19) { g.postTransmit(at: i, ref: 3, flags: NetRings.moreData, id: UInt16(i), size: 10) }
        g.setIndex(1, 0, 19)
        #expect(g.serveTransmit().corruption?.ring == .transmit)
        let h = Guest()
        h.postTransmit(at: 0, ref: 3, flags: NetRings.moreData, id: 1, size: 100)
        h.setIndex(1, 0, 1)
        #expect(h.serveTransmit().corruption == RingCorruption(ring: .transmit, produced: 1, consumed: 1))
    }

    @Test("a fragment past its page, a bad grant or a size below the fragments' drops the packet with NETIF_RSP_ERROR")
    func badPackets() {
        let g = Guest()
        g.postTransmit(at: 0, ref: 3, offset: 4000, id: 1, size: 100)            // past the page
        g.postTransmit(at: 1, ref: 600, id: 2, size: 60)                         // no such grant
        g.postTransmit(at: 2, ref: 3, flags: NetRings.moreData, id: 3, size: 10) // first slot smaller than the next
        g.postTransmit(at: 3, ref: 4, id: 4, size: 20)
        g.postTransmit(at: 4, ref: Guest.readOnly(5), id: 5, size: 60)          // fine: a read-only grant is enough
        g.setIndex(1, 0, 5)
        let (corruption, sent) = g.serveTransmit()
        #expect(corruption == nil)
        #expect(sent.count == 1 && sent[0].count == 60)
        #expect((0..<5).map { g.transmitResponse($0).status } == [-1, -1, -1, -1, 0])
        #expect((0..<5).map { g.transmitResponse($0).id } == [1, 2, 3, 4, 5])
        #expect(g.idle(3) && g.idle(4) && g.idle(Guest.readOnly(5)))
    }

    @Test("a received frame larger than a page, or a buffer on a read-only grant, is answered with an error")
    func badReceives() {
        let g = Guest()
        g.postReceive(at: 0, id: 10, ref: 3)
        g.postReceive(at: 1, id: 11, ref: Guest.readOnly(4))
        g.postReceive(at: 2, id: 12, ref: 5)
        g.setIndex(2, 0, 3)
        #expect(g.serveReceive([5000, 60, 4096]) == nil)
        #expect(g.receiveResponse(0) == (10, -1) && g.receiveResponse(1) == (11, -1) && g.receiveResponse(2) == (12, 4096))
        #expect(g.byte(3, 0) == 0 && g.byte(4, 0) == 0 && g.byte(5, 4095) == 0xAB)
        #expect(g.idle(3) && g.idle(Guest.readOnly(4)) && g.idle(5))
    }
}

/// The grant entries themselves: the in-use flags the guest sees.
@Suite struct GrantEntryTests {
    @Test("GTF_writing goes with the last writable claim, GTF_reading with the last claim")
    func pins() {
        let g = Guest()
        #expect(g.domain.claimGrant(6, writable: true) != nil)
        #expect(g.domain.claimGrant(6, writable: false) != nil)
        #expect(g.inUse(6) && g.domain.entries.pinCount(6) == (2, 1))
        g.domain.releaseGrant(6, writable: true)
        #expect(g.inUse(6, writing: false) && g.domain.flags(6) & GrantEntries.writing == 0)
        g.domain.releaseGrant(6, writable: false)
        #expect(g.idle(6) && g.domain.entries.pinCount(6) == (0, 0))
        g.domain.releaseGrant(6, writable: false)      // a release without a claim changes nothing
        #expect(g.domain.entries.pinCount(6) == (0, 0))
    }

    @Test("refusals say why")
    func descriptions() {
        #expect(GrantRefusal.readOnly(ref: 4).description == "grant 4 is read-only but the backend must write")
        #expect(BlockRefusal.grant(segment: 2, .otherDomain(ref: 9, domid: 3)).description
                == "segment 2: grant 9 is for domain 3, not the backend's")
        #expect(BlockRefusal.sectorsOutsidePage(segment: 0, first: 5, last: 4).description
                == "segment 0: sectors 5 to 4 are not within one page")
    }
}
