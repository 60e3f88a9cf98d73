import Synchronization
import Testing
@testable import Machine

/// Each legacy device, driven through its ports into a state that is not
/// its reset state, saved, and restored into a fresh device: the fresh one
/// reads back the same. Damaged state (cut short, bytes left over, values
/// the device cannot hold) is refused with an error.
@Suite struct DeviceStateTests {
    /// A copy of `device`'s state in `fresh`.
    static func roundTrip(_ device: some StatefulDevice, into fresh: some StatefulDevice) throws {
        try fresh.restoreState(device.savedState(), what: "test device")
    }

    /// Every prefix of `saved` and `saved` plus a byte are refused.
    static func expectRefusesCutOrPadded(_ saved: [UInt8], _ make: () -> any StatefulDevice) {
        for length in 0..<saved.count {
            #expect(throws: DeviceStateError.self) { try make().restoreState(Array(saved[..<length]), what: "test device") }
        }
        #expect(throws: DeviceStateError.self) { try make().restoreState(saved + [0], what: "test device") }
        #expect(throws: Never.self) { try make().restoreState(saved, what: "test device") }
    }

    /// `saved` with the byte at `offset` replaced is refused.
    static func expectRefuses(_ saved: [UInt8], byte value: UInt8, at offset: Int, _ make: () -> any StatefulDevice) {
        var damaged = saved
        damaged[offset] = value
        #expect(throws: DeviceStateError.self) { try make().restoreState(damaged, what: "test device") }
    }

    // MARK: 16550A

    static func makeUART(_ line: DeviceEventLog<Bool> = DeviceEventLog()) -> Serial16550 {
        Serial16550(output: { _ in }, interrupt: { line.append($0) })
    }

    /// Everything a driver can read, in an order both devices share (reads
    /// have side effects: IIR, LSR, MSR and RBR).
    static func registers(_ uart: Serial16550) -> [UInt32] {
        var values = [0x3FB, 0x3FC, 0x3FF, 0x3F9, 0x3FD, 0x3FE, 0x3FA, 0x3F8, 0x3F8, 0x3FD, 0x3F8].map {
            uart.read(port: UInt16($0), size: 1)
        }
        let lcr = uart.read(port: 0x3FB, size: 1)
        uart.write(port: 0x3FB, size: 1, value: lcr | 0x80)
        values += [uart.read(port: 0x3F8, size: 1), uart.read(port: 0x3F9, size: 1)]
        uart.write(port: 0x3FB, size: 1, value: lcr)
        return values
    }

    /// Divisor, line settings, FIFOs, scratch, and two bytes looped back.
    static func programmedUART() -> Serial16550 {
        let uart = makeUART()
        uart.write(port: 0x3FB, size: 1, value: 0x83)   // DLAB, 8N1
        uart.write(port: 0x3F8, size: 1, value: 0x0C)   // 9600 baud
        uart.write(port: 0x3F9, size: 1, value: 0x00)
        uart.write(port: 0x3FB, size: 1, value: 0x03)
        uart.write(port: 0x3FA, size: 1, value: 0x01)   // FIFOs on
        uart.write(port: 0x3FC, size: 1, value: 0x1B)   // loopback, OUT2, RTS, DTR
        uart.write(port: 0x3F9, size: 1, value: 0x0D)   // RDA, RLS, MSI
        uart.write(port: 0x3FF, size: 1, value: 0x5A)
        uart.write(port: 0x3F8, size: 1, value: 0x41)
        uart.write(port: 0x3F8, size: 1, value: 0x42)
        return uart
    }

    @Test func uartRegistersAndLoopedBackBytesComeBack() throws {
        let original = Self.programmedUART()
        let restored = Self.makeUART()
        try Self.roundTrip(original, into: restored)
        let before = Self.registers(original)
        #expect(Self.registers(restored) == before)
        #expect(before[7] == 0x41 && before[8] == 0x42)  // the FIFO came across, in order
    }

    @Test func uartHostInputStaysHostSide() throws {
        let original = Self.makeUART()
        original.enqueueInput([1, 2, 3])
        let restored = Self.makeUART()
        restored.enqueueInput([9])
        try Self.roundTrip(original, into: restored)
        #expect(restored.pendingInputCount == 1)
        #expect(restored.read(port: 0x3F8, size: 1) == 9)
    }

