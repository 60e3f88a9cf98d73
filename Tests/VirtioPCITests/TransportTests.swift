import Testing
import Virtio
@testable import VirtioPCI

/// The virtio-pci transport seen by a driver: configuration space, BAR,
/// feature negotiation, the status state machine and queue set-up.
@Suite("virtio-pci transport")
struct TransportTests {
    let status = (ack: UInt8(1), driver: UInt8(2), driverOK: UInt8(4), featuresOK: UInt8(8), needsReset: UInt8(0x40))

    @Test("configuration space: IDs, revision, class, BAR0 as a 64-bit memory BAR, the capability list")
    func configSpace() {
        let d = FakeDriver(device: VirtioEntropy())
        #expect(d.config(0x00) == 0x1044_1af4)
        #expect(d.config(0x08) == 0xff00_0001)                   // class ff, revision 1
        #expect(d.config(0x06, 2) & 0x10 != 0)                   // capability list
        #expect(d.config(0x10) == 0xc000_0004)
        #expect(d.config(0x14) == 0)
        #expect(d.config(0x2c) == 0x0040_1af4)
        // Walk the list: four virtio structures in BAR 0, then MSI-X.
        var found: [UInt8: (offset: UInt32, length: UInt32)] = [:]
        var msix: UInt8?
        var p = UInt8(d.config(0x34, 1))
        var hops = 0
        while p != 0 && hops < 16 {
            let id = UInt8(d.config(UInt16(p), 1))
            if id == 0x09 {
                #expect(d.config(UInt16(p) + 4, 1) == 0)         // BAR 0
                found[UInt8(d.config(UInt16(p) + 3, 1))] = (d.config(UInt16(p) + 8), d.config(UInt16(p) + 12))
            } else if id == 0x11 {
                msix = p
            }
            p = UInt8(d.config(UInt16(p) + 1, 1))
            hops += 1
        }
        #expect(found[1]?.offset == 0x0000 && found[1]?.length == 0x38)
        #expect(found[2]?.offset == 0x3000)
        #expect(found[3]?.offset == 0x1000)
        #expect(found[4]?.offset == 0x2000)
        #expect(d.config(0x50 + 16) == 4)                        // notify_off_multiplier
        let m = try! #require(msix)
        #expect(d.config(UInt16(m) + 2, 2) & 0x7ff == 1)         // 2 vectors: queue and config
        #expect(d.config(UInt16(m) + 4) == 0x4000)
        #expect(d.config(UInt16(m) + 8) == 0x5000)
        // Only the writable registers change.
        d.setConfig(0x00, 4, 0x1234_5678)
        d.setConfig(0x08, 4, 0)
        #expect(d.config(0x00) == 0x1044_1af4)
        #expect(d.config(0x08) == 0xff00_0001)
    }

    @Test("BAR sizing and moving: the BAR reads back its size, and decodes only where it now is")
    func barSizingAndMove() {
        let d = FakeDriver(device: VirtioEntropy())
        d.setConfig(0x04, 2, 0)                                  // memory decoding off
        #expect(d.transport.mmioRead(address: FakeDriver.bar, size: 4) == nil)
        d.setConfig(0x10, 4, 0xffff_ffff)
        d.setConfig(0x14, 4, 0xffff_ffff)
        #expect(d.config(0x10) == 0xffff_8004)                   // 32 KiB
        #expect(d.config(0x14) == 0xffff_ffff)
        d.setConfig(0x10, 4, 0xd000_0000)
        d.setConfig(0x14, 4, 0)
        d.setConfig(0x04, 2, 0x0006)
        #expect(d.config(0x04, 2) == 0x0006)
        #expect(d.transport.mmioRead(address: FakeDriver.bar + 0x12, size: 2) == nil)
        #expect(d.transport.mmioRead(address: 0xd000_0012, size: 2) == 1)    // num_queues
        #expect(d.transport.mmioRead(address: 0xd000_8000, size: 2) == nil)  // just past the BAR
    }

