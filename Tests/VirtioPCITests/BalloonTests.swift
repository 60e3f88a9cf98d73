import Glibc
import HostNetwork
import KVM
import Synchronization
import Testing
import Virtio
@testable import VirtioPCI

/// lseek's SEEK_DATA (Linux; Glibc hides it behind _GNU_SOURCE).
private let seekData: Int32 = 3

/// Guest RAM for the balloon: a memfd (the VMM's own `GuestMemory`) of 96
/// pages, seen as frames [0, 64) and, past a 32-frame hole like the PCI
/// hole, [96, 128). Every release is recorded.
final class HoleyRAM: BalloonMemory, @unchecked Sendable {
    static let lowEnd: UInt64 = 64, holeEnd: UInt64 = 96, end: UInt64 = 128
    let memory: GuestMemory
    let releases = Mutex<[(frame: UInt64, count: UInt64)]>([])

    init() throws {
        memory = try GuestMemory(size: 96 * 4096, name: "balloon-test")
    }

    var frameLimit: UInt64 { Self.end }

    func isRAM(frame: UInt64) -> Bool {
        frame < Self.lowEnd || (frame >= Self.holeEnd && frame < Self.end)
    }

    func release(frames frame: UInt64, count: UInt64) -> Bool {
        releases.withLock { $0.append((frame, count)) }
        return memory.discard(offset(frame), length: count * 4096)
    }

    /// Where frame `frame` is in the memfd.
    func offset(_ frame: UInt64) -> UInt64 { frame < Self.lowEnd ? frame * 4096 : (frame - 32) * 4096 }

    static var ramFrames: [UInt64] { Array(0..<lowEnd) + Array(holeEnd..<end) }

    /// Fills every RAM frame with its own pattern (frame number in each byte, plus one).
    func fill() {
        for f in Self.ramFrames { memset(memory.base + Int(offset(f)), Int32(truncatingIfNeeded: f + 1), 4096) }
    }

    /// Whether frame `frame` still holds its `fill()` pattern (all of it).
    func intact(_ frame: UInt64) -> Bool {
        let p = (memory.base + Int(offset(frame))).assumingMemoryBound(to: UInt8.self)
        return (0..<4096).allSatisfy { p[$0] == UInt8(truncatingIfNeeded: frame + 1) }
    }

    /// True when the memfd has no data behind frame `frame`: a punched hole
    /// (lseek seekData skips it).
    func isHole(_ frame: UInt64) -> Bool {
        let at = off_t(offset(frame))
        let data = lseek(memory.fd, at, seekData)
        return data == -1 || data >= at + 4096
    }

    /// Whether frame `frame`'s page is in host memory now (mincore).
    func isResident(_ frame: UInt64) -> Bool {
        var vec: UInt8 = 0
        guard mincore(memory.base + Int(offset(frame)), 4096, &vec) == 0 else { return true }
        return vec & 1 != 0
    }
}

@Suite("virtio-balloon")
struct BalloonTests {
    static let features = VirtioFeature.version1 | VirtioBalloon.Feature.deflateOnOOM
    static let list = FakeDriver.data

    /// A running balloon over fresh, filled RAM.
    static func running() throws -> (FakeDriver, VirtioBalloon, HoleyRAM) {
        let ram = try HoleyRAM()
        ram.fill()
        let balloon = VirtioBalloon(memory: ram)
        let d = FakeDriver(device: balloon)
        d.start(queues: 2, features: features)
        return (d, balloon, ram)
    }

    /// Lists `frames` at `list` and sends them on queue `q` (0 inflate, 1 deflate).
    static func send(_ d: FakeDriver, _ q: Int, _ frames: [UInt32]) {
        for (i, f) in frames.enumerated() { d.memory.store(f, at: list + 4 * UInt64(i)) }
        d.submit(q, [(list, UInt32(4 * frames.count), false)])
        d.kick(q)
    }

