import Glibc
import HostNetwork
import Machine
import Synchronization
import Testing
import Virtio
@testable import VirtioPCI

/// Records doorbell bindings, as KVM's ioeventfds would hold them.
final class RecordingDoorbells: DoorbellBinder, @unchecked Sendable {
    let bound = Mutex<Set<UInt64>>([])
    func bind(address: UInt64, length: UInt32, eventFD: Int32) -> Bool {
        bound.withLock { _ = $0.insert(address) }
        return true
    }
    func unbind(address: UInt64, length: UInt32, eventFD: Int32) {
        bound.withLock { _ = $0.remove(address) }
    }
    var addresses: Set<UInt64> { bound.withLock { $0 } }
}

/// A transport saved with its driver running and restored into a fresh
/// one over the same guest memory carries on where it stopped; state it
/// could not have held is refused.
@Suite("virtio-pci transport state")
struct TransportStateTests {
    static func save(_ d: FakeDriver) -> [UInt8] { d.transport.savedState() }

    static func restore(_ bytes: [UInt8], into d: FakeDriver) throws(DeviceStateError) {
        try d.transport.restoreState(bytes, what: "virtio test device")
    }

    /// Entropy requests of 64 bytes at a fresh place each.
    static func request(_ d: FakeDriver, _ n: Int) -> UInt16 {
        d.submit(0, [(FakeDriver.data + UInt64(n) * 64, 64, true)])
    }

    @Test("a restored device serves the next request at the next used index, with the driver's MSI-X message")
    func carriesOn() throws {
        let d = FakeDriver(device: VirtioEntropy())
        d.start(queues: 1)
        for n in 0..<3 { Self.request(d, n); d.kick(0) }
        #expect(d.used(0).count == 3)
        #expect(d.msi.data == [0x41, 0x41, 0x41])
        // Post one more without a kick the old device ever served.
        let pending = Self.request(d, 3)
        let saved = Self.save(d)

        let r = FakeDriver(device: VirtioEntropy(), continuing: d)
        try Self.restore(saved, into: r)
        // The registers read as the driver left them.
        #expect(r.status == 1 | 2 | 4 | 8)
        #expect(r.read(FakeDriver.common + 0x10, 2) == 0)                   // config vector
        #expect(r.read(FakeDriver.common + 0x18, 2) == 8)                   // queue 0 size
        #expect(r.read(FakeDriver.common + 0x1a, 2) == 1)                   // its vector
        #expect(r.read(FakeDriver.common + 0x1c, 2) == 1)                   // enabled
        #expect(r.read(FakeDriver.common + 0x20, 8) == FakeDriver.area(0))
        #expect(r.config(0x86, 2) & 0x8000 != 0)                            // MSI-X on
        #expect(r.read(FakeDriver.msixTable + 16 + 8, 4) == 0x41)          // vector 1's data
        #expect(r.config(0x10) == d.config(0x10) && r.config(0x04, 2) == d.config(0x04, 2))
        // The request posted before the save, then a new one.
        r.transport.serviceQueues()
        let next = Self.request(r, 4)
        r.kick(0)
        let used = r.used(0)
        #expect(used.count == 5)
        #expect(used[3].id == UInt32(pending) && used[3].length == 64)
        #expect(used[4].id == UInt32(next) && used[4].length == 64)
        #expect(r.msi.data == [0x41, 0x41])
        #expect(r.msi.messages.withLock { $0.allSatisfy { $0.address == 0xfee0_0000 } })
    }