    @Test("FEATURES_OK sticks only with VERSION_1 and offered bits, and freezes the features")
    func featureNegotiation() {
        let d = FakeDriver(device: VirtioEntropy())
        let offered = d.deviceFeatures()
        #expect(offered & VirtioFeature.version1 != 0)
        #expect(offered & VirtioFeature.eventIndex != 0)
        #expect(offered & VirtioFeature.indirectDescriptors != 0)

        d.setStatus(status.ack | status.driver)
        d.setDriverFeatures(VirtioFeature.eventIndex)            // no VERSION_1: a legacy driver
        d.setStatus(status.ack | status.driver | status.featuresOK)
        #expect(d.status & status.featuresOK == 0)

        d.setDriverFeatures(VirtioFeature.version1 | 1 << 40)   // a bit never offered
        d.setStatus(status.ack | status.driver | status.featuresOK)
        #expect(d.status & status.featuresOK == 0)

        d.setDriverFeatures(VirtioFeature.version1 | VirtioFeature.eventIndex)
        d.setStatus(status.ack | status.driver | status.featuresOK)
        #expect(d.status == status.ack | status.driver | status.featuresOK)
        d.setDriverFeatures(VirtioFeature.version1)             // too late: ignored
        d.write(FakeDriver.common + 0x08, 4, 0)
        #expect(d.read(FakeDriver.common + 0x0c, 4) == VirtioFeature.eventIndex)   // still EVENT_IDX
        d.write(FakeDriver.common + 0x08, 4, 1)
        #expect(d.read(FakeDriver.common + 0x0c, 4) == 1)
    }

    @Test("status bits only accumulate; DRIVER_OK needs FEATURES_OK; writing 0 resets everything")
    func statusMachine() {
        let d = FakeDriver(device: VirtioEntropy())
        d.setStatus(status.ack | status.driver | status.driverOK)
        #expect(d.status == status.ack | status.driver)          // no FEATURES_OK yet
        d.setStatus(status.ack)                                  // clearing DRIVER: ignored
        #expect(d.status == status.ack | status.driver)
        d.setStatus(status.ack | status.driver | status.needsReset)
        #expect(d.status & status.needsReset == 0)               // the device's bit

        d.start(queues: 1)
        #expect(d.status == status.ack | status.driver | status.featuresOK | status.driverOK)
        d.write(FakeDriver.common + 0x16, 2, 0)
        #expect(d.read(FakeDriver.common + 0x1c, 2) == 1)
        #expect(d.read(FakeDriver.common + 0x1a, 2) == 1)

        d.setStatus(0)
        #expect(d.status == 0)
        #expect(d.read(FakeDriver.common + 0x1c, 2) == 0)        // queue disabled
        #expect(d.read(FakeDriver.common + 0x1a, 2) == 0xffff)   // vector unmapped
        #expect(d.read(FakeDriver.common + 0x18, 2) == 64)       // size back to the maximum
        #expect(d.read(FakeDriver.common + 0x20, 8) == 0)
        // And the device starts over cleanly.
        d.start(queues: 1)
        d.submit(0, [(FakeDriver.data, 16, true)])
        d.kick(0)
        #expect(d.used(0).map(\.length) == [16])
    }

    @Test("queue registers: nonexistent queues read size 0; bad vectors read NO_VECTOR; writes need FEATURES_OK")
    func queueRegisters() {
        let d = FakeDriver(device: VirtioEntropy())
        #expect(d.read(FakeDriver.common + 0x12, 2) == 1)
        d.write(FakeDriver.common + 0x16, 2, 0)
        d.write(FakeDriver.common + 0x18, 2, 4)                  // before FEATURES_OK: ignored
        #expect(d.read(FakeDriver.common + 0x18, 2) == 64)
        d.write(FakeDriver.common + 0x16, 2, 7)
        #expect(d.read(FakeDriver.common + 0x18, 2) == 0)
        d.write(FakeDriver.common + 0x1c, 2, 1)                  // enabling it does nothing
        #expect(d.read(FakeDriver.common + 0x1c, 2) == 0)

        d.setStatus(status.ack | status.driver)
        d.setDriverFeatures(VirtioFeature.version1)
        d.setStatus(status.ack | status.driver | status.featuresOK)
        d.write(FakeDriver.common + 0x16, 2, 0)
        d.write(FakeDriver.common + 0x1a, 2, 9)                  // the table has 2 vectors
        #expect(d.read(FakeDriver.common + 0x1a, 2) == 0xffff)
        d.write(FakeDriver.common + 0x10, 2, 1)
        #expect(d.read(FakeDriver.common + 0x10, 2) == 1)
        d.write(FakeDriver.common + 0x10, 2, 2)
        #expect(d.read(FakeDriver.common + 0x10, 2) == 0xffff)
    }

