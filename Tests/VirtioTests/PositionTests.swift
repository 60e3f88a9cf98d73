import Testing
@testable import Virtio

/// A queue's position read from one queue and resumed on another over the
/// same rings: the second carries on where the first stopped.
@Suite struct PositionTests {
    /// A second queue on `d`'s memory and rings, enabled as the first was.
    static func twin(of d: TestDriver, features: VirtqueueFeatures = [.indirectDescriptors]) throws -> Virtqueue<HeapGuestMemory> {
        let q = Virtqueue(memory: d.memory, maxSize: 256)
        q.configuration = d.queue.configuration
        try q.enable()
        return q
    }

    @Test func aResumedQueuePopsTheNextChainAndUsesTheNextSlot() throws {
        let d = try TestDriver()
        for i: UInt16 in 0..<3 {
            d.setDescriptor(i, address: TestDriver.data, length: 8, flags: Flag.write)
            d.makeAvailable(i)
        }
        for _ in 0..<2 {
            let chain = try #require(d.queue.popAvailable().chain)
            try d.queue.pushUsed(id: chain.head, length: 8)
        }
        #expect(d.queue.needsNotification())
        let position = try #require(d.queue.position)
        #expect(position.nextAvailIndex == 2 && position.usedIndex == 2 && position.publishedUsedIndex == 2)
        #expect(position.lastNotificationCheck == 2)

        let q = try Self.twin(of: d)
        try q.resume(at: position)
        #expect(q.position == position)
        let chain = try #require(q.popAvailable().chain)
        #expect(chain.head == 2)
        try q.pushUsed(id: chain.head, length: 8)
        #expect(d.usedIndex == 3)
        #expect(d.usedElement(atSlot: 2) == (2, 8))
        #expect(q.popAvailable().isEmpty)
    }

    @Test func refusesPositionsNoRingCanBeAt() throws {
        let d = try TestDriver(size: 8)
        let q = try Self.twin(of: d)
        let taken = VirtqueuePosition(nextAvailIndex: 9, usedIndex: 0, publishedUsedIndex: 0,
                                      lastNotificationCheck: nil, notificationsEnabled: true)
        #expect(throws: VirtqueueError.positionImpossible(taken, size: 8)) { try q.resume(at: taken) }
        let unpublished = VirtqueuePosition(nextAvailIndex: 20, usedIndex: 20, publishedUsedIndex: 3,
                                            lastNotificationCheck: 3, notificationsEnabled: true)
        #expect(throws: VirtqueueError.positionImpossible(unpublished, size: 8)) { try q.resume(at: unpublished) }
        // Wrapping indices are fine: 8 taken, none used, across 2^16.
        let wrapped = VirtqueuePosition(nextAvailIndex: 4, usedIndex: 65532, publishedUsedIndex: 65532,
                                        lastNotificationCheck: nil, notificationsEnabled: false)
        try q.resume(at: wrapped)
        #expect(q.position == wrapped)
        // A queue not enabled has no position and takes none.
        let idle = Virtqueue(memory: d.memory, maxSize: 8)
        #expect(idle.position == nil)
        #expect(throws: VirtqueueError.notReady) { try idle.resume(at: wrapped) }
    }
}