    @Test("queue positions with EVENT_IDX, ISR, selects and config generation come back as they were")
    func positionsAndRegisters() throws {
        let d = FakeDriver(device: VirtioEntropy())
        d.start(queues: 1, features: VirtioFeature.version1 | VirtioFeature.eventIndex)
        for n in 0..<5 { Self.request(d, n); d.kick(0) }
        d.transport.changeConfiguration {}                                  // generation 1, ISR bit 1
        d.write(FakeDriver.common + 0x00, 4, 1)                             // device feature select
        d.write(FakeDriver.common + 0x16, 2, 7)                             // a queue that does not exist
        let r = FakeDriver(device: VirtioEntropy(), continuing: d)
        try Self.restore(Self.save(d), into: r)
        func position(_ d: FakeDriver) -> VirtqueuePosition? { d.transport.state.withLock { $0.queues[0].virtqueue.position } }
        #expect(position(r) != nil && position(r) == position(d))
        #expect(position(r)?.nextAvailIndex == 5 && position(r)?.publishedUsedIndex == 5)
        for offset: UInt64 in [0x00, 0x08, 0x15, 0x16] {
            #expect(r.read(FakeDriver.common + offset, 4) == d.read(FakeDriver.common + offset, 4))
        }
        #expect(r.read(FakeDriver.isr, 1) == d.read(FakeDriver.isr, 1))
        #expect(r.transport.state.withLock { $0.negotiatedFeatures } == VirtioFeature.version1 | VirtioFeature.eventIndex)
    }

    @Test("masked vectors keep their pending bits; unmasking after the restore delivers")
    func pendingBits() throws {
        let d = FakeDriver(device: VirtioEntropy())
        d.start(queues: 1)
        d.write(FakeDriver.msixTable + 16 + 12, 4, 1)                       // mask vector 1
        Self.request(d, 0)
        d.kick(0)
        #expect(d.read(0x5000, 8) == 0b10)
        let r = FakeDriver(device: VirtioEntropy(), continuing: d)
        try Self.restore(Self.save(d), into: r)
        #expect(r.read(0x5000, 8) == 0b10)
        r.write(FakeDriver.msixTable + 16 + 12, 4, 0)
        #expect(r.msi.data == [0x41])
    }

    @Test("doorbells are bound again where the restored BAR is")
    func doorbellsRebound() throws {
        let d = FakeDriver(device: VirtioEntropy())
        d.start(queues: 1)
        d.setConfig(0x04, 2, 0)
        d.setConfig(0x10, 4, 0xd000_0000)                                   // the guest moved the BAR
        d.setConfig(0x04, 2, 6)
        let doorbells = RecordingDoorbells()
        let r = FakeDriver(device: VirtioEntropy(), continuing: d, doorbells: doorbells)
        #expect(doorbells.addresses == [FakeDriver.bar + 0x3000])           // as built
        try Self.restore(Self.save(d), into: r)
        #expect(doorbells.addresses == [0xd000_3000])
        #expect(r.transport.mmioRead(address: 0xd000_0014, size: 1) == 0x0F)
    }

    // MARK: Refusals

    /// Byte offsets in an entropy transport's state (one queue, two vectors).
    enum At {
        static let version = 0, type = 1, command = 5, bar = 7, msixControl = 16, pending = 18
        static let entries = 28, status = 60, driverFeatures = 69, configVector = 77, isr = 82
        static let queueSize = 83, descriptors = 85, vector = 109, enabled = 111, next = 112, used = 114
    }

    static func running() -> FakeDriver {
        let d = FakeDriver(device: VirtioEntropy())
        d.start(queues: 1)
        Self.request(d, 0)
        d.kick(0)
        return d
    }

    static func expectRefused(_ saved: [UInt8], _ changes: [(Int, [UInt8])], _ why: Comment) {
        var bytes = saved
        for (at, new) in changes { bytes.replaceSubrange(at..<(at + new.count), with: new) }
        let r = FakeDriver(device: VirtioEntropy(), continuing: running())
        #expect(throws: DeviceStateError.self, why) { try restore(bytes, into: r) }
        // Refused whole: the function is as it was built (the driver can start it).
        #expect(r.status == 0 && r.read(FakeDriver.common + 0x1c, 2) == 0)
    }

    static func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

