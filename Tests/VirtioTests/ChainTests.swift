import Testing
@testable import Virtio

@Suite struct ChainTests {
    @Test func popsASingleReadableBuffer() throws {
        let d = try TestDriver()
        d.memory.write([1, 2, 3, 4], at: TestDriver.data)
        d.setDescriptor(3, address: TestDriver.data, length: 4)
        d.makeAvailable(3)
        let chain = try #require(d.queue.popAvailable().chain)
        #expect(chain.head == 3)
        #expect(chain.segments.count == 1)
        #expect(chain.readableCount == 1)
        #expect(chain.readableLength == 4)
        #expect(chain.writableLength == 0)
        #expect(chain.writable.isEmpty)
        let segment = chain.segments[0]
        #expect(segment.guestAddress == TestDriver.data)
        #expect(segment.pointer == d.memory.base + Int(TestDriver.data))
        #expect(!segment.isDeviceWritable)
        #expect(Array(segment.bytes) == [1, 2, 3, 4])
        #expect(d.queue.popAvailable().isEmpty)
    }

    @Test func popsReadableThenWritableBuffers() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: TestDriver.data, length: 16, flags: Flag.next, next: 5)
        d.setDescriptor(5, address: TestDriver.data + 0x100, length: 512, flags: Flag.next, next: 2)
        d.setDescriptor(2, address: TestDriver.data + 0x400, length: 1, flags: Flag.write)
        d.makeAvailable(0)
        let chain = try #require(d.queue.popAvailable().chain)
        #expect(chain.head == 0)
        #expect(chain.segments.map(\.guestAddress) == [TestDriver.data, TestDriver.data + 0x100, TestDriver.data + 0x400])
        #expect(chain.readable.map(\.length) == [16, 512])
        #expect(chain.writable.map(\.length) == [1])
        #expect(chain.writable.allSatisfy { $0.isDeviceWritable })
        #expect(!chain.readable.contains { $0.isDeviceWritable })
        #expect(chain.readableLength == 528)
        #expect(chain.writableLength == 1)

        chain.writable[0].bytes[0] = 0x5A
        #expect(d.memory.load(TestDriver.data + 0x400, as: UInt8.self) == 0x5A)
    }

    @Test func popsChainsInTheOrderMadeAvailable() throws {
        let d = try TestDriver()
        for i: UInt16 in 0..<4 {
            d.setDescriptor(i, address: TestDriver.data + UInt64(i) * 0x100, length: 8)
        }
        for head: UInt16 in [2, 0, 3, 1] { d.makeAvailable(head) }
        var heads: [UInt16] = []
        while let chain = d.queue.popAvailable().chain { heads.append(chain.head) }
        #expect(heads == [2, 0, 3, 1])
    }

    @Test func acceptsZeroLengthBuffers() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: TestDriver.data, length: 0, flags: Flag.write)
        d.makeAvailable(0)
        let chain = try #require(d.queue.popAvailable().chain)
        #expect(chain.writable.count == 1)
        #expect(chain.writableLength == 0)
    }

    @Test func acceptsABufferEndingAtTheEndOfMemory() throws {
        let d = try TestDriver(memorySize: 1 << 20)
        d.setDescriptor(0, address: (1 << 20) - 64, length: 64)
        d.makeAvailable(0)
        #expect(d.queue.popAvailable().chain?.readableLength == 64)
    }

    @Test func acceptsAChainAsLongAsTheQueue() throws {
        let d = try TestDriver(size: 16)
        for i: UInt16 in 0..<16 {
            d.setDescriptor(i, address: TestDriver.data, length: 1, flags: i < 15 ? Flag.next : 0, next: i + 1)
        }
        d.makeAvailable(0)
        #expect(d.queue.popAvailable().chain?.segments.count == 16)
    }

    @Test func aChainIsAccurateEvenIfTheGuestRewritesDescriptorsLater() throws {
        let d = try TestDriver()
        d.setDescriptor(0, address: TestDriver.data, length: 32)
        d.makeAvailable(0)
        let chain = try #require(d.queue.popAvailable().chain)
        // The guest moves the buffer out of memory after the pop: the chain
        // handed out keeps the validated copy.
        d.setDescriptor(0, address: UInt64.max - 4, length: 0xFFFF_FFFF)
        #expect(chain.segments[0].guestAddress == TestDriver.data)
        #expect(chain.segments[0].length == 32)
    }
}
