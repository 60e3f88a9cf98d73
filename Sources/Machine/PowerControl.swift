import Synchronization

/// The hardware-reduced ACPI sleep and reset registers (ACPI 6.4 §4.8.3.7,
/// §4.8.3.6) the FADT points at: Linux powers off by writing SLP_TYP (the
/// `\_S5` value, 5) with SLP_EN to the sleep control register, and resets
/// through the reset register. A hardware-reduced machine has no fixed
/// power button, so the fourth port is the status register of the DSDT's
/// control-method power button (PNP0C0C): the VMM sets its bit 0 when the
/// host asks the guest to shut down (`xl shutdown` of an HVM guest, as Xen
/// sends an ACPI power button event) and raises the GED's interrupt; the
/// GED's `_EVT` clears it (write 1 to clear) and notifies the button, and
/// the guest's ACPI button driver reports KEY_POWER (systemd-logind or
/// acpid then power the guest off). Four consecutive ports from `base`:
/// sleep control, sleep status, reset, power button status.
public final class PowerControl: PortDevice, @unchecked Sendable {
    public let ports: ClosedRange<UInt16>
    public var sleepControlPort: UInt16 { ports.lowerBound }
    public var sleepStatusPort: UInt16 { ports.lowerBound + 1 }
    public var resetPort: UInt16 { ports.lowerBound + 2 }
    public var powerButtonStatusPort: UInt16 { ports.lowerBound + 3 }
    /// Bit 0 of the power button status register: pressed, not yet seen.
    public static let powerButtonPressed: UInt8 = 0x01
    /// The value Linux writes to the reset register (the FADT says so).
    public static let resetValue: UInt8 = 0x01
    /// `\_S5`'s SLP_TYP in the DSDT.
    public static let softOffType: UInt32 = 5

    private let powerOff: @Sendable () -> Void
    private let reset: @Sendable () -> Void
    private let wakeStatus = Atomic<UInt8>(0)
    private let buttonStatus = Atomic<UInt8>(0)

    public init(base: UInt16 = 0x600, powerOff: @escaping @Sendable () -> Void, reset: @escaping @Sendable () -> Void) {
        ports = base...(base + 3)
        self.powerOff = powerOff
        self.reset = reset
    }

    public func read(port: UInt16, size: Int) -> UInt32 {
        switch port {
        case sleepStatusPort: UInt32(wakeStatus.load(ordering: .relaxed))
        case powerButtonStatusPort: UInt32(buttonStatus.load(ordering: .acquiring))
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
        case powerButtonStatusPort:
            buttonStatus.bitwiseAnd(~UInt8(truncatingIfNeeded: value), ordering: .acquiringAndReleasing)
        default:
            break
        }
    }

    /// Presses the power button: the status bit is set until the guest
    /// clears it. The caller raises the event interrupt.
    public func pressPowerButton() {
        buttonStatus.bitwiseOr(Self.powerButtonPressed, ordering: .acquiringAndReleasing)
    }

    /// Whether a press is still unseen by the guest.
    public var powerButtonPending: Bool { buttonStatus.load(ordering: .acquiring) != 0 }
}

// MARK: - Saved state

/// The sleep status and power button status registers are all there is:
/// the other two registers act and hold nothing.
extension PowerControl: StatefulDevice {
    /// WAK_STS (bit 7), the one status bit hardware-reduced ACPI defines.
    static let wakeStatusBit: UInt8 = 0x80

    public func saveState(into writer: inout StateWriter) {
        writer.u8(wakeStatus.load(ordering: .relaxed))
        writer.u8(buttonStatus.load(ordering: .relaxed))
    }

    public func restoreState(from reader: inout StateReader) throws(DeviceStateError) {
        let status = try reader.u8()
        guard status & ~Self.wakeStatusBit == 0 else {
            throw DeviceStateError("\(reader.what): sleep status 0x\(String(status, radix: 16)) has bits the register does not have")
        }
        let button = try reader.u8()
        guard button & ~Self.powerButtonPressed == 0 else {
            throw DeviceStateError("\(reader.what): power button status 0x\(String(button, radix: 16)) has bits the register does not have")
        }
        wakeStatus.store(status, ordering: .relaxed)
        buttonStatus.store(button, ordering: .relaxed)
    }
}
