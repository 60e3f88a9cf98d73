import Testing
@testable import XenStore

@Suite struct RingTests {
    func setup(domain: Int = 5) -> (XenStoreTree, XenStoreConnection, GuestSide) {
        let tree = XenStoreTree()
        tree.populateDomain(id: 5, name: "guest", vcpus: 2, memoryKiB: 262_144)
        return (tree, XenStoreConnection(tree: tree, domainID: domain), GuestSide())
    }

    @Test func initializeSetsTheInterface() {
        let g = GuestSide()
        g.page.storeBytes(of: 0xdead_beef as UInt32, toByteOffset: 2064, as: UInt32.self)
        g.page.storeBytes(of: 7 as UInt32, toByteOffset: 2068, as: UInt32.self)
        XenStoreRing.initialize(page: g.page)
        #expect(g.u32(2064) == 0)  // server_features
        #expect(g.u32(2068) == XenStoreRing.connected)
        #expect(g.errorField == XenStoreRing.errorNone)
        #expect(g.reqCons == 0 && g.reqProd == 0 && g.rspCons == 0 && g.rspProd == 0)
    }

    @Test func requestAndReply() {
        let (_, conn, g) = setup()
        var ring = XenStoreRing(page: g.page)
        #expect(!serviced(&ring, conn))  // nothing to do
        g.send(XenStoreMessage(type: .read, reqID: 42, strings: ["name"]).encoded())
        #expect(serviced(&ring, conn))
        #expect(g.reqCons == g.reqProd)
        let replies = messages(in: g.receive())
        #expect(replies == [XenStoreMessage(type: .read, reqID: 42, payload: bytes("guest"))])
        #expect(!serviced(&ring, conn))
    }

    @Test(arguments: [UInt32(1000), 1017, 0xffff_fff0, 0xffff_fffc] as [UInt32])
    func messagesAcrossTheWrapPoint(start: UInt32) {
        let (_, conn, g) = setup()
        g.reqCons = start; g.reqProd = start
        g.rspCons = start &+ 5; g.rspProd = start &+ 5
        var ring = XenStoreRing(page: g.page)
        var expected: [XenStoreMessage] = []
        for i in 0..<40 {
            let value = String(repeating: "v", count: i * 7)
            var p = bytes("data/k\(i)") + [0]
            p.append(contentsOf: value.utf8)
            #expect(g.send(XenStoreMessage(type: .write, reqID: UInt32(i), payload: p).encoded()) == 16 + p.count)
            #expect(g.send(XenStoreMessage(type: .read, reqID: UInt32(1000 + i), strings: ["data/k\(i)"]).encoded()) > 0)
            #expect(serviced(&ring, conn))
            expected.append(XenStoreMessage(type: .write, reqID: UInt32(i), payload: bytes("OK") + [0]))
            expected.append(XenStoreMessage(type: .read, reqID: UInt32(1000 + i), payload: bytes(value)))
            #expect(messages(in: g.receive()) == Array(expected.suffix(2)))
        }
        #expect(ring.failure == nil)
    }

    /// Every byte is taken as it arrives, even part of a header (Linux only
    /// notifies a drained ring, and splits a message at the ring's end), and
    /// the request is handled only when complete.
    @Test func partialRequestsAreTakenAsTheyArrive() {
        let (_, conn, g) = setup()
        var ring = XenStoreRing(page: g.page)
        let wire = XenStoreMessage(type: .read, reqID: 1, strings: ["memory/target"]).encoded()
        // Part of the header.
        g.send(wire[0..<10])
        #expect(serviced(&ring, conn))
        #expect(g.reqCons == 10)
        #expect(g.rspProd == 0)
        // The whole header, no payload: taken, nothing answered yet.
        g.send(wire[10..<16])
        #expect(serviced(&ring, conn))
        #expect(g.reqCons == 16)
        #expect(g.rspProd == 0)
        // Part of the payload.
        g.send(wire[16..<20])
        #expect(serviced(&ring, conn))
        #expect(g.reqCons == 20)
        #expect(g.rspProd == 0)
        // The rest.
        g.send(wire[20...])
        #expect(serviced(&ring, conn))
        #expect(g.reqCons == UInt32(wire.count))
        #expect(messages(in: g.receive()) == [XenStoreMessage(type: .read, reqID: 1, payload: bytes("262144"))])
    }

