import Synchronization

/// The i8042 keyboard controller, reduced to what a VMM needs: the guest can
/// find it, self-test it, program its command byte, and reset the machine
/// through it (Linux's `reboot=kbd`, its default fallback after ACPI, pulses
/// the reset line with command 0xFE).
///
/// No keyboard or mouse is attached and the controller raises no interrupts
/// (IRQ 1 and 12 stay low): bytes for the devices are accepted and dropped.
/// The output buffer holds only controller replies, so it is empty unless
/// the guest just asked for one, and status reads "output buffer empty".
///
/// Ports: data at 0x60, status/command at 0x64. A `PortDevice` decodes one
/// range, so the controller claims 0x60...0x64 and answers 0x61...0x63 as an
/// absent device would (reads 0xFF, writes dropped). Port 0x61 (NMI status
/// and the PC speaker gate) is handled by KVM's in-kernel PIT when the VMM
/// creates one, before it ever reaches this device.
public final class I8042: PortDevice, @unchecked Sendable {
    public static let dataPort: UInt16 = 0x60
    public static let commandPort: UInt16 = 0x64
    public let ports: ClosedRange<UInt16> = I8042.dataPort...I8042.commandPort

    private let reset: @Sendable () -> Void
    private let state = Mutex(ControllerState())

    /// - Parameter reset: called when the guest pulses the CPU reset line
    ///   (command 0xFE, or any 0xF0...0xFF pulse with bit 0 clear, or an
    ///   output port write with bit 0 clear). Called outside the device lock.
    public init(reset: @escaping @Sendable () -> Void) {
        self.reset = reset
    }

    public func read(port: UInt16, size: Int) -> UInt32 {
        state.withLock { controller in
            ISAByteLanes.read(port: port, size: size, decoded: ports) { bytePort in
                switch bytePort {
                case I8042.dataPort: controller.readData()
                case I8042.commandPort: controller.status
                default: 0xFF
                }
            }
        }
    }

    public func write(port: UInt16, size: Int, value: UInt32) {
        let pulsedReset = state.withLock { controller in
            var pulsedReset = false
            ISAByteLanes.write(port: port, size: size, value: value, decoded: ports) { bytePort, byte in
                switch bytePort {
                case I8042.dataPort: pulsedReset = controller.writeData(byte) || pulsedReset
                case I8042.commandPort: pulsedReset = controller.writeCommand(byte) || pulsedReset
                default: break
                }
            }
            return pulsedReset
        }
        // Outside the lock: the VMM's reset may well touch this device.
        if pulsedReset { reset() }
    }

    /// The controller command byte (internal RAM byte 0), for tests and
    /// inspection.
    public var commandByte: UInt8 { state.withLock { $0.ram[0] } }
}

private enum Status {
    static let outputBufferFull: UInt8 = 0x01
    static let systemFlag: UInt8 = 0x04
    /// Last write was to the command port (the A2 address line).
    static let lastWriteWasCommand: UInt8 = 0x08
    /// Keyboard not inhibited (the front-panel key lock is open).
    static let keyboardUnlocked: UInt8 = 0x10
    static let auxOutputBufferFull: UInt8 = 0x20
}

private enum CommandByte {
    static let keyboardInterrupt: UInt8 = 0x01
    static let systemFlag: UInt8 = 0x04
    static let keyboardDisabled: UInt8 = 0x10
    static let auxDisabled: UInt8 = 0x20
    static let translate: UInt8 = 0x40
}

private enum Command {
    static let readRAM: ClosedRange<UInt8> = 0x20...0x3F     // 0x20: command byte
    static let writeRAM: ClosedRange<UInt8> = 0x60...0x7F    // 0x60: command byte
    static let disableAux: UInt8 = 0xA7
    static let enableAux: UInt8 = 0xA8
    static let testAux: UInt8 = 0xA9
    static let selfTest: UInt8 = 0xAA
    static let testKeyboard: UInt8 = 0xAB
    static let disableKeyboard: UInt8 = 0xAD
    static let enableKeyboard: UInt8 = 0xAE
    static let readOutputPort: UInt8 = 0xD0
    static let writeOutputPort: UInt8 = 0xD1
    static let writeKeyboardBuffer: UInt8 = 0xD2
    static let writeAuxBuffer: UInt8 = 0xD3
    static let writeToAux: UInt8 = 0xD4
    /// 0xF0...0xFF pulse output port bits 3:0 low for each clear bit of the
    /// command's low nibble; bit 0 is the CPU reset line.
    static let pulseOutputLines: ClosedRange<UInt8> = 0xF0...0xFF
}

private let selfTestPassed: UInt8 = 0x55
private let interfaceTestPassed: UInt8 = 0x00
/// Output port bit 0: the CPU reset line, active low.
private let outputPortResetLine: UInt8 = 0x01

private struct ControllerState {
    /// 32 bytes of internal RAM; byte 0 is the command byte. The default
    /// resembles what PC firmware leaves: keyboard interrupt on, system
    /// flag set (POST passed), scancode translation on.
    var ram = [UInt8](repeating: 0, count: 32)
    var outputBuffer: UInt8 = 0
    var outputBufferFull = false
    var outputBufferFromAux = false
    /// A command waiting for its parameter byte at the data port.
    var commandAwaitingData: UInt8?
    var lastWriteWasCommand = false
    /// Bit 0 reset (active low), bit 1 A20 gate: both high, running.
    var outputPort: UInt8 = 0x03

