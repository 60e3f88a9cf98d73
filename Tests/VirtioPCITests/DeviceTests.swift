import BlockStorage
import Foundation
import HostNetwork
import Synchronization
import Testing
import Virtio
@testable import VirtioPCI

/// A disk file of `sectors` sectors, sector n filled with byte n.
private func makeDisk(sectors: Int, readOnly: Bool = false) throws -> FlatFileDisk {
    let path = NSTemporaryDirectory() + "virtio-blk-\(getpid())-\(UUID().uuidString).img"
    var bytes = [UInt8](repeating: 0, count: sectors * 512)
    for i in 0..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: i / 512) }
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    defer { unlink(path) }     // the open descriptor keeps it alive
    return try FlatFileDisk(path: path, readOnly: readOnly)
}

/// Request header: type, reserved, sector.
private func header(_ d: FakeDriver, at address: UInt64, type: UInt32, sector: UInt64) {
    d.memory.store(type, at: address)
    d.memory.store(UInt32(0), at: address + 4)
    d.memory.store(sector, at: address + 8)
}

@Suite("virtio-blk")
struct BlockTests {
    static let h: UInt64 = FakeDriver.data, buf: UInt64 = FakeDriver.data + 0x1000, st: UInt64 = FakeDriver.data + 0x100

    @Test("configuration: capacity in sectors; features: flush, discard, write-zeroes; RO for read-only disks")
    func configuration() throws {
        let d = FakeDriver(device: VirtioBlock(disk: try makeDisk(sectors: 64)))
        #expect(d.config(0x00) == 0x1042_1af4)
        #expect(d.read(FakeDriver.deviceConfig, 8) == 64)
        let f = d.deviceFeatures()
        #expect(f & VirtioBlock.Feature.flush != 0 && f & VirtioBlock.Feature.discard != 0)
        #expect(f & VirtioBlock.Feature.readOnly == 0)
        let ro = FakeDriver(device: VirtioBlock(disk: try makeDisk(sectors: 8, readOnly: true)))
        #expect(ro.deviceFeatures() & VirtioBlock.Feature.readOnly != 0)
        #expect(ro.deviceFeatures() & VirtioBlock.Feature.discard == 0)
    }