    @Test("a queue whose rings lie outside memory, or of a size not a power of two, is refused with NEEDS_RESET")
    func badQueueRefused() {
        for (size, area) in [(UInt16(8), UInt64(0xfff_0000)), (UInt16(6), FakeDriver.area(0))] {
            let d = FakeDriver(device: VirtioEntropy())
            d.setStatus(status.ack | status.driver)
            d.setDriverFeatures(VirtioFeature.version1)
            d.setStatus(status.ack | status.driver | status.featuresOK)
            d.write(FakeDriver.common + 0x16, 2, 0)
            d.write(FakeDriver.common + 0x18, 2, UInt64(size))
            d.write(FakeDriver.common + 0x20, 8, area)
            d.write(FakeDriver.common + 0x28, 8, FakeDriver.area(0) + 0x1000)
            d.write(FakeDriver.common + 0x30, 8, FakeDriver.area(0) + 0x2000)
            d.write(FakeDriver.common + 0x1c, 2, 1)
            #expect(d.read(FakeDriver.common + 0x1c, 2) == 0)
            #expect(d.status & status.needsReset != 0)
            // A reset clears it.
            d.setStatus(0)
            #expect(d.status == 0)
        }
    }

    @Test("a corrupt ring sets NEEDS_RESET and raises the configuration vector; a reset recovers")
    func corruptRing() {
        let d = FakeDriver(device: VirtioEntropy())
        d.start(queues: 1)
        d.setAvailIndex(0, 100)                                  // more than a queue's worth ahead
        d.kick(0)
        #expect(d.status & status.needsReset != 0)
        #expect(d.msi.data == [0x40])                            // config vector 0
        #expect(d.read(FakeDriver.isr, 1) == 2)
        #expect(d.read(FakeDriver.isr, 1) == 0)                  // reading acknowledged it
        d.kick(0)                                                // nothing more happens
        #expect(d.msi.count == 1)
        d.start(queues: 1)
        d.submit(0, [(FakeDriver.data, 8, true)])
        d.kick(0)
        #expect(d.used(0).count == 1)
        #expect(d.msi.data == [0x40, 0x41])
    }

    @Test("used buffers interrupt through the queue's MSI-X vector; masked vectors wait in the pending bits")
    func interrupts() {
        let d = FakeDriver(device: VirtioEntropy())
        d.start(queues: 1)
        d.submit(0, [(FakeDriver.data, 8, true)])
        d.kick(0)
        #expect(d.msi.data == [0x41])
        #expect(d.read(FakeDriver.isr, 1) == 1)
        d.write(FakeDriver.msixTable + 16 + 12, 4, 1)            // mask vector 1
        d.submit(0, [(FakeDriver.data, 8, true)])
        d.kick(0)
        #expect(d.msi.count == 1)
        #expect(d.read(0x5000, 8) == 2)                          // pending bit 1
        d.write(FakeDriver.msixTable + 16 + 12, 4, 0)            // unmask: delivered now
        #expect(d.msi.data == [0x41, 0x41])
        #expect(d.read(0x5000, 8) == 0)
    }

    @Test("odd accesses: bad sizes, misaligned fields, read-only fields, the whole BAR; nothing traps")
    func oddAccesses() {
        let d = FakeDriver(device: VirtioEntropy())
        d.start(queues: 1)
        for offset in stride(from: UInt64(0), to: 0x8000, by: 0x7f) {
            for size in [1, 2, 3, 4, 5, 8] {
                _ = d.read(offset, size)
                if offset != 0x14 { d.write(offset, size, 0xdead_beef_dead_beef) }
            }
        }
        _ = d.transport.mmioRead(address: UInt64.max - 2, size: 8)
        for offset in stride(from: UInt16(0), to: 300, by: 1) {
            _ = d.config(offset, 1)
            _ = d.config(offset, 3)
        }
        #expect(d.read(0x12, 2) == 1)                            // num_queues, still
        #expect(d.read(0x13, 1) == 0)                            // its high byte
    }
}