    init() {
        ram[0] = CommandByte.keyboardInterrupt | CommandByte.systemFlag | CommandByte.translate
    }

    var status: UInt8 {
        var status = Status.keyboardUnlocked | (ram[0] & CommandByte.systemFlag)
        if outputBufferFull { status |= Status.outputBufferFull }
        if outputBufferFull && outputBufferFromAux { status |= Status.auxOutputBufferFull }
        if lastWriteWasCommand { status |= Status.lastWriteWasCommand }
        return status
    }

    /// Reading the data port empties the output buffer; an empty buffer
    /// still returns its last byte, as the chip does.
    mutating func readData() -> UInt8 {
        outputBufferFull = false
        outputBufferFromAux = false
        return outputBuffer
    }

    private mutating func reply(_ byte: UInt8, fromAux: Bool = false) {
        outputBuffer = byte
        outputBufferFull = true
        outputBufferFromAux = fromAux
    }

    /// Returns whether the write pulsed the reset line.
    mutating func writeCommand(_ command: UInt8) -> Bool {
        lastWriteWasCommand = true
        // A new command abandons one still waiting for its parameter.
        commandAwaitingData = nil
        switch command {
        case Command.readRAM:
            reply(ram[Int(command - Command.readRAM.lowerBound)])
        case Command.writeRAM, Command.writeOutputPort, Command.writeKeyboardBuffer,
             Command.writeAuxBuffer, Command.writeToAux:
            commandAwaitingData = command
        case Command.disableAux:
            ram[0] |= CommandByte.auxDisabled
        case Command.enableAux:
            ram[0] &= ~CommandByte.auxDisabled
        case Command.disableKeyboard:
            ram[0] |= CommandByte.keyboardDisabled
        case Command.enableKeyboard:
            ram[0] &= ~CommandByte.keyboardDisabled
        case Command.testAux, Command.testKeyboard:
            reply(interfaceTestPassed)
        case Command.selfTest:
            // A passed self-test sets the system flag.
            ram[0] |= CommandByte.systemFlag
            reply(selfTestPassed)
        case Command.readOutputPort:
            reply(outputPort)
        case Command.pulseOutputLines:
            return command & outputPortResetLine == 0
        default:
            break   // Unimplemented commands are ignored.
        }
        return false
    }

    /// Returns whether the write pulsed the reset line.
    mutating func writeData(_ byte: UInt8) -> Bool {
        lastWriteWasCommand = false
        guard let command = commandAwaitingData else {
            return false    // For the keyboard: none attached.
        }
        commandAwaitingData = nil
        switch command {
        case Command.writeRAM:
            ram[Int(command - Command.writeRAM.lowerBound)] = byte
        case Command.writeOutputPort:
            outputPort = byte
            return byte & outputPortResetLine == 0
        case Command.writeKeyboardBuffer:
            reply(byte)
        case Command.writeAuxBuffer:
            // Linux's AUX loopback test: the byte comes back as if the
            // mouse had sent it.
            reply(byte, fromAux: true)
        default:
            break   // writeToAux: no mouse attached.
        }
        return false
    }
}

// MARK: - Saved state

extension I8042: StatefulDevice {
    public func saveState(into writer: inout StateWriter) {
        state.withLock { $0.save(into: &writer) }
    }

    public func restoreState(from reader: inout StateReader) throws(DeviceStateError) {
        let restored = try ControllerState(from: &reader)
        state.withLock { $0 = restored }
    }
}

extension ControllerState {
    func save(into w: inout StateWriter) {
        w.block(ram)
        w.u8(outputBuffer)
        w.bool(outputBufferFull)
        w.bool(outputBufferFromAux)
        w.bool(commandAwaitingData != nil)
        w.u8(commandAwaitingData ?? 0)
        w.bool(lastWriteWasCommand)
        w.u8(outputPort)
    }

    init(from r: inout StateReader) throws(DeviceStateError) {
        self.init()
        let savedRAM = try r.block(limit: 32)
        outputBuffer = try r.u8()
        outputBufferFull = try r.bool()
        outputBufferFromAux = try r.bool()
        let awaiting = try r.bool()
        let command = try r.u8()
        lastWriteWasCommand = try r.bool()
        outputPort = try r.u8()

        func refuse(_ what: String) -> DeviceStateError { DeviceStateError("\(r.what): \(what)") }
        guard savedRAM.count == 32 else { throw refuse("\(savedRAM.count) bytes of controller RAM, not 32") }
        ram = savedRAM
        guard !outputBufferFromAux || outputBufferFull else { throw refuse("an empty output buffer marked as from the AUX port") }
        if awaiting {
            // Only the commands that take a parameter byte wait for one.
            switch command {
            case Command.writeRAM, Command.writeOutputPort, Command.writeKeyboardBuffer,
                 Command.writeAuxBuffer, Command.writeToAux:
                commandAwaitingData = command
            default:
                throw refuse("command 0x\(String(command, radix: 16)) waiting for a parameter it does not take")
            }
        } else if command != 0 {
            throw refuse("a command byte saved with no command waiting")
        }
    }
}