    @Test func restoredUARTReportsItsLineLevelOnce() throws {
        // THRE enabled with OUT2 set: an interrupt pending, the line high.
        let original = Self.makeUART()
        original.write(port: 0x3FC, size: 1, value: 0x08)
        original.write(port: 0x3F9, size: 1, value: 0x02)
        #expect(original.interruptLineLevel)
        let line = DeviceEventLog<Bool>()
        let restored = Self.makeUART(line)
        try Self.roundTrip(original, into: restored)
        #expect(line.all == [true])
        #expect(restored.interruptLineLevel)
        #expect(restored.read(port: 0x3FA, size: 1) & 0x0F == 0x02)    // THRE is what it reports
        #expect(line.all == [true, false])                              // and the read acknowledged it

        // Saved low, restored low: reported low as well (KVM keeps no level of its own).
        let quiet = DeviceEventLog<Bool>()
        try Self.roundTrip(Self.makeUART(), into: Self.makeUART(quiet))
        #expect(quiet.all == [false])
    }

    @Test func uartRefusesDamagedState() {
        // IER, LCR, MCR, SCR, DL (2), FIFOs, LSR errors, MSR inputs,
        // MSR deltas, THRE pending, block(FIFO), line level.
        let saved = Self.programmedUART().savedState()
        Self.expectRefusesCutOrPadded(saved) { Self.makeUART() }
        Self.expectRefuses(saved, byte: 0xFF, at: 0, { Self.makeUART() })     // IER high bits
        Self.expectRefuses(saved, byte: 0x20, at: 2, { Self.makeUART() })     // MCR bit 5
        Self.expectRefuses(saved, byte: 0x80, at: 7, { Self.makeUART() })     // an LSR error that is not OE
        Self.expectRefuses(saved, byte: 0x00, at: 8, { Self.makeUART() })     // MSR inputs not following MCR
        Self.expectRefuses(saved, byte: 2, at: 6, { Self.makeUART() })        // a flag that is not 0 or 1
        Self.expectRefuses(saved, byte: 17, at: 11, { Self.makeUART() })      // more looped-back bytes than a FIFO holds
        // Two looped-back bytes into a receiver without FIFOs (it holds one).
        Self.expectRefuses(saved, byte: 0, at: 6, { Self.makeUART() })
    }

    // MARK: CMOS

    static func rtc(at seconds: Int = 1_700_000_000) -> CMOSClock { CMOSClock(now: { seconds }) }

    static func cmos(_ rtc: CMOSClock, _ register: UInt8) -> UInt8 {
        rtc.write(port: 0x70, size: 1, value: UInt32(register))
        return UInt8(truncatingIfNeeded: rtc.read(port: 0x71, size: 1))
    }

    static func setCMOS(_ rtc: CMOSClock, _ register: UInt8, _ value: UInt8) {
        rtc.write(port: 0x70, size: 1, value: UInt32(register))
        rtc.write(port: 0x71, size: 1, value: UInt32(value))
    }

    @Test func cmosKeepsRAMOffsetAndIndex() throws {
        let original = Self.rtc()
        Self.setCMOS(original, 0x0B, 0x06)        // binary, 24-hour
        Self.setCMOS(original, 0x09, 99)          // the guest moves its clock to '99
        Self.setCMOS(original, 0x40, 0xA5)        // BIOS RAM
        original.write(port: 0x70, size: 1, value: 0x80 | 0x40)   // NMI masked, 0x40 selected
        let restored = Self.rtc()
        try Self.roundTrip(original, into: restored)
        #expect(restored.isNMIMasked)
        #expect(restored.read(port: 0x71, size: 1) == 0xA5)       // the index came across
        for register: UInt8 in [0, 2, 4, 6, 7, 8, 9, 0x0A, 0x0B, 0x32, 0x40] {
            #expect(Self.cmos(restored, register) == Self.cmos(original, register))
        }
        #expect(Self.cmos(restored, 9) == 99)
    }

