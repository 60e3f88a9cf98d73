import Testing
@testable import Virtio

@Suite struct RingTests {
    @Test func pushUsedWritesTheElementThenTheIndex() throws {
        let d = try TestDriver()
        d.setDescriptor(5, address: TestDriver.data, length: 64, flags: Flag.write)
        d.makeAvailable(5)
        let chain = try #require(d.queue.popAvailable().chain)
        try d.queue.pushUsed(id: chain.head, length: 17)
        #expect(d.usedIndex == 1)
        #expect(d.usedElement(atSlot: 0) == (5, 17))
    }

    @Test func addUsedWaitsForPublish() throws {
        let d = try TestDriver()
        try d.queue.addUsed(id: 1, length: 10)
        try d.queue.addUsed(id: 2, length: 20)
        #expect(d.usedIndex == 0)
        #expect(d.usedElement(atSlot: 1) == (2, 20))
        d.queue.publishUsed()
        #expect(d.usedIndex == 2)
    }

    @Test func refusesAUsedIDBeyondTheQueue() throws {
        let d = try TestDriver(size: 8)
        #expect(throws: VirtqueueError.usedIDOutOfRange(id: 8, size: 8)) { try d.queue.pushUsed(id: 8, length: 0) }
        #expect(d.usedIndex == 0)
    }

    @Test func acceptsAnAvailIndexExactlyAQueueAhead() throws {
        let d = try TestDriver(size: 4)
        for i: UInt16 in 0..<4 { d.setDescriptor(i, address: TestDriver.data, length: 1) }
        for i: UInt16 in 0..<4 { d.makeAvailable(i) }
        var count = 0
        while d.queue.popAvailable().chain != nil { count += 1 }
        #expect(count == 4)
        #expect(!d.queue.needsReset)
    }

    @Test func anAvailIndexRunningAheadNeedsAReset() throws {
        let d = try TestDriver(size: 4)
        d.setDescriptor(0, address: TestDriver.data, length: 1)
        d.setAvailIndex(5)
        let expected = VirtqueueError.availIndexRanAhead(availIndex: 5, lastSeen: 0, size: 4)
        #expect(d.queue.popAvailable().failure == expected)
        #expect(d.queue.needsReset)
        #expect(!d.queue.isReady)
        #expect(d.queue.fault == expected)
        // It stays failed even once the index looks sane again.
        d.setAvailIndex(1)
        #expect(d.queue.popAvailable().failure == expected)
        #expect(throws: expected) { try d.queue.pushUsed(id: 0, length: 0) }
        #expect(!d.queue.needsNotification())
        // Re-enabling (after the driver's reset) starts afresh.
        d.setAvailIndex(0)
        try d.queue.enable()
        #expect(!d.queue.needsReset)
        d.makeAvailable(0)
        #expect(d.queue.popAvailable().chain?.head == 0)
    }

    @Test func anAvailIndexMovingBackwardsNeedsAReset() throws {
        let d = try TestDriver(size: 8)
        d.setDescriptor(0, address: TestDriver.data, length: 1)
        d.makeAvailable(0)
        d.makeAvailable(0)
        #expect(d.queue.popAvailable().chain != nil)
        #expect(d.queue.popAvailable().chain != nil)
        d.setAvailIndex(1)
        #expect(d.queue.popAvailable().failure == .availIndexRanAhead(availIndex: 1, lastSeen: 2, size: 8))
    }

    @Test func aHeadBeyondTheTableNeedsAReset() throws {
        let d = try TestDriver(size: 8)
        d.makeAvailable(8)
        #expect(d.queue.popAvailable().failure == .headOutOfRange(head: 8, size: 8))
        #expect(d.queue.needsReset)
    }

    @Test func indicesWrapAroundSixteenBits() throws {
        // Past 65535 every index wraps: the available and used rings must keep
        // finding the right slots and the run-ahead check must not misfire.
        let d = try TestDriver(size: 4, features: [.eventIndex])
        for i: UInt16 in 0..<4 {
            d.setDescriptor(i, address: TestDriver.data + UInt64(i) * 16, length: 16, flags: Flag.write)
        }
        var completed = 0
        for round in 0..<(70_000 / 3) {
            // Three per round, so slots and wrap points fall differently each time.
            for k in 0..<3 { d.makeAvailable(UInt16((round + k) % 4)) }
            for k in 0..<3 {
                let chain = try #require(d.queue.popAvailable().chain)
                #expect(chain.head == UInt16((round + k) % 4))
                try d.queue.pushUsed(id: chain.head, length: UInt32(k))
                completed += 1
            }
            #expect(d.queue.popAvailable().isEmpty)
            #expect(d.usedIndex == UInt16(truncatingIfNeeded: completed))
            #expect(d.availEvent == UInt16(truncatingIfNeeded: completed))
        }
        #expect(completed > 65536)
        #expect(!d.queue.needsReset)
        let last = d.usedElement(atSlot: UInt16(truncatingIfNeeded: completed - 1) & 3)
        #expect(last.length == 2)
    }
}