    @Test("IDs, two queues, DEFLATE_ON_OOM offered and negotiated; features not offered are refused")
    func negotiation() throws {
        let ram = try HoleyRAM()
        let d = FakeDriver(device: VirtioBalloon(memory: ram))
        #expect(d.config(0x00) == 0x1045_1af4)
        #expect(d.config(0x08) >> 8 == 0xff_0000)
        #expect(d.read(FakeDriver.common + 0x12, 2) == 2)                    // num_queues
        let offered = d.deviceFeatures()
        #expect(offered & VirtioBalloon.Feature.deflateOnOOM != 0)
        #expect(offered & (VirtioBalloon.Feature.statsQueue | VirtioBalloon.Feature.mustTellHost) == 0)
        #expect(d.config(0x74 + 12) == 8)                                    // device config: num_pages, actual

        d.setStatus(1 | 2)
        d.setDriverFeatures(VirtioFeature.version1 | VirtioBalloon.Feature.statsQueue)
        d.setStatus(1 | 2 | 8)
        #expect(d.status & 8 == 0)
        d.start(queues: 2, features: Self.features)
        #expect(d.status == 1 | 2 | 8 | 4)
        d.write(FakeDriver.common + 0x08, 4, 0)
        #expect(d.read(FakeDriver.common + 0x0c, 4) == VirtioBalloon.Feature.deflateOnOOM)
        #expect(d.read(FakeDriver.deviceConfig, 8) == 0)                     // num_pages 0, actual 0
    }