    @Test("read, write, flush and GET_ID; a bad request fails alone with IOERR")
    func requests() throws {
        let disk = try makeDisk(sectors: 64)
        let d = FakeDriver(device: VirtioBlock(disk: disk))
        d.start(queues: 1)
        // Read sectors 3 and 4 into two buffers.
        header(d, at: Self.h, type: 0, sector: 3)
        d.memory.store(UInt8(0xff), at: Self.st)
        d.submit(0, [(Self.h, 16, false), (Self.buf, 512, true), (Self.buf + 512, 512, true), (Self.st, 1, true)])
        d.kick(0)
        #expect(d.used(0).last?.length == 1025)
        #expect(d.memory.load(Self.st, as: UInt8.self) == 0)
        #expect(d.memory.read(Self.buf, length: 1024) == [UInt8](repeating: 3, count: 512) + [UInt8](repeating: 4, count: 512))

        // A read past the end, then a header cut short: IOERR each; the next read still works.
        header(d, at: Self.h, type: 0, sector: 64)
        d.submit(0, [(Self.h, 16, false), (Self.buf, 512, true), (Self.st, 1, true)])
        d.kick(0)
        #expect(d.memory.load(Self.st, as: UInt8.self) == 1)
        d.submit(0, [(Self.h, 8, false), (Self.st, 1, true)])
        d.kick(0)
        #expect(d.memory.load(Self.st, as: UInt8.self) == 1)
        header(d, at: Self.h, type: 0, sector: 7)
        d.submit(0, [(Self.h, 16, false), (Self.buf, 512, true), (Self.st, 1, true)])
        d.kick(0)
        #expect(d.memory.load(Self.st, as: UInt8.self) == 0)
        #expect(d.memory.read(Self.buf, length: 4) == [7, 7, 7, 7])

        // Write sector 10, flush, read it back through the disk.
        header(d, at: Self.h, type: 1, sector: 10)
        d.memory.write([UInt8](repeating: 0xab, count: 512), at: Self.buf)
        d.submit(0, [(Self.h, 16, false), (Self.buf, 512, false), (Self.st, 1, true)])
        d.kick(0)
        #expect(d.memory.load(Self.st, as: UInt8.self) == 0)
        header(d, at: Self.h, type: 4, sector: 0)
        d.submit(0, [(Self.h, 16, false), (Self.st, 1, true)])
        d.kick(0)
        #expect(d.memory.load(Self.st, as: UInt8.self) == 0)
        var back = [UInt8](repeating: 0, count: 512)
        _ = back.withUnsafeMutableBytes { disk.read(into: $0, at: 10 * 512) }
        #expect(back == [UInt8](repeating: 0xab, count: 512))

        // GET_ID: the serial, NUL-padded to 20 bytes.
        header(d, at: Self.h, type: 8, sector: 0)
        d.submit(0, [(Self.h, 16, false), (Self.buf, 20, true), (Self.st, 1, true)])
        d.kick(0)
        let id = d.memory.read(Self.buf, length: 20)!
        #expect(String(decoding: id.prefix { $0 != 0 }, as: UTF8.self) == disk.serial)
        #expect(d.used(0).last?.length == 21)

        // An unknown type: UNSUPP. A write of half a sector: IOERR.
        header(d, at: Self.h, type: 99, sector: 0)
        d.submit(0, [(Self.h, 16, false), (Self.st, 1, true)])
        d.kick(0)
        #expect(d.memory.load(Self.st, as: UInt8.self) == 2)
        header(d, at: Self.h, type: 1, sector: 0)
        d.submit(0, [(Self.h, 16, false), (Self.buf, 256, false), (Self.st, 1, true)])
        d.kick(0)
        #expect(d.memory.load(Self.st, as: UInt8.self) == 1)
        #expect(d.status & 0x40 == 0)                              // the device carries on
    }

    @Test("discard and write-zeroes zero their range; a read-only disk refuses writes and discards")
    func discardAndReadOnly() throws {
        let disk = try makeDisk(sectors: 64)
        let d = FakeDriver(device: VirtioBlock(disk: disk))
        d.start(queues: 1)
        header(d, at: Self.h, type: 13, sector: 0)
        d.memory.store(UInt64(16), at: Self.h + 16)
        d.memory.store(UInt32(8), at: Self.h + 24)
        d.memory.store(UInt32(0), at: Self.h + 28)
        d.submit(0, [(Self.h, 32, false), (Self.st, 1, true)])
        d.kick(0)
        #expect(d.memory.load(Self.st, as: UInt8.self) == 0)
        var back = [UInt8](repeating: 1, count: 8 * 512)
        _ = back.withUnsafeMutableBytes { disk.read(into: $0, at: 16 * 512) }
        #expect(back.allSatisfy { $0 == 0 })

        let ro = FakeDriver(device: VirtioBlock(disk: try makeDisk(sectors: 8, readOnly: true)))
        ro.start(queues: 1)
        header(ro, at: Self.h, type: 1, sector: 0)
        ro.submit(0, [(Self.h, 16, false), (Self.buf, 512, false), (Self.st, 1, true)])
        ro.kick(0)
        #expect(ro.memory.load(Self.st, as: UInt8.self) == 1)
        header(ro, at: Self.h, type: 0, sector: 1)
        ro.submit(0, [(Self.h, 16, false), (Self.buf, 512, true), (Self.st, 1, true)])
        ro.kick(0)
        #expect(ro.memory.load(Self.st, as: UInt8.self) == 0)
    }