    /// Linux writes a message that straddles the ring's end in two pieces and
    /// notifies only for the first (the ring was drained before it). Seen with
    /// a 12-vCPU boot whose 65th request began 9 bytes before the end: every
    /// notification must leave the ring drained, or the guest waits forever.
    @Test func headerSplitAtTheRingEndLeavesTheRingDrained() {
        let (_, conn, g) = setup()
        g.reqCons = 1015; g.reqProd = 1015
        var ring = XenStoreRing(page: g.page)
        let wire = XenStoreMessage(type: .read, reqID: 7, strings: ["memory/target"]).encoded()
        g.send(wire[0..<9])  // up to the end of the ring; the guest notifies
        #expect(serviced(&ring, conn))
        #expect(g.reqCons == g.reqProd)
        g.send(wire[9...])  // wraps; no notification in Linux, served on the next pass
        #expect(serviced(&ring, conn))
        #expect(messages(in: g.receive()) == [XenStoreMessage(type: .read, reqID: 7, payload: bytes("262144"))])
    }

    @Test func requestLargerThanTheRingArrivesInPieces() throws {
        let (tree, _, g) = setup()
        let dom0 = XenStoreConnection(tree: tree, domainID: 0)
        var ring = XenStoreRing(page: g.page)
        let value = (0..<3000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let wire = XenStoreMessage(type: .write, reqID: 9, payload: bytes("/big") + [0] + value).encoded()
        var sent = 0
        var rounds = 0
        while sent < wire.count {
            sent += g.send(wire[sent...])
            _ = ring.service(connection: dom0)
            rounds += 1
        }
        #expect(rounds >= 3)  // 3035 bytes through a 1024-byte ring
        #expect(messages(in: g.receive()) == [XenStoreMessage(type: .write, reqID: 9, payload: bytes("OK") + [0])])
        #expect(try tree.read("/big") == value)
    }

    @Test func replyLargerThanFreeSpaceIsWrittenInPieces() throws {
        let (tree, _, g) = setup()
        let dom0 = XenStoreConnection(tree: tree, domainID: 0)
        let value = (0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        try tree.write("/large", value)
        // Start with the response ring nearly full (1000 of 1024 bytes unread).
        g.rspCons = 0xffff_fe00
        g.rspProd = 0xffff_fe00 &+ 1000
        g.reqCons = 0xffff_fe00
        g.reqProd = 0xffff_fe00
        var ring = XenStoreRing(page: g.page)
        g.send(XenStoreMessage(type: .read, reqID: 3, strings: ["/large"]).encoded())
        #expect(serviced(&ring, dom0))
        #expect(g.rspProd &- g.rspCons == 1024)  // filled what was free
        var stream = g.receive()
        stream.removeFirst(1000)  // the old unread bytes
        var rounds = 0
        while dom0.hasOutput || g.rspProd != g.rspCons {
            // The guest reads a little at a time.
            stream.append(contentsOf: g.receive(max: 300))
            _ = ring.service(connection: dom0)
            rounds += 1
            if rounds > 100 { break }
        }
        stream.append(contentsOf: g.receive())
        #expect(rounds > 10)
        #expect(messages(in: stream) == [XenStoreMessage(type: .read, reqID: 3, payload: value)])
    }

    @Test func corruptRequestIndexIsRefused() {
        let (_, conn, g) = setup()
        var ring = XenStoreRing(page: g.page)
        g.reqProd = 2000  // claims 2000 bytes in a 1024-byte ring
        #expect(serviced(&ring, conn))  // the error was recorded: notify
        #expect(ring.failure == .ringIndex(producer: 2000, consumer: 0))
        #expect(g.errorField == XenStoreRing.errorRingIndex)
        #expect(g.reqCons == 0)
        #expect(!serviced(&ring, conn))
        // Going back to sane values does not revive it.
        g.reqProd = 0
        #expect(!serviced(&ring, conn))
        // A producer behind the consumer is the same thing (wraps to a huge count).
        let g2 = GuestSide()
        g2.reqCons = 100
        g2.reqProd = 50
        var ring2 = XenStoreRing(page: g2.page)
        #expect(serviced(&ring2, conn))
        #expect(ring2.failure != nil)
    }

    @Test func corruptResponseIndexIsRefused() {
        let (_, conn, g) = setup()
        var ring = XenStoreRing(page: g.page)
        g.rspCons = 5000  // consumer ahead of our producer
        g.send(XenStoreMessage(type: .read, reqID: 1, strings: ["name"]).encoded())
        #expect(serviced(&ring, conn))
        #expect(ring.failure == .ringIndex(producer: 0, consumer: 5000))
        #expect(g.errorField == XenStoreRing.errorRingIndex)
    }

    @Test func oversizedRequestIsAProtocolError() {
        let (_, conn, g) = setup()
        var ring = XenStoreRing(page: g.page)
        var wire = XenStoreMessage(type: .write, reqID: 1, payload: []).encoded()
        wire[12] = 0x01; wire[13] = 0x10  // len 4097
        g.send(wire)
        #expect(serviced(&ring, conn))
        #expect(ring.failure == .payloadTooLarge(length: 4097))
        #expect(g.errorField == XenStoreRing.errorProtocol)
        #expect(!conn.hasOutput)
    }

    @Test func guestScribblingOnServerIndicesConfusesOnlyItself() {
        let (_, conn, g) = setup()
        var ring = XenStoreRing(page: g.page)
        let req = XenStoreMessage(type: .read, reqID: 1, strings: ["name"]).encoded()
        g.send(req)
        _ = ring.service(connection: conn)
        let reply = g.receive()
        let prod = g.reqProd
        // The guest overwrites the two indices that are ours.
        g.set(2048, 12345)  // req_cons
        g.set(2060, 999)  // rsp_prod
        #expect(!serviced(&ring, conn))
        #expect(ring.failure == nil)
        // It goes on producing at its own req_prod; the ring uses its own copies
        // and puts the right values back.
        g.sendRaw(req)
        #expect(serviced(&ring, conn))
        #expect(ring.failure == nil)
        #expect(g.reqCons == prod &+ UInt32(req.count))
        #expect(g.rspProd == UInt32(2 * reply.count))
        #expect(g.receive() == reply)
    }

    @Test func backpressureWhenTheGuestDoesNotRead() {
        let (tree, _, g) = setup()
        let dom0 = XenStoreConnection(tree: tree, domainID: 0)
        try? tree.write("/v", [UInt8](repeating: 0x61, count: 4000))
        var ring = XenStoreRing(page: g.page)
        let req = XenStoreMessage(type: .read, strings: ["/v"]).encoded()
        var sentMessages = 0
        for _ in 0..<200 {
            // Like Linux, the guest writes a message only while it has room (here: whole).
            guard 1024 - Int(g.reqProd &- g.reqCons) >= req.count else { break }
            g.send(req)
            sentMessages += 1
            _ = ring.service(connection: dom0)
        }
        // The guest never reads rsp: the ring stops taking requests once
        // about 64 KiB of replies wait.
        #expect(dom0.pendingOutputBytes >= XenStoreRing.outputHighWater)
        #expect(dom0.pendingOutputBytes < XenStoreRing.outputHighWater + 5000)
        #expect(g.reqProd != g.reqCons)
        #expect(ring.failure == nil)
        // Reading resumes the flow.
        for _ in 0..<2000 {
            _ = g.receive()
            _ = ring.service(connection: dom0)
            if g.reqProd == g.reqCons && !dom0.hasOutput && g.rspProd == g.rspCons { break }
        }
        #expect(g.reqProd == g.reqCons)
        #expect(!dom0.hasOutput)
        #expect(sentMessages > 16)
    }
}