    @Test("state the function could not hold is refused, and the function is left as built")
    func refusals() {
        let saved = Self.save(Self.running())
        #expect(saved.count == 126)
        #expect(throws: Never.self) { try Self.restore(saved, into: FakeDriver(device: VirtioEntropy())) }
        Self.expectRefused(saved, [(At.queueSize, Self.le(128, 2))], "queue size above the maximum of 64")
        Self.expectRefused(saved, [(At.queueSize, Self.le(6, 2))], "queue size not a power of two")
        Self.expectRefused(saved, [(At.vector, Self.le(2, 2))], "queue vector beyond the table")
        Self.expectRefused(saved, [(At.configVector, Self.le(9, 2))], "config vector beyond the table")
        Self.expectRefused(saved, [(At.descriptors, Self.le(0xF000_0000, 8))], "descriptor table outside guest memory")
        Self.expectRefused(saved, [(At.descriptors, Self.le((1 << 20) - 64, 8))], "descriptor table running off the end")
        Self.expectRefused(saved, [(At.descriptors, Self.le(0x1_0008, 8))], "misaligned descriptor table")
        Self.expectRefused(saved, [(At.used, Self.le(200, 2))], "more chains completed than taken")
        Self.expectRefused(saved, [(At.version, [2])], "another format version")
        Self.expectRefused(saved, [(At.type, Self.le(2, 2))], "another device type")
        Self.expectRefused(saved, [(At.command, Self.le(0x0100, 2))], "a command bit not implemented")
        Self.expectRefused(saved, [(At.bar, Self.le(0xc000_1000, 8))], "a BAR not aligned to its size")
        Self.expectRefused(saved, [(At.msixControl, Self.le(0x2000, 2))], "MSI-X control bit the driver cannot set")
        Self.expectRefused(saved, [(At.pending, Self.le(0b100, 8))], "a pending bit beyond the table")
        Self.expectRefused(saved, [(At.entries + 12, Self.le(2, 4))], "a reserved vector control bit")
        Self.expectRefused(saved, [(At.status, [1 | 2 | 4])], "DRIVER_OK without FEATURES_OK")
        Self.expectRefused(saved, [(At.driverFeatures, Self.le(1 << 32 | 1 << 40, 8))], "a feature not offered")
        Self.expectRefused(saved, [(At.isr, [4])], "an ISR bit that does not exist")
        Self.expectRefused(saved, [(At.enabled, [2])], "a flag that is neither 0 nor 1")
        Self.expectRefused(saved + [7], [(saved.count - 4, Self.le(1, 4))], "device state where the device saves none")
        for length in stride(from: 0, to: saved.count, by: 1) {
            Self.expectRefused(Array(saved[..<length]), [], "cut short at \(length)")
        }
        // Left over after the transport's state: found once it is back, so
        // only refused (the domain does not start).
        #expect(throws: DeviceStateError.self) { try Self.restore(saved + [0], into: FakeDriver(device: VirtioEntropy())) }
        // Another device's state: vsock has three queues.
        let path = "/tmp/xeno-state-\(getpid())"
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        let vsock = FakeDriver(device: VirtioVsock(guestCID: 3, listener: listener, socketPath: path))
        #expect(throws: DeviceStateError.self) { try Self.restore(saved, into: vsock) }
    }

    // MARK: Devices

    @Test("vsock: the restored device posts TRANSPORT_RESET on its event queue before anything on receive")
    func vsockTransportReset() throws {
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        let d = FakeDriver(device: VirtioVsock(guestCID: 5, listener: listener, socketPath: "/tmp/xeno-none"))
        d.start(queues: 3)
        let event = FakeDriver.data
        d.memory.store(UInt32(0xFFFF_FFFF), at: event)
        d.submit(2, [(event, 4, true)])
        d.kick(2)
        #expect(d.used(2).isEmpty)                                          // nothing to say yet
        let saved = Self.save(d)

        let r = FakeDriver(device: VirtioVsock(guestCID: 5, listener: listener, socketPath: "/tmp/xeno-none"), continuing: d)
        try Self.restore(saved, into: r)
        r.transport.serviceQueues()
        let used = r.used(2)
        #expect(used.count == 1 && used.first?.length == 4)
        #expect(r.memory.load(event, as: UInt32.self) == 0)                 // VIRTIO_VSOCK_EVENT_TRANSPORT_RESET
        #expect(r.msi.data == [0x43])                                       // the event queue's vector
        r.transport.serviceQueues()
        #expect(r.used(2).count == 1)                                       // once

        // A device for another guest CID refuses the state.
        let other = FakeDriver(device: VirtioVsock(guestCID: 6, listener: listener, socketPath: "/tmp/xeno-none"), continuing: d)
        #expect(throws: DeviceStateError.self) { try Self.restore(saved, into: other) }
    }