    @Test func cmosKeepsAFrozenTime() throws {
        let original = Self.rtc()
        Self.setCMOS(original, 0x0B, 0x86)        // SET, binary, 24-hour
        Self.setCMOS(original, 0x04, 23)
        let restored = Self.rtc(at: 1_700_000_000 + 3600)           // restored an hour later
        try Self.roundTrip(original, into: restored)
        #expect(Self.cmos(restored, 0x04) == 23)                    // still frozen at what was written
        Self.setCMOS(restored, 0x0B, 0x06)                          // commit
        #expect(Self.cmos(restored, 0x04) == 23)
    }

    @Test func cmosRefusesDamagedState() {
        let original = Self.rtc()
        Self.setCMOS(original, 0x0B, 0x86)
        let saved = original.savedState()       // index, nmi, block(128), offset, frozen (8 + 6)
        Self.expectRefusesCutOrPadded(saved) { Self.rtc() }
        Self.expectRefuses(saved, byte: 0x80, at: 0, { Self.rtc() })             // index 128
        Self.expectRefuses(saved, byte: 127, at: 2, { Self.rtc() })              // a RAM block of 127 bytes
        Self.expectRefuses(saved, byte: 0x06, at: 6 + 0x0B, { Self.rtc() })      // SET off with a frozen time
        Self.expectRefuses(saved, byte: 13, at: 6 + 128 + 8 + 1 + 8, { Self.rtc() })    // month 13
        Self.expectRefuses(saved, byte: 0x80, at: 6 + 0x0A, { Self.rtc() })      // UIP stored
    }

    // MARK: i8042

    @Test func i8042KeepsCommandByteOutputBufferAndPendingCommand() throws {
        let original = I8042(reset: {})
        original.write(port: 0x64, size: 1, value: 0x60)    // write command byte
        original.write(port: 0x60, size: 1, value: 0x47)
        original.write(port: 0x64, size: 1, value: 0xD3)    // AUX loopback: a reply from the mouse
        original.write(port: 0x60, size: 1, value: 0x5A)
        original.write(port: 0x64, size: 1, value: 0xD1)    // write output port, parameter to come
        let restored = I8042(reset: {})
        try Self.roundTrip(original, into: restored)
        #expect(restored.commandByte == 0x47)
        #expect(restored.read(port: 0x64, size: 1) == original.read(port: 0x64, size: 1))
        #expect(restored.read(port: 0x60, size: 1) == 0x5A)
        // The pending 0xD1 takes its parameter on the restored controller.
        let resets = DeviceEventLog<Bool>()
        let watched = I8042(reset: { resets.append(true) })
        try Self.roundTrip(original, into: watched)
        watched.write(port: 0x60, size: 1, value: 0x02)     // reset line low
        #expect(resets.count == 1)
    }

    @Test func i8042RefusesDamagedState() {
        let original = I8042(reset: {})
        original.write(port: 0x64, size: 1, value: 0xD1)
        let saved = original.savedState()       // block(32), buffer, full, aux, awaiting, command, last, port
        Self.expectRefusesCutOrPadded(saved) { I8042(reset: {}) }
        Self.expectRefuses(saved, byte: 0xAA, at: 4 + 32 + 4, { I8042(reset: {}) })   // 0xAA takes no parameter
        Self.expectRefuses(saved, byte: 1, at: 4 + 32 + 2, { I8042(reset: {}) })      // AUX data in an empty buffer
        Self.expectRefuses(saved, byte: 31, at: 0, { I8042(reset: {}) })              // 31 bytes of RAM
    }

    // MARK: PCI host bridge

    @Test func hostBridgeKeepsItsLatchAndCommand() throws {
        let original = PCIHostBridge(resetControl: {})
        original.write(port: 0xCF8, size: 4, value: 0x8000_0004)
        original.write(port: 0xCFC, size: 2, value: 0x0000)             // host bridge command: all off
        original.write(port: 0xCF9, size: 1, value: 0x0A)               // hard + full reset chosen
        original.write(port: 0xCF8, size: 4, value: 0x8000_0804)       // then 00:01.0 selected
        let restored = PCIHostBridge(resetControl: {})
        try Self.roundTrip(original, into: restored)
        #expect(restored.read(port: 0xCF8, size: 4) == 0x8000_0804)
        #expect(restored.read(port: 0xCF9, size: 1) == 0x0A)
        restored.write(port: 0xCF8, size: 4, value: 0x8000_0004)
        #expect(restored.read(port: 0xCFC, size: 2) == 0)
    }

