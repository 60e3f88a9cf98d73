import Synchronization

/// One PCI function's configuration space, as the host bridge forwards
/// type-1 configuration accesses to it.
///
/// `offset` is the byte offset in the function's configuration space
/// (0..<256 through the I/O ports) and the access is naturally aligned:
/// `size` is 1, 2 or 4 and `offset` a multiple of it, so it never crosses a
/// dword. Reads return the value in the low `size` bytes. Everything comes
/// from the guest: a function must accept any offset and value. Called from
/// vCPU threads without the bridge's lock held.
public protocol PCIFunction: AnyObject, Sendable {
    func configRead(offset: UInt16, size: Int) -> UInt32
    func configWrite(offset: UInt16, size: Int, value: UInt32)
}

/// The PCI host bridge's configuration mechanism #1 at 0xCF8...0xCFF, with
/// bus 0 as the only bus. Device 00:00.0 is the host bridge itself; the VMM
/// places further functions (virtio-pci devices) with `register`. Any other
/// bus, device or function reads all ones, as an empty slot does.
///
/// - CONFIG_ADDRESS, 0xCF8: only 32-bit accesses reach it; it reads back as
///   written. Bit 31 enables configuration cycles, bits 23:16 are the bus,
///   15:11 the device, 10:8 the function, 7:2 the dword. Bits 27:24 are
///   AMD's extension to registers 256...4095; they select nothing here
///   (all ones: no extended capabilities) rather than alias the first 256
///   bytes. Bits 30:28 and 1:0 are ignored.
/// - CONFIG_DATA, 0xCFC...0xCFF: 1-, 2- and 4-byte naturally aligned
///   accesses at the byte offset within the selected dword.
/// - Reset control, 0xCF9 (Intel chipsets; a common ACPI FADT reset
///   register): a byte write with bit 2 set resets the machine, if the VMM
///   passed `resetControl`. Without it, 0xCF9 is not decoded.
/// - Everything else in the range, including 8/16-bit accesses at 0xCF8,
///   reads all ones and is ignored, as on a chipset that forwards them to an
///   empty bus.
public final class PCIHostBridge: PortDevice, @unchecked Sendable {
    public static let configAddressPort: UInt16 = 0xCF8
    public static let resetControlPort: UInt16 = 0xCF9
    public static let configDataPort: UInt16 = 0xCFC
    public let ports: ClosedRange<UInt16> = PCIHostBridge.configAddressPort...(PCIHostBridge.configDataPort + 3)

    /// Intel's vendor ID with 0x0D57, the ID Cloud Hypervisor and
    /// Firecracker give their virtual host bridge: a real Intel chipset ID
    /// would bind Linux's AGP, EDAC or quirk code to registers that are not
    /// there.
    public static let vendorID: UInt16 = 0x8086
    public static let deviceID: UInt16 = 0x0D57

    private let resetControl: (@Sendable () -> Void)?
    private let state: Mutex<BridgeState>
    /// 00:00.0, kept apart from the slots for its saved state.
    private let hostBridge = HostBridgeFunction()

    /// - Parameter resetControl: called when the guest resets the machine
    ///   through 0xCF9; nil leaves 0xCF9 undecoded.
    public init(resetControl: (@Sendable () -> Void)? = nil) {
        self.resetControl = resetControl
        state = Mutex(BridgeState(hostBridge: hostBridge))
    }

    /// Places `function` at bus 0, `device`, function number `number`.
    /// Refuses device 0 (the host bridge), numbers out of range (device
    /// 0...31, function 0...7) and occupied slots. A function other than 0
    /// is found by a guest only if function 0 of that device reports itself
    /// multi-function (header type bit 7).
    public func register(_ function: any PCIFunction, device: UInt8, function number: UInt8 = 0) -> Bool {
        guard (1...31).contains(device), number <= 7 else { return false }
        let slot = Int(device) << 3 | Int(number)
        return state.withLock { bridge in
            guard bridge.functions[slot] == nil else { return false }
            bridge.functions[slot] = function
            return true
        }
    }

    public func read(port: UInt16, size: Int) -> UInt32 {
        let allOnes = Self.allOnes(size: size)
        switch (port, size) {
        case (Self.configAddressPort, 4):
            return state.withLock { $0.configAddress }
        case (Self.resetControlPort, 1) where resetControl != nil:
            return UInt32(state.withLock { $0.resetControl })
        case (Self.configDataPort...(Self.configDataPort + 3), _):
            guard let (function, offset) = selectedFunction(dataPort: port, size: size) else { return allOnes }
            return function.configRead(offset: offset, size: size) & allOnes
        default:
            return allOnes
        }
    }

    public func write(port: UInt16, size: Int, value: UInt32) {
        switch (port, size) {
        case (Self.configAddressPort, 4):
            state.withLock { $0.configAddress = value }
        case (Self.resetControlPort, 1):
            guard let resetControl else { return }
            let byte = UInt8(truncatingIfNeeded: value)
            // Bits 1 (hard reset) and 3 (full reset) choose the kind of
            // reset and read back; bit 2 performs it and does not stick.
            state.withLock { $0.resetControl = byte & ResetControl.retainedBits }
            if byte & ResetControl.resetCPU != 0 { resetControl() }
        case (Self.configDataPort...(Self.configDataPort + 3), _):
            guard let (function, offset) = selectedFunction(dataPort: port, size: size) else { return }
            function.configWrite(offset: offset, size: size, value: value & Self.allOnes(size: size))
        default:
            break
        }
    }