    @Test("vsock: a receive chain the saved device held goes back empty, after the TRANSPORT_RESET")
    func vsockHeldReceiveChain() throws {
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        let d = FakeDriver(device: VirtioVsock(guestCID: 5, listener: listener, socketPath: "/tmp/xeno-none"))
        d.start(queues: 3)
        let held = d.submit(0, [(FakeDriver.data + 0x1000, 4096, true)])
        d.kick(0)                                          // nothing to send: the chain stays available
        d.submit(2, [(FakeDriver.data, 4, true)])
        var saved = Self.save(d)
        // As if the device had taken the chain and found nothing to put in
        // it: the flag and head end its block (CID, held, head).
        saved[saved.count - 3] = 1
        saved.replaceSubrange((saved.count - 2)..., with: Self.le(UInt64(held), 2))

        let r = FakeDriver(device: VirtioVsock(guestCID: 5, listener: listener, socketPath: "/tmp/xeno-none"), continuing: d)
        try Self.restore(saved, into: r)
        r.transport.serviceQueues()
        #expect(r.used(2).count == 1)                                       // the reset went out
        #expect(r.used(0).map(\.id) == [UInt32(held)] && r.used(0).first?.length == 0)
    }

    @Test("balloon: target, actual and the frames in the balloon come back; a frame that is not RAM is refused")
    func balloon() throws {
        let ram = try HoleyRAM()
        let balloon = VirtioBalloon(memory: ram)
        let d = FakeDriver(device: balloon)
        d.start(queues: 2, features: BalloonTests.features)
        d.transport.changeConfiguration { balloon.setTarget(pages: 10) }
        BalloonTests.send(d, 0, [1, 2, 3, 100])
        d.write(FakeDriver.deviceConfig + 4, 4, 4)                          // actual
        let saved = Self.save(d)

        let restoredBalloon = VirtioBalloon(memory: ram)
        let r = FakeDriver(device: restoredBalloon, continuing: d)
        try Self.restore(saved, into: r)
        #expect(restoredBalloon.targetPages == 10 && restoredBalloon.actualPages == 4)
        #expect(restoredBalloon.balloonedFrames == 4)
        BalloonTests.send(r, 1, [2, 50])                                    // 50 was never in it
        #expect(restoredBalloon.balloonedFrames == 3)
        #expect(r.used(1).count == 1)

        // Frame 70 is in the hole: the map's second word, bit 6.
        var bad = saved
        let map = bad.count - 16
        bad[map + 8] = 0x40
        let refused = FakeDriver(device: VirtioBalloon(memory: ram), continuing: d)
        #expect(throws: DeviceStateError.self) { try Self.restore(bad, into: refused) }
    }

    @Test("net and block: a device showing the guest another MAC is refused")
    func netConfiguration() throws {
        let d = FakeDriver(device: VirtioNet(port: FakePort(), mac: MACAddress("52:54:00:00:00:01")!))
        d.start(queues: 2)
        let saved = Self.save(d)
        let same = FakeDriver(device: VirtioNet(port: FakePort(), mac: MACAddress("52:54:00:00:00:01")!), continuing: d)
        try Self.restore(saved, into: same)
        let other = FakeDriver(device: VirtioNet(port: FakePort(), mac: MACAddress("52:54:00:00:00:02")!), continuing: d)
        #expect(throws: DeviceStateError.self) { try Self.restore(saved, into: other) }
    }

    // MARK: Service thread

    @Test("stop() waits for the thread; a doorbell rung while stopped is served after start()")
    func stopAndStart() async throws {
        let d = FakeDriver(device: VirtioEntropy())
        d.start(queues: 1)
        d.transport.start()
        d.transport.stop()
        Self.request(d, 0)
        d.write(FakeDriver.notify, 2, 0)                                    // rung while stopped
        try await Task.sleep(for: .milliseconds(50))
        #expect(d.used(0).isEmpty)
        d.transport.start()
        for _ in 0..<200 where d.used(0).isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        #expect(d.used(0).count == 1)
        d.transport.stop()
        d.transport.stop()                                                  // twice is harmless
    }
}