    @Test func hostBridgeRefusesDamagedState() {
        let original = PCIHostBridge(resetControl: {})
        original.write(port: 0xCF9, size: 1, value: 0x02)
        let saved = original.savedState()       // address, reset control, command
        Self.expectRefusesCutOrPadded(saved) { PCIHostBridge(resetControl: {}) }
        Self.expectRefuses(saved, byte: 0x04, at: 4, { PCIHostBridge(resetControl: {}) })   // the reset bit does not stick
        Self.expectRefuses(saved, byte: 0xFF, at: 6, { PCIHostBridge(resetControl: {}) })   // command bits 15:8 beyond the writable
        // Reset control held by a bridge that does not decode 0xCF9.
        #expect(throws: DeviceStateError.self) { try PCIHostBridge().restoreState(saved, what: "test device") }
    }

    // MARK: Power control

    @Test func powerControlRoundTripsAndRefusesUnknownBits() throws {
        let original = PowerControl(powerOff: {}, reset: {})
        original.pressPowerButton()
        let restored = PowerControl(powerOff: {}, reset: {})
        try Self.roundTrip(original, into: restored)
        #expect(restored.read(port: 0x601, size: 1) == 0)
        #expect(restored.read(port: 0x603, size: 1) == 1, "a press the guest has not seen yet stays pending")
        try restored.restoreState([0x80, 0x00], what: "power")
        #expect(restored.read(port: 0x601, size: 1) == 0x80 && restored.read(port: 0x603, size: 1) == 0)
        Self.expectRefusesCutOrPadded(original.savedState()) { PowerControl(powerOff: {}, reset: {}) }
        #expect(throws: DeviceStateError.self) { try restored.restoreState([0x01, 0x00], what: "power") }
        #expect(throws: DeviceStateError.self) { try restored.restoreState([0x00, 0x02], what: "power") }
    }

    // MARK: CPU hotplug

    static func hotplug() -> CPUHotplugController { CPUHotplugController(possibleCPUs: 4, enabledCPUs: 2) }

    @Test func hotplugKeepsStatusesPendingEventsAndSelector() throws {
        let original = Self.hotplug()
        _ = original.request(enabledCount: 3)                                   // CPU 2 insert pending
        original.write(port: 0x610, size: 4, value: 1)
        original.write(port: 0x614, size: 1, value: UInt32(CPUHotplugController.Command.eject))   // CPU 1 ejected
        original.write(port: 0x610, size: 4, value: 2)                          // CPU 2 selected
        let restored = Self.hotplug()
        try Self.roundTrip(original, into: restored)
        #expect((0..<4).map { restored.status(cpu: $0) } == [.enabled, [], [.enabled, .insertPending], []])
        #expect(restored.hasPendingEvents)
        #expect(restored.read(port: 0x610, size: 4) == 2)
        #expect(restored.read(port: 0x614, size: 1) == 0x03)
    }

    @Test func hotplugRefusesDamagedState() {
        let saved = Self.hotplug().savedState()        // selector, block(4 statuses)
        Self.expectRefusesCutOrPadded(saved) { Self.hotplug() }
        Self.expectRefuses(saved, byte: 0, at: 8, { Self.hotplug() })          // the boot CPU absent
        Self.expectRefuses(saved, byte: 0x02, at: 10, { Self.hotplug() })      // an insert pending on an absent CPU
        Self.expectRefuses(saved, byte: 0x07, at: 9, { Self.hotplug() })       // insert and remove both pending
        Self.expectRefuses(saved, byte: 0x09, at: 9, { Self.hotplug() })       // a status bit that does not exist
        // State for another machine's CPU count.
        #expect(throws: DeviceStateError.self) {
            try CPUHotplugController(possibleCPUs: 3, enabledCPUs: 1).restoreState(saved, what: "hotplug")
        }
    }
}