    /// The function and configuration offset a CONFIG_DATA access reaches,
    /// or nil when configuration cycles are off, the access is misaligned or
    /// of a bad size, or the slot is empty.
    private func selectedFunction(dataPort port: UInt16, size: Int) -> (any PCIFunction, UInt16)? {
        let byteInDword = Int(port - Self.configDataPort)
        guard size == 1 || size == 2 || size == 4, byteInDword % size == 0 else { return nil }
        // Fetch under the lock, call the function outside it: functions do
        // their own locking, and a slow one must not stall the address latch.
        return state.withLock { bridge -> (any PCIFunction, UInt16)? in
            let address = bridge.configAddress
            guard address & ConfigAddress.enable != 0,
                  address & ConfigAddress.extendedRegisterMask == 0,
                  (address >> ConfigAddress.busShift) & 0xFF == 0
            else { return nil }
            let slot = Int((address >> ConfigAddress.functionShift) & 0xFF)   // device:function
            guard let function = bridge.functions[slot] else { return nil }
            let offset = UInt16(address & ConfigAddress.registerMask) + UInt16(byteInDword)
            return (function, offset)
        }
    }

    private static func allOnes(size: Int) -> UInt32 {
        switch size {
        case 1: 0xFF
        case 2: 0xFFFF
        default: 0xFFFF_FFFF
        }
    }
}

private enum ConfigAddress {
    static let enable: UInt32 = 0x8000_0000
    static let busShift: UInt32 = 16
    /// Device (bits 15:11) and function (10:8) together: the slot index.
    static let functionShift: UInt32 = 8
    static let registerMask: UInt32 = 0xFC
    static let extendedRegisterMask: UInt32 = 0x0F00_0000
}

private enum ResetControl {
    static let hardReset: UInt8 = 0x02
    static let resetCPU: UInt8 = 0x04
    static let fullReset: UInt8 = 0x08
    static let retainedBits: UInt8 = hardReset | fullReset
}

private struct BridgeState {
    var configAddress: UInt32 = 0
    var resetControl: UInt8 = 0
    /// Bus 0's 256 device:function slots.
    var functions: [(any PCIFunction)?]

    init(hostBridge: HostBridgeFunction) {
        functions = Array(repeating: nil, count: 256)
        functions[0] = hostBridge
    }
}

/// 00:00.0: a type-0 header with IDs, class "host bridge", a command
/// register that keeps the bits a host bridge implements, and nothing else:
/// no BARs, no capabilities, no interrupt pin.
final class HostBridgeFunction: PCIFunction, @unchecked Sendable {
    /// I/O space, memory space, bus master, parity error response, SERR#,
    /// INTx disable: bits a driver may set; the rest read 0.
    static let writableCommandBits: UInt16 = 0x0547
    /// Memory decoding and bus mastering on, as firmware leaves a host bridge.
    static let defaultCommand: UInt16 = 0x0006
    /// Base class 06 (bridge), subclass 00 (host), interface 00; revision 0.
    static let classAndRevision: UInt32 = 0x0600_0000

    /// The command register; the bridge saves and restores it.
    let command = Atomic<UInt16>(HostBridgeFunction.defaultCommand)

    func configRead(offset: UInt16, size: Int) -> UInt32 {
        let dword: UInt32
        switch offset & ~3 {
        case 0x00: dword = UInt32(PCIHostBridge.deviceID) << 16 | UInt32(PCIHostBridge.vendorID)
        case 0x04: dword = UInt32(command.load(ordering: .relaxed))   // status 0: nothing to report
        case 0x08: dword = Self.classAndRevision
        default: dword = 0   // header type 0, BIST, BARs, pointers, interrupt: all 0
        }
        return dword >> (8 * UInt32(offset & 3))
    }

    func configWrite(offset: UInt16, size: Int, value: UInt32) {
        // Only the command register (the low half of dword 0x04) is
        // writable; status bits are write-one-to-clear and never set.
        guard offset & ~3 == 0x04, offset & 3 < 2 else { return }
        let shift = 8 * UInt32(offset & 3)
        let laneMask: UInt32 = size >= 4 ? 0xFFFF_FFFF : (1 << (8 * UInt32(size))) - 1
        let written = UInt16(truncatingIfNeeded: (value & laneMask) << shift)
        let keptMask = ~UInt16(truncatingIfNeeded: laneMask << shift)
        var current = command.load(ordering: .relaxed)
        while true {
            let updated = (current & keptMask | written) & Self.writableCommandBits
            let (exchanged, original) = command.compareExchange(
                expected: current, desired: updated, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}

// MARK: - Saved state

/// The CONFIG_ADDRESS latch, the reset control register and 00:00.0's
/// command register. The functions in the other slots are devices of their
/// own and save themselves; the slots are the VMM's build, not state.
extension PCIHostBridge: StatefulDevice {
    public func saveState(into writer: inout StateWriter) {
        let (address, reset) = state.withLock { ($0.configAddress, $0.resetControl) }
        writer.u32(address)
        writer.u8(reset)
        writer.u16(hostBridge.command.load(ordering: .relaxed))
    }

    public func restoreState(from reader: inout StateReader) throws(DeviceStateError) {
        let address = try reader.u32()
        let reset = try reader.u8()
        let command = try reader.u16()
        // Any CONFIG_ADDRESS value reads back as written; the others keep
        // only the bits a guest write can leave.
        guard reset & ~ResetControl.retainedBits == 0, resetControl != nil || reset == 0 else {
            throw DeviceStateError("\(reader.what): reset control 0x\(String(reset, radix: 16)) this bridge cannot hold")
        }
        guard command & ~HostBridgeFunction.writableCommandBits == 0 else {
            throw DeviceStateError("\(reader.what): host bridge command 0x\(String(command, radix: 16)) has bits it does not implement")
        }
        state.withLock {
            $0.configAddress = address
            $0.resetControl = reset
        }
        hostBridge.command.store(command, ordering: .relaxed)
    }
}