    @Test("a chain that points outside guest memory is refused alone: used length 0, the queue goes on")
    func refusedChain() throws {
        let d = FakeDriver(device: VirtioBlock(disk: try makeDisk(sectors: 8)))
        d.start(queues: 1)
        d.submit(0, [(Self.h, 16, false), (0xfff_0000, 512, true), (Self.st, 1, true)])
        header(d, at: Self.h, type: 0, sector: 2)
        d.submit(0, [(Self.h, 16, false), (Self.buf, 512, true), (Self.st, 1, true)])
        d.kick(0)
        #expect(d.used(0).map(\.length) == [0, 513])
        #expect(d.status & 0x40 == 0)
    }
}

/// Frames in memory instead of a TAP.
final class FakePort: FramePort, @unchecked Sendable {
    let inbound = Mutex<[[UInt8]]>([])
    let outbound = Mutex<[[UInt8]]>([])
    var fileDescriptor: Int32 { -1 }

    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        inbound.withLock { q -> Int? in
            guard !q.isEmpty else { return nil }
            let f = q.removeFirst()
            let n = min(f.count, buffer.count)
            for i in 0..<n { buffer[i] = f[i] }
            return n
        }
    }

    func send(_ frame: UnsafeRawBufferPointer) -> Bool {
        outbound.withLock { $0.append(Array(frame)) }
        return true
    }
}

@Suite("virtio-net")
struct NetTests {
    @Test("the MAC is in the configuration; transmit strips the 12-byte header; receive adds one")
    func frames() {
        let port = FakePort()
        let mac = MACAddress("00:16:3e:01:02:03")!
        let d = FakeDriver(device: VirtioNet(port: port, mac: mac))
        #expect(d.config(0x00) == 0x1041_1af4)
        #expect(d.read(FakeDriver.deviceConfig, 8) == 0x0302_013e_1600)
        #expect(d.deviceFeatures() & (1 << 5) != 0)
        d.start(queues: 2)

        // Transmit: header in one buffer, the frame split over two.
        let frame = (0..<60).map { UInt8($0) }
        d.memory.write(frame, at: FakeDriver.data + 0x100)
        d.submit(1, [(FakeDriver.data, 12, false), (FakeDriver.data + 0x100, 20, false), (FakeDriver.data + 0x114, 40, false)])
        d.kick(1)
        #expect(port.outbound.withLock { $0 } == [frame])
        #expect(d.used(1).map(\.length) == [0])

        // Receive: a too-small buffer drops that frame alone; the next one arrives whole.
        port.inbound.withLock { $0 = [[UInt8](repeating: 1, count: 1000), [UInt8](repeating: 2, count: 100)] }
        d.submit(0, [(FakeDriver.data + 0x1000, 200, true)])
        d.submit(0, [(FakeDriver.data + 0x2000, 1526, true)])
        d.kick(0)
        #expect(d.used(0).map(\.length) == [0, 112])
        let got = d.memory.read(FakeDriver.data + 0x2000, length: 112)!
        #expect(got.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0])     // num_buffers 1
        #expect(Array(got.dropFirst(12)) == [UInt8](repeating: 2, count: 100))
    }

    @Test("a frame that arrives before receive buffers waits for them")
    func frameWaitsForBuffers() {
        let port = FakePort()
        let d = FakeDriver(device: VirtioNet(port: port, mac: MACAddress("00:16:3e:00:00:01")!))
        d.start(queues: 2)
        port.inbound.withLock { $0 = [[UInt8](repeating: 9, count: 64)] }
        d.transport.serviceQueues()
        #expect(d.used(0).isEmpty)
        d.submit(0, [(FakeDriver.data, 2048, true)])
        d.kick(0)
        #expect(d.used(0).map(\.length) == [76])
    }
}

@Suite("virtio-rng")
struct EntropyTests {
    @Test("fills each request's writable buffers")
    func fills() {
        let d = FakeDriver(device: VirtioEntropy())
        d.start(queues: 1)
        d.submit(0, [(FakeDriver.data, 64, true), (FakeDriver.data + 64, 64, true)])
        d.kick(0)
        #expect(d.used(0).map(\.length) == [128])
        #expect(d.memory.read(FakeDriver.data, length: 128)!.contains { $0 != 0 })
    }
}
