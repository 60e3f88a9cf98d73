import Testing
@testable import Virtio

/// Each malformed chain fails that request only: it is consumed, refused with
/// a reason, and the next chain still works.
@Suite struct RefusalTests {
    /// Makes `head` available, pops it expecting a refusal, then checks the
    /// queue still serves a good chain at descriptor `good`.
    private func refusal(_ d: TestDriver, head: UInt16 = 0, good: UInt16 = 7) -> VirtqueueError? {
        d.makeAvailable(head)
        let result = d.queue.popAvailable()
        #expect(result.refusedHead == head)
        d.setDescriptor(good, address: TestDriver.data, length: 8)
        d.makeAvailable(good)
        #expect(d.queue.popAvailable().chain?.head == good)
        #expect(d.queue.isReady)
        return result.refusal
    }

    @Test func refusesABufferBeyondMemory() throws {
        let d = try TestDriver(memorySize: 1 << 20)
        d.setDescriptor(0, address: 1 << 20, length: 1)
        #expect(refusal(d) == .bufferOutsideGuestMemory(
            DescriptorPosition(head: 0, index: 0), address: 1 << 20, length: 1))
    }

    @Test func refusesABufferRunningOffTheEndOfMemory() throws {
        let d = try TestDriver(memorySize: 1 << 20)
        d.setDescriptor(0, address: TestDriver.data, length: 8, flags: Flag.next, next: 1)
        d.setDescriptor(1, address: (1 << 20) - 8, length: 9, flags: Flag.write)
        #expect(refusal(d) == .bufferOutsideGuestMemory(
            DescriptorPosition(head: 0, index: 1), address: (1 << 20) - 8, length: 9))
    }

    @Test func refusesABufferWhoseEndOverflows() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: UInt64.max - 1, length: 4)
        #expect(refusal(d) == .bufferOutsideGuestMemory(
            DescriptorPosition(head: 0, index: 0), address: UInt64.max - 1, length: 4))
    }

    @Test func refusesNextBeyondTheTable() throws {
        let d = try TestDriver(size: 8)
        d.setDescriptor(0, address: TestDriver.data, length: 8, flags: Flag.next, next: 8)
        #expect(refusal(d) == .nextOutOfRange(DescriptorPosition(head: 0, index: 0), next: 8, tableSize: 8))
    }

    @Test func refusesADescriptorChainedToItself() throws {
        let d = try TestDriver(size: 8)
        d.setDescriptor(0, address: TestDriver.data, length: 8, flags: Flag.next, next: 0)
        #expect(refusal(d) == .descriptorLoop(head: 0, tableSize: 8))
    }

    @Test func refusesALongerLoop() throws {
        let d = try TestDriver(size: 8)
        d.setDescriptor(1, address: TestDriver.data, length: 8, flags: Flag.next, next: 2)
        d.setDescriptor(2, address: TestDriver.data, length: 8, flags: Flag.next, next: 3)
        d.setDescriptor(3, address: TestDriver.data, length: 8, flags: Flag.next, next: 2)
        #expect(refusal(d, head: 1) == .descriptorLoop(head: 1, tableSize: 8))
    }

    @Test func refusesMoreBuffersThanTheLimit() throws {
        let d = try TestDriver(limits: VirtqueueLimits(maxSegments: 2))
        d.setDescriptor(0, address: TestDriver.data, length: 8, flags: Flag.next, next: 1)
        d.setDescriptor(1, address: TestDriver.data, length: 8, flags: Flag.next, next: 2)
        d.setDescriptor(2, address: TestDriver.data, length: 8)
        #expect(refusal(d) == .tooManySegments(head: 0, limit: 2))
    }

    @Test func refusesMoreBytesThanTheLimit() throws {
        let d = try TestDriver(limits: VirtqueueLimits(maxChainBytes: 100))
        d.setDescriptor(0, address: TestDriver.data, length: 60, flags: Flag.next, next: 1)
        d.setDescriptor(1, address: TestDriver.data, length: 41, flags: Flag.write)
        #expect(refusal(d) == .chainTooLarge(head: 0, limit: 100))
    }

    @Test func acceptsExactlyTheByteLimit() throws {
        let d = try TestDriver(limits: VirtqueueLimits(maxChainBytes: 100))
        d.setDescriptor(0, address: TestDriver.data, length: 60, flags: Flag.next, next: 1)
        d.setDescriptor(1, address: TestDriver.data, length: 40, flags: Flag.write)
        d.makeAvailable(0)
        #expect(d.queue.popAvailable().chain?.writableLength == 40)
    }

    @Test func refusesChainsOf4GiBByDefault() throws {
        let d = try TestDriver()
        // The size check comes before the memory check, so the 4 GiB need not exist.
        d.setDescriptor(0, address: TestDriver.data, length: 1, flags: Flag.next, next: 1)
        d.setDescriptor(1, address: TestDriver.data, length: 0xFFFF_FFFF, flags: Flag.write)
        #expect(refusal(d) == .chainTooLarge(head: 0, limit: 0xFFFF_FFFF))
    }

    @Test func refusesAReadableBufferAfterAWritableOne() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: TestDriver.data, length: 8, flags: Flag.next, next: 1)
        d.setDescriptor(1, address: TestDriver.data, length: 8, flags: Flag.write | Flag.next, next: 2)
        d.setDescriptor(2, address: TestDriver.data, length: 8)
        #expect(refusal(d) == .readableAfterWritable(DescriptorPosition(head: 0, index: 2)))
    }

    @Test func aRefusedChainCanBeCompleted() throws {
        let d = try TestDriver()
        d.setDescriptor(4, address: UInt64.max, length: 1)
        d.makeAvailable(4)
        let result = d.queue.popAvailable()
        let head = try #require(result.refusedHead)
        try d.queue.pushUsed(id: head, length: 0)
        #expect(d.usedIndex == 1)
        #expect(d.usedElement(atSlot: 0) == (4, 0))
    }
}
