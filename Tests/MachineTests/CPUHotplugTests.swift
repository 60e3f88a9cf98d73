import Synchronization
import Testing
@testable import Machine

/// The CPU hotplug register block as the DSDT's methods drive it: select a
/// CPU, read its status, acknowledge, eject; and the host's requests.
@Suite struct CPUHotplugTests {
    typealias Status = CPUHotplugController.Status
    static let base: UInt16 = 0x610

    final class Ejections: Sendable {
        let cpus = Mutex<[Int]>([])
    }

    /// What the guest reads for `cpu`, selected as CSTA does (a 4-byte CSEL write).
    static func status(_ c: CPUHotplugController, _ cpu: UInt32) -> Status {
        c.write(port: base, size: 4, value: cpu)
        return Status(rawValue: UInt8(c.read(port: base + 4, size: 1)))
    }

    static func command(_ c: CPUHotplugController, _ cpu: UInt32, _ bits: UInt8) {
        c.write(port: base, size: 4, value: cpu)
        c.write(port: base + 4, size: 1, value: UInt32(bits))
    }

    @Test func bootCPUsAreEnabledAndTheRestAbsent() {
        let c = CPUHotplugController(base: Self.base, possibleCPUs: 4, enabledCPUs: 2)
        #expect(c.ports == 0x610...0x61B)
        #expect((0..<4).map { Self.status(c, $0) } == [.enabled, .enabled, [], []])
        #expect(c.read(port: Self.base + 8, size: 4) == 4)              // possible CPUs
        #expect(c.enabledCount == 2)
        c.write(port: Self.base, size: 4, value: 0x0102_0304)
        #expect(c.read(port: Self.base, size: 4) == 0x0102_0304)       // CSEL reads back
        #expect(c.read(port: Self.base + 2, size: 2) == 0x0102)
    }

    @Test func addingMarksInsertPendingUntilTheGuestAcknowledges() {
        let c = CPUHotplugController(base: Self.base, possibleCPUs: 4, enabledCPUs: 1)
        #expect(!c.hasPendingEvents)
        #expect(c.request(enabledCount: 3))
        #expect(c.hasPendingEvents)
        #expect((0..<4).map { Self.status(c, $0) } == [.enabled, [.enabled, .insertPending], [.enabled, .insertPending], []])
        #expect(c.enabledCount == 3)
        // The same request again has nothing new for the guest.
        #expect(!c.request(enabledCount: 3))
        Self.command(c, 1, CPUHotplugController.Command.acknowledgeInsert)
        #expect(Self.status(c, 1) == .enabled)
        #expect(Self.status(c, 2) == [.enabled, .insertPending])
        Self.command(c, 2, CPUHotplugController.Command.acknowledgeInsert)
        #expect(!c.hasPendingEvents)
        // Writing the enabled bit (or unknown bits) does nothing.
        Self.command(c, 3, 0xF1)
        #expect(Self.status(c, 3) == [])
    }

    @Test func removingMarksRemovePendingAndEjectTakesTheCPUAway() {
        let e = Ejections()
        let c = CPUHotplugController(base: Self.base, possibleCPUs: 4, enabledCPUs: 4,
                                     onEject: { cpu in e.cpus.withLock { $0.append(cpu) } })
        #expect(c.request(enabledCount: 2))
        #expect((0..<4).map { Self.status(c, $0) } == [.enabled, .enabled, [.enabled, .removePending], [.enabled, .removePending]])
        #expect(c.enabledCount == 4, "still there until the guest ejects them")
        Self.command(c, 3, CPUHotplugController.Command.acknowledgeRemove)
        #expect(Self.status(c, 3) == .enabled)
        Self.command(c, 3, CPUHotplugController.Command.eject)
        Self.command(c, 2, CPUHotplugController.Command.acknowledgeRemove | CPUHotplugController.Command.eject)
        #expect((0..<4).map { Self.status(c, $0) } == [.enabled, .enabled, [], []])
        #expect(e.cpus.withLock { $0 } == [3, 2])
        #expect(c.enabledCount == 2)
        // An absent CPU cannot be ejected twice; the boot CPU never.
        Self.command(c, 3, CPUHotplugController.Command.eject)
        Self.command(c, 0, CPUHotplugController.Command.eject)
        #expect(e.cpus.withLock { $0 } == [3, 2])
        #expect(Self.status(c, 0) == .enabled)
        // Added again after the eject: a fresh insert.
        #expect(c.request(enabledCount: 4))
        #expect(Self.status(c, 3) == [.enabled, .insertPending])
    }

    @Test func aRequestOvertakenBeforeTheGuestLookedIsUndone() {
        let c = CPUHotplugController(base: Self.base, possibleCPUs: 3, enabledCPUs: 2)
        #expect(c.request(enabledCount: 3))
        // Withdrawn while its insert is still pending: it simply goes.
        #expect(!c.request(enabledCount: 2))
        #expect(Self.status(c, 2) == [])
        // A removal not yet acknowledged is cancelled by asking for the CPU again.
        #expect(c.request(enabledCount: 1))
        #expect(Self.status(c, 1) == [.enabled, .removePending])
        #expect(!c.request(enabledCount: 2))
        #expect(Self.status(c, 1) == .enabled)
    }

    @Test func guestWritesOutOfRangeOrOddlySizedAreHarmless() {
        let e = Ejections()
        let c = CPUHotplugController(base: Self.base, possibleCPUs: 2, enabledCPUs: 2,
                                     onEject: { cpu in e.cpus.withLock { $0.append(cpu) } })
        for selector: UInt32 in [2, 255, 0x100, 0xFFFF_FFFF, 0x8000_0001] {
            #expect(Self.status(c, selector) == [], "CPU \(selector) does not exist")
            Self.command(c, selector, 0xFF)
        }
        #expect(e.cpus.withLock { $0 }.isEmpty)
        #expect(c.enabledCount == 2)
        // Byte-wise selector writes build the same selector as one dword write.
        c.write(port: Self.base, size: 4, value: 0xFFFF_FFFF)
        for (i, b) in [1, 0, 0, 0].enumerated() { c.write(port: Self.base + UInt16(i), size: 1, value: UInt32(b)) }
        #expect(c.read(port: Self.base + 4, size: 1) == 1)           // CPU 1: enabled
        // A dword at +4 writes the command byte and ignores +5...+7; reads there are all ones.
        c.write(port: Self.base + 4, size: 4, value: 0xFFFF_FF08)
        #expect(e.cpus.withLock { $0 } == [1])
        #expect(c.read(port: Self.base + 5, size: 2) == 0xFFFF)
        // The count register is read-only; sizes other than 1, 2, 4 and ports outside read all ones.
        c.write(port: Self.base + 8, size: 4, value: 99)
        #expect(c.read(port: Self.base + 8, size: 4) == 2)
        #expect(c.read(port: Self.base + 12, size: 1) == 0xFFFF_FFFF)
        #expect(c.read(port: Self.base, size: 3) == 0xFFFF_FFFF)
        #expect(c.read(port: Self.base + 11, size: 4) == 0xFFFF_FF00)   // +11 is the count's top byte; past it, ones
    }
}