    @Test("inflate punches the frames out of the memfd; deflate gives them back, reading as zeros and writable")
    func inflateAndDeflate() throws {
        let (d, balloon, ram) = try Self.running()
        for f: UInt64 in [3, 4, 5, 10, 100] { #expect(ram.isResident(f) && !ram.isHole(f)) }

        Self.send(d, 0, [3, 4, 5, 10, 100])
        #expect(d.used(0).map(\.length) == [0])
        #expect(d.msi.data.contains(0x41))                                   // inflate queue's vector
        for f: UInt64 in [3, 4, 5, 10, 100] {
            #expect(ram.isHole(f), "frame \(f) is a hole in the memfd")
            #expect(!ram.isResident(f), "frame \(f) is not resident")
        }
        for f in HoleyRAM.ramFrames where ![3, 4, 5, 10, 100].contains(f) { #expect(ram.intact(f), "frame \(f)") }
        #expect(balloon.balloonedFrames == 5)
        // 3, 4, 5 in one release: runs of frames are coalesced.
        #expect(ram.releases.withLock { $0.map { [$0.frame, $0.count] } } == [[3, 3], [10, 1], [100, 1]])

        // The same frame twice is counted once.
        Self.send(d, 0, [4, 4])
        #expect(balloon.balloonedFrames == 5)

        // Deflate: frames never inflated are ignored; the rest leave the balloon.
        Self.send(d, 1, [3, 100, 7])
        #expect(d.used(1).map(\.length) == [0])
        #expect(balloon.balloonedFrames == 3)
        #expect(ram.intact(7))
        for f: UInt64 in [3, 100] {
            let p = (ram.memory.base + Int(ram.offset(f))).assumingMemoryBound(to: UInt8.self)
            #expect((0..<4096).allSatisfy { p[$0] == 0 }, "frame \(f) reads as zeros")
            p[17] = 0x5a
            #expect(p[17] == 0x5a && ram.isResident(f) && !ram.isHole(f), "frame \(f) is memory again")
        }
        #expect(d.status & 0x40 == 0)
    }

    @Test("hostile requests: frames outside RAM ignored, bad chains refused whole; no memory touched, the device goes on")
    func hostileRequests() throws {
        let (d, balloon, ram) = try Self.running()
        // Frames in the hole, past the end and at the top of 32 bits, around one good frame.
        Self.send(d, 0, [64, 95, 1, 128, 0xffff_ffff, 80])
        #expect(balloon.balloonedFrames == 1)
        #expect(ram.isHole(1))
        #expect(ram.releases.withLock { $0.map(\.frame) } == [1])

        var heads: [UInt16] = []
        // Six bytes: not a whole number of frame numbers.
        for (i, f) in [UInt32(2), 3].enumerated() { d.memory.store(f, at: Self.list + 4 * UInt64(i)) }
        heads.append(d.submit(0, [(Self.list, 6, false)]))
        // A device-writable buffer where the list belongs.
        heads.append(d.submit(0, [(Self.list, 8, true)]))
        // A readable list followed by a writable buffer.
        heads.append(d.submit(0, [(Self.list, 8, false), (Self.list + 0x100, 4, true)]))
        d.kick(0)
        // A giant chain: eight 4 KiB buffers, 8192 frame numbers (all frame 2).
        for i in 0..<(8 * 1024) { d.memory.store(UInt32(2), at: Self.list + 4 * UInt64(i)) }
        heads.append(d.submit(0, (0..<8).map { (Self.list + UInt64($0) * 4096, UInt32(4096), false) }))
        d.kick(0)
        // A list buffer outside guest memory: the virtio core refuses the chain.
        heads.append(d.submit(0, [(0xfff_0000, 8, false)]))
        d.kick(0)
        #expect(d.used(0).count == 1 + heads.count)
        #expect(d.used(0).allSatisfy { $0.length == 0 })
        #expect(balloon.balloonedFrames == 1)
        #expect(ram.releases.withLock { $0.count } == 1)
        for f in HoleyRAM.ramFrames where f != 1 { #expect(ram.intact(f), "frame \(f) untouched") }
        #expect(d.status & 0x40 == 0)

        // A list spread over two buffers, well-formed: taken as one.
        d.memory.store(UInt32(20), at: Self.list)
        d.memory.store(UInt32(21), at: Self.list + 0x200)
        d.submit(0, [(Self.list, 4, false), (Self.list + 0x200, 4, false)])
        d.kick(0)
        #expect(balloon.balloonedFrames == 3)
        #expect(ram.isHole(20) && ram.isHole(21))
    }

    @Test("a new target raises the configuration-change interrupt and moves config_generation; before DRIVER_OK only the value changes")
    func targetChange() throws {
        let ram = try HoleyRAM()
        let balloon = VirtioBalloon(memory: ram)
        let d = FakeDriver(device: balloon)
        d.transport.changeConfiguration { balloon.setTarget(pages: 7) }
        #expect(d.msi.count == 0)
        #expect(d.read(FakeDriver.deviceConfig, 4) == 7)

        d.start(queues: 2, features: Self.features)
        let generation = d.read(FakeDriver.common + 0x15, 1)!
        d.transport.changeConfiguration { balloon.setTarget(pages: 100) }
        #expect(d.msi.data == [0x40])                                        // config vector 0
        #expect(d.read(FakeDriver.isr, 1) == 2)
        #expect(d.read(FakeDriver.deviceConfig, 4) == 100)                   // num_pages
        #expect(d.read(FakeDriver.deviceConfig, 2) == 100)
        #expect(d.read(FakeDriver.common + 0x15, 1) == (generation + 1) & 0xff)
        #expect(balloon.targetPages == 100)

        // With the configuration vector unmapped, nothing is sent, but ISR says so.
        d.write(FakeDriver.common + 0x10, 2, 0xffff)
        d.transport.changeConfiguration { balloon.setTarget(pages: 0) }
        #expect(d.msi.count == 1)
        #expect(d.read(FakeDriver.isr, 1) == 2)
    }

    @Test("the driver's write of actual is seen by the host; other configuration writes are ignored; reset empties the balloon")
    func actualWrite() throws {
        let (d, balloon, _) = try Self.running()
        d.transport.changeConfiguration { balloon.setTarget(pages: 9) }
        d.write(FakeDriver.deviceConfig + 4, 4, 5)
        #expect(balloon.actualPages == 5)
        #expect(d.read(FakeDriver.deviceConfig + 4, 4) == 5)
        #expect(d.read(FakeDriver.deviceConfig, 8) == 5 << 32 | 9)
        d.write(FakeDriver.deviceConfig, 4, 1234)                             // num_pages is the host's
        d.write(FakeDriver.deviceConfig + 4, 2, 77)                           // not a 32-bit store
        d.write(FakeDriver.deviceConfig + 4, 8, 77)
        d.write(FakeDriver.deviceConfig + 5, 4, 77)
        #expect(balloon.targetPages == 9 && balloon.actualPages == 5)

        Self.send(d, 0, [1, 2])
        #expect(balloon.balloonedFrames == 2)
        d.setStatus(0)
        #expect(balloon.balloonedFrames == 0 && balloon.actualPages == 0)
        #expect(balloon.targetPages == 9)                                     // the host's wish stays
    }

    @Test("a read-only device configuration ignores driver writes")
    func readOnlyConfig() {
        let d = FakeDriver(device: VirtioNet(port: FakePort(), mac: MACAddress("00:16:3e:00:00:01")!))
        let before = d.read(FakeDriver.deviceConfig, 8)
        d.write(FakeDriver.deviceConfig, 4, 0xffff_ffff)
        #expect(d.read(FakeDriver.deviceConfig, 8) == before)
        #expect(d.read(FakeDriver.common + 0x15, 1) == 0)                     // never changed: generation 0
    }
}
