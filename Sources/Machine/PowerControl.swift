import Synchronization

/// The hardware-reduced ACPI sleep and reset registers (ACPI 6.4 §4.8.3.7,
/// §4.8.3.6) the FADT points at: Linux powers off by writing SLP_TYP (the
/// `\_S5` value, 5) with SLP_EN to the sleep control register, and resets
/// through the reset register. Three consecutive ports from `base`:
/// sleep control, sleep status, reset.
public final class PowerControl: PortDevice, @unchecked Sendable {
    public let ports: ClosedRange<UInt16>
    public var sleepControlPort: UInt16 { ports.lowerBound }
    public var sleepStatusPort: UInt16 { ports.lowerBound + 1 }
    public var resetPort: UInt16 { ports.lowerBound + 2 }
    /// The value Linux writes to the reset register (the FADT says so).
    public static let resetValue: UInt8 = 0x01
    /// `\_S5`'s SLP_TYP in the DSDT.
    public static let softOffType: UInt32 = 5

    private let powerOff: @Sendable () -> Void
    private let reset: @Sendable () -> Void
    private let wakeStatus = Atomic<UInt8>(0)

    public init(base: UInt16 = 0x600, powerOff: @escaping @Sendable () -> Void, reset: @escaping @Sendable () -> Void) {
        ports = base...(base + 2)
        self.powerOff = powerOff
        self.reset = reset
    }

    public func read(port: UInt16, size: Int) -> UInt32 {
        switch port {
        case sleepStatusPort: UInt32(wakeStatus.load(ordering: .relaxed))
        case sleepControlPort, resetPort: 0
        default: 0xffff_ffff
        }
    }

    public func write(port: UInt16, size: Int, value: UInt32) {
        switch port {
        case sleepControlPort:
            // SLP_EN is bit 5, SLP_TYP bits 4:2. Other sleep states are not
            // offered (the DSDT names only \_S5), so only S5 acts.
            if value & 0x20 != 0 && (value >> 2) & 7 == Self.softOffType { powerOff() }
        case sleepStatusPort:
            wakeStatus.store(0, ordering: .relaxed)             // write-1-to-clear; nothing ever wakes
        case resetPort:
            if UInt8(truncatingIfNeeded: value) == Self.resetValue { reset() }
        default:
            break
        }
    }
}

// MARK: - Saved state

/// The sleep status register is all there is: the other two registers act
/// and hold nothing.
extension PowerControl: StatefulDevice {
    /// WAK_STS (bit 7), the one status bit hardware-reduced ACPI defines.
    static let wakeStatusBit: UInt8 = 0x80

    public func saveState(into writer: inout StateWriter) {
        writer.u8(wakeStatus.load(ordering: .relaxed))
    }

    public func restoreState(from reader: inout StateReader) throws(DeviceStateError) {
        let status = try reader.u8()
        guard status & ~Self.wakeStatusBit == 0 else {
            throw DeviceStateError("\(reader.what): sleep status 0x\(String(status, radix: 16)) has bits the register does not have")
        }
        wakeStatus.store(status, ordering: .relaxed)
    }
}
