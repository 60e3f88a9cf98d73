import Testing
@testable import Virtio

@Suite struct IndirectTests {
    static let table = TestDriver.data + 0x8000

    @Test func followsAnIndirectTable() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: TestDriver.data, length: 16, flags: Flag.next, next: 1, table: Self.table)
        d.setDescriptor(1, address: TestDriver.data + 0x100, length: 100, flags: Flag.next, next: 2, table: Self.table)
        d.setDescriptor(2, address: TestDriver.data + 0x200, length: 1, flags: Flag.write, table: Self.table)
        d.setDescriptor(6, address: Self.table, length: 48, flags: Flag.indirect)
        d.makeAvailable(6)
        let chain = try #require(d.queue.popAvailable().chain)
        #expect(chain.head == 6)
        #expect(chain.segments.map(\.guestAddress) == [TestDriver.data, TestDriver.data + 0x100, TestDriver.data + 0x200])
        #expect(chain.readableCount == 2)
        #expect(chain.readableLength == 116)
        #expect(chain.writableLength == 1)
    }

    @Test func followsAnIndirectTableAfterDirectDescriptors() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: TestDriver.data, length: 4, table: Self.table)
        d.setDescriptor(3, address: TestDriver.data + 0x40, length: 8, flags: Flag.next, next: 4)
        d.setDescriptor(4, address: Self.table, length: 16, flags: Flag.indirect)
        d.makeAvailable(3)
        let chain = try #require(d.queue.popAvailable().chain)
        #expect(chain.segments.map(\.length) == [8, 4])
    }

    @Test func ignoresTheWriteFlagOnTheTableDescriptor() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: TestDriver.data, length: 4, table: Self.table)
        d.setDescriptor(1, address: Self.table, length: 16, flags: Flag.indirect | Flag.write)
        d.makeAvailable(1)
        let chain = try #require(d.queue.popAvailable().chain)
        #expect(chain.readableCount == 1)
    }

    @Test func anIndirectTableMayHoldMoreEntriesThanTheQueue() throws {
        let d = try TestDriver(size: 4)
        for i: UInt16 in 0..<32 {
            d.setDescriptor(i, address: TestDriver.data, length: 1, flags: i < 31 ? Flag.next : 0, next: i + 1, table: Self.table)
        }
        d.setDescriptor(0, address: Self.table, length: 32 * 16, flags: Flag.indirect)
        d.makeAvailable(0)
        #expect(d.queue.popAvailable().chain?.segments.count == 32)
    }

    private func refusal(_ d: TestDriver, head: UInt16) -> VirtqueueError? {
        d.makeAvailable(head)
        let result = d.queue.popAvailable()
        #expect(result.refusedHead == head)
        #expect(d.queue.isReady)
        return result.refusal
    }

    @Test func refusesIndirectWithoutTheFeature() throws {
        let d = try TestDriver(features: [])
        d.setDescriptor(0, address: TestDriver.data, length: 4, table: Self.table)
        d.setDescriptor(2, address: Self.table, length: 16, flags: Flag.indirect)
        #expect(refusal(d, head: 2) == .indirectNotNegotiated(DescriptorPosition(head: 2, index: 2)))
    }

    @Test func refusesANestedIndirectTable() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: TestDriver.data, length: 4, flags: Flag.next, next: 1, table: Self.table)
        d.setDescriptor(1, address: Self.table, length: 32, flags: Flag.indirect, table: Self.table)
        d.setDescriptor(5, address: Self.table, length: 32, flags: Flag.indirect)
        #expect(refusal(d, head: 5) == .nestedIndirect(DescriptorPosition(head: 5, index: 1, indirectTable: 5)))
    }

    @Test func refusesIndirectTogetherWithNext() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: TestDriver.data, length: 4, table: Self.table)
        d.setDescriptor(1, address: Self.table, length: 16, flags: Flag.indirect | Flag.next, next: 2)
        d.setDescriptor(2, address: TestDriver.data, length: 4)
        #expect(refusal(d, head: 1) == .indirectWithNext(DescriptorPosition(head: 1, index: 1)))
    }

    @Test(arguments: [0, 8, 17, 40] as [UInt32])
    func refusesTableLengthsThatAreNotMultiplesOf16(length: UInt32) throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: Self.table, length: length, flags: Flag.indirect)
        #expect(refusal(d, head: 0) == .indirectTableLength(DescriptorPosition(head: 0, index: 0), length: length))
    }

    @Test func refusesATableOutsideMemory() throws {
        let d = try TestDriver(memorySize: 1 << 20)
        d.setDescriptor(0, address: (1 << 20) - 16, length: 32, flags: Flag.indirect)
        #expect(refusal(d, head: 0) == .indirectTableOutsideGuestMemory(
            DescriptorPosition(head: 0, index: 0), address: (1 << 20) - 16, length: 32))
    }

    @Test func refusesABufferOutsideMemoryInsideATable() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: TestDriver.data, length: 4, flags: Flag.next, next: 1, table: Self.table)
        d.setDescriptor(1, address: 1 << 40, length: 4, flags: Flag.write, table: Self.table)
        d.setDescriptor(3, address: Self.table, length: 32, flags: Flag.indirect)
        #expect(refusal(d, head: 3) == .bufferOutsideGuestMemory(
            DescriptorPosition(head: 3, index: 1, indirectTable: 3), address: 1 << 40, length: 4))
    }

    @Test func refusesNextBeyondTheIndirectTable() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: TestDriver.data, length: 4, flags: Flag.next, next: 2, table: Self.table)
        d.setDescriptor(0, address: Self.table, length: 32, flags: Flag.indirect)
        #expect(refusal(d, head: 0) == .nextOutOfRange(
            DescriptorPosition(head: 0, index: 0, indirectTable: 0), next: 2, tableSize: 2))
    }

    @Test func refusesALoopInsideAnIndirectTable() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: TestDriver.data, length: 4, flags: Flag.next, next: 1, table: Self.table)
        d.setDescriptor(1, address: TestDriver.data, length: 4, flags: Flag.next, next: 0, table: Self.table)
        d.setDescriptor(0, address: Self.table, length: 32, flags: Flag.indirect)
        #expect(refusal(d, head: 0) == .descriptorLoop(head: 0, tableSize: 2))
    }

    @Test func refusesAReadableTableEntryAfterAWritableDirectBuffer() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: TestDriver.data, length: 4, table: Self.table)
        d.setDescriptor(1, address: TestDriver.data, length: 4, flags: Flag.write | Flag.next, next: 2)
        d.setDescriptor(2, address: Self.table, length: 16, flags: Flag.indirect)
        #expect(refusal(d, head: 1) == .readableAfterWritable(DescriptorPosition(head: 1, index: 0, indirectTable: 2)))
    }
}
