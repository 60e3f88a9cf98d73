import Synchronization

/// A National Semiconductor 16550A UART, as COM1 (0x3F8, IRQ 4) by default:
/// the guest's serial console.
///
/// Transmission is instant: a byte written to THR goes to `output` at once,
/// so THR and the transmitter are always empty (LSR THRE and TEMT set) and a
/// THR write completes before the `out` instruction returns.
///
/// Reception: host input queued by `enqueueInput` (at most
/// `pendingInputLimit` bytes) is what the guest reads from RBR, one byte at
/// a time, as if each arrived just as the previous one was read. So the
/// guest never sees an overrun from host input, and nothing queued is ever
/// lost: input that does not fit is refused, not queued (`enqueueInput`
/// returns how much it took, the caller keeps the rest, and the refusals
/// are counted in `refusedInputByteCount`), and FIFO resets do not discard
/// it either. Real hardware would drop what arrives before the driver is up;
/// a VMM holds it for the guest instead, like the PV console. The VMM paces
/// input with `hasRoomForInput`.
///
/// Loopback mode (MCR bit 4) is modelled as on the chip, because Linux's
/// probe relies on it: transmitted bytes land in the receive FIFO (16 bytes
/// with FIFOs enabled, one without; a byte arriving at a full receiver is an
/// overrun, LSR OE), FIFO resets empty it, and the modem inputs follow the
/// MCR outputs. Host input waits until loopback ends, so test bytes and the
/// user's typing never mix; bytes looped back are read before it.
///
/// The interrupt line is level-triggered: it is high while an enabled source
/// is pending, MCR OUT2 is set and loopback is off. On a PC, OUT2 gates the
/// UART's interrupt output onto the ISA IRQ line, and loopback disconnects
/// OUT2; Linux sets OUT2 when it opens the port and clears it on close.
/// `interrupt` is called, under the device lock, only when the level changes,
/// so concurrent callers cannot reorder a raise and a lower; it must not call
/// back into the device.
public final class Serial16550: PortDevice, @unchecked Sendable {
    public let ports: ClosedRange<UInt16>
    /// The ISA IRQ the VMM wires the line to (4 for COM1, 3 for COM2).
    public let irq: UInt8
    /// The most host input bytes queued for the guest at once.
    public let pendingInputLimit: Int

    private let output: @Sendable (UInt8) -> Void
    private let interrupt: @Sendable (Bool) -> Void
    private let state: Mutex<UARTState>

    /// - Parameters:
    ///   - base: the first of the eight ports.
    ///   - irq: the IRQ the line is wired to; the device only reports it.
    ///   - pendingInputLimit: the bound on queued host input, in bytes.
    ///   - output: receives every byte the guest transmits, in order.
    ///   - interrupt: the new level of the interrupt line, on every change.
    public init(
        base: UInt16 = 0x3F8, irq: UInt8 = 4, pendingInputLimit: Int = 64 * 1024,
        output: @escaping @Sendable (UInt8) -> Void,
        interrupt: @escaping @Sendable (Bool) -> Void
    ) {
        precondition(base <= 0xFFF8, "the eight UART ports must fit in the port space")
        ports = base...(base + 7)
        self.irq = irq
        self.pendingInputLimit = max(1, pendingInputLimit)
        self.output = output
        self.interrupt = interrupt
        state = Mutex(UARTState(pendingInputLimit: self.pendingInputLimit))
    }

    public func read(port: UInt16, size: Int) -> UInt32 {
        state.withLock { uart in
            let value = ISAByteLanes.read(port: port, size: size, decoded: ports) { bytePort in
                uart.read(offset: Int(bytePort - ports.lowerBound))
            }
            updateInterruptLine(&uart)
            return value
        }
    }

    public func write(port: UInt16, size: Int, value: UInt32) {
        // At most one byte of an access can land on THR (offset 0).
        let transmitted: UInt8? = state.withLock { uart in
            var transmitted: UInt8?
            ISAByteLanes.write(port: port, size: size, value: value, decoded: ports) { bytePort, byte in
                if let sent = uart.write(offset: Int(bytePort - ports.lowerBound), value: byte) {
                    transmitted = sent
                }
            }
            updateInterruptLine(&uart)
            return transmitted
        }
        // Outside the lock: a slow host terminal must not stall the input
        // thread. Ordering holds for a guest that serialises its THR writes,
        // because the write returns only after `output` has the byte.
        if let transmitted { output(transmitted) }
    }

    /// Queues host input for the guest; returns how many bytes, from the
    /// front of `bytes`, were taken. The rest did not fit under
    /// `pendingInputLimit` and is left to the caller.
    @discardableResult
    public func enqueueInput(_ bytes: some Collection<UInt8>) -> Int {
        state.withLock { uart in
            let accepted = uart.receiveFromHost(bytes)
            updateInterruptLine(&uart)
            return accepted
        }
    }

    /// Whether `enqueueInput` would take at least one more byte.
    public var hasRoomForInput: Bool { state.withLock { $0.hostInput.count < $0.hostInput.capacity } }

    /// Host input not yet read by the guest.
    public var pendingInputCount: Int { state.withLock { $0.hostInput.count } }

    /// Host input bytes `enqueueInput` refused because the queue was full.
    public var refusedInputByteCount: Int { state.withLock { $0.refusedInputByteCount } }

    /// The interrupt line's level as last reported to `interrupt`.
    public var interruptLineLevel: Bool { state.withLock { $0.reportedLineLevel } }

    private func updateInterruptLine(_ uart: inout UARTState) {
        let level = uart.interruptLineLevel
        guard level != uart.reportedLineLevel else { return }
        uart.reportedLineLevel = level
        interrupt(level)
    }
}

// MARK: - Register file

/// Register offsets from the base port.
private enum UARTRegister {
    static let data = 0               // RBR (read) / THR (write); DLL with DLAB
    static let interruptEnable = 1    // IER; DLM with DLAB
    static let interruptID = 2        // IIR (read) / FCR (write)
    static let lineControl = 3        // LCR
    static let modemControl = 4       // MCR
    static let lineStatus = 5         // LSR
    static let modemStatus = 6        // MSR
    static let scratch = 7            // SCR
}

private enum IER {
    static let receivedData: UInt8 = 0x01
    static let transmitterEmpty: UInt8 = 0x02
    static let lineStatus: UInt8 = 0x04
    static let modemStatus: UInt8 = 0x08
    /// A 16550A implements only the low four bits; Linux checks that the
    /// high four read back as zero (XScale, 16750 and EFR-bearing chips
    /// differ there).
    static let implemented: UInt8 = 0x0F
}

private enum FCR {
    static let enableFIFOs: UInt8 = 0x01
    static let clearReceiver: UInt8 = 0x02
}

private enum LCR {
    static let divisorLatchAccess: UInt8 = 0x80
}

private enum MCR {
    static let dataTerminalReady: UInt8 = 0x01
    static let requestToSend: UInt8 = 0x02
    static let out1: UInt8 = 0x04
    static let out2: UInt8 = 0x08
    static let loopback: UInt8 = 0x10
    static let implemented: UInt8 = 0x1F
}

private enum LSR {
    static let dataReady: UInt8 = 0x01
    static let overrunError: UInt8 = 0x02
    static let transmitterHoldingEmpty: UInt8 = 0x20
    static let transmitterEmpty: UInt8 = 0x40
}

private enum MSR {
    static let deltaCTS: UInt8 = 0x01
    static let deltaDSR: UInt8 = 0x02
    static let trailingEdgeRI: UInt8 = 0x04
    static let deltaDCD: UInt8 = 0x08
    static let clearToSend: UInt8 = 0x10
    static let dataSetReady: UInt8 = 0x20
    static let ringIndicator: UInt8 = 0x40
    static let dataCarrierDetect: UInt8 = 0x80
}

/// IIR bits 3:0, in priority order.
private enum InterruptSource: UInt8 {
    case lineStatus = 0x06
    case receivedData = 0x04
    case transmitterEmpty = 0x02
    case modemStatus = 0x00
}

/// IIR value with no interrupt pending.
private let iirNoInterrupt: UInt8 = 0x01
/// IIR bits 7:6 with FIFOs enabled: what makes Linux call it a 16550A.
private let iirFIFOsEnabled: UInt8 = 0xC0
/// The 16550A's receive FIFO depth.
private let receiveFIFODepth = 16

private struct UARTState {
    var interruptEnable: UInt8 = 0
    var lineControl: UInt8 = 0
    var modemControl: UInt8 = 0
    var scratch: UInt8 = 0
    /// 115200 baud from the 1.8432 MHz clock; Linux reprograms it anyway.
    var divisorLatch: UInt16 = 1
    var fifosEnabled = false
    /// Sticky LSR error bits, cleared by reading LSR: only OE, from a
    /// loopback byte arriving at a full receiver.
    var lineStatusErrors: UInt8 = 0
    /// MSR bits 7:4 as last sampled, and the delta bits 3:0 since the last
    /// MSR read.
    var modemInputs: UInt8
    var modemDeltas: UInt8 = 0
    /// Set when THR empties or THRE interrupts are newly enabled with THR
    /// empty; cleared by reading IIR while it is the reported source, by
    /// writing THR, or by disabling it in IER.
    var transmitterEmptyInterruptPending = false
    /// Bytes transmitted in loopback mode and not yet read.
    var loopbackFIFO = BoundedByteQueue(capacity: receiveFIFODepth)
    var hostInput: BoundedByteQueue
    var refusedInputByteCount = 0
    var reportedLineLevel = false

    init(pendingInputLimit: Int) {
        hostInput = BoundedByteQueue(capacity: pendingInputLimit)
        modemInputs = 0
        modemInputs = sampledModemInputs
    }

    var isLoopback: Bool { modemControl & MCR.loopback != 0 }
    var dlab: Bool { lineControl & LCR.divisorLatchAccess != 0 }
    /// Bytes the receiver holds before the next one overruns.
    var receiverDepth: Int { fifosEnabled ? receiveFIFODepth : 1 }
    /// LSR DR: looped-back bytes, or host input while the serial input is
    /// connected (not in loopback).
    var hasReceivedData: Bool { !loopbackFIFO.isEmpty || (!isLoopback && !hostInput.isEmpty) }

    /// The modem status inputs: outside loopback, a host connection that is
    /// always ready (CTS, DSR, DCD), so a guest using hardware flow control
    /// or waiting for carrier proceeds; in loopback, the MCR outputs wired
    /// back (RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD), which Linux's probe checks.
    var sampledModemInputs: UInt8 {
        guard isLoopback else { return MSR.clearToSend | MSR.dataSetReady | MSR.dataCarrierDetect }
        var inputs: UInt8 = 0
        if modemControl & MCR.requestToSend != 0 { inputs |= MSR.clearToSend }
        if modemControl & MCR.dataTerminalReady != 0 { inputs |= MSR.dataSetReady }
        if modemControl & MCR.out1 != 0 { inputs |= MSR.ringIndicator }
        if modemControl & MCR.out2 != 0 { inputs |= MSR.dataCarrierDetect }
        return inputs
    }

    var highestPriorityInterrupt: InterruptSource? {
        if interruptEnable & IER.lineStatus != 0 && lineStatusErrors != 0 { return .lineStatus }
        if interruptEnable & IER.receivedData != 0 && hasReceivedData { return .receivedData }
        if interruptEnable & IER.transmitterEmpty != 0 && transmitterEmptyInterruptPending { return .transmitterEmpty }
        if interruptEnable & IER.modemStatus != 0 && modemDeltas != 0 { return .modemStatus }
        return nil
    }

    var interruptLineLevel: Bool {
        highestPriorityInterrupt != nil && modemControl & MCR.out2 != 0 && !isLoopback
    }

    // MARK: Guest access, one byte at a time

    mutating func read(offset: Int) -> UInt8 {
        switch offset {
        case UARTRegister.data:
            if dlab { return UInt8(truncatingIfNeeded: divisorLatch) }
            if let byte = loopbackFIFO.popFirst() { return byte }
            if !isLoopback, let byte = hostInput.popFirst() { return byte }
            return 0    // an empty receiver; the guest checks LSR DR first
        case UARTRegister.interruptEnable:
            return dlab ? UInt8(truncatingIfNeeded: divisorLatch >> 8) : interruptEnable
        case UARTRegister.interruptID:
            let source = highestPriorityInterrupt
            // Reading IIR acknowledges a THRE interrupt it reports; the
            // other sources clear by reading their own register.
            if source == .transmitterEmpty { transmitterEmptyInterruptPending = false }
            return (source?.rawValue ?? iirNoInterrupt) | (fifosEnabled ? iirFIFOsEnabled : 0)
        case UARTRegister.lineControl:
            return lineControl
        case UARTRegister.modemControl:
            return modemControl
        case UARTRegister.lineStatus:
            var status = LSR.transmitterHoldingEmpty | LSR.transmitterEmpty | lineStatusErrors
            if hasReceivedData { status |= LSR.dataReady }
            lineStatusErrors = 0
            return status
        case UARTRegister.modemStatus:
            let status = modemInputs | modemDeltas
            modemDeltas = 0
            return status
        case UARTRegister.scratch:
            return scratch
        default:
            return 0xFF
        }
    }

    /// Returns the byte to transmit to the host, if the write sent one.
    mutating func write(offset: Int, value: UInt8) -> UInt8? {
        switch offset {
        case UARTRegister.data:
            if dlab {
                divisorLatch = divisorLatch & 0xFF00 | UInt16(value)
                return nil
            }
            // The byte moves through THR at once, so THR empties again
            // before the write returns: a THRE interrupt follows every write.
            transmitterEmptyInterruptPending = true
            if isLoopback {
                receiveLoopedBack(value)
                return nil
            }
            return value
        case UARTRegister.interruptEnable:
            if dlab {
                divisorLatch = divisorLatch & 0x00FF | UInt16(value) << 8
                return nil
            }
            let enabled = value & IER.implemented
            let newlyEnabled = enabled & ~interruptEnable
            interruptEnable = enabled
            // A 16550A raises THRE when the interrupt is enabled while THR is
            // already empty; Linux's start-up test (UART_BUG_THRE) counts on
            // it, and falls back to polling with a timer if it is missing.
            if newlyEnabled & IER.transmitterEmpty != 0 { transmitterEmptyInterruptPending = true }
            if enabled & IER.transmitterEmpty == 0 { transmitterEmptyInterruptPending = false }
            return nil
        case UARTRegister.interruptID:
            writeFIFOControl(value)
            return nil
        case UARTRegister.lineControl:
            lineControl = value
            return nil
        case UARTRegister.modemControl:
            modemControl = value & MCR.implemented
            sampleModemInputs()
            return nil
        case UARTRegister.scratch:
            scratch = value
            return nil
        default:
            // LSR and MSR writes are factory-test features: ignored.
            return nil
        }
    }

    private mutating func writeFIFOControl(_ value: UInt8) {
        let enable = value & FCR.enableFIFOs != 0
        // Switching FIFO mode resets both FIFOs; with FIFOs off the other
        // FCR bits are not programmed. Host input is not in the FIFO and
        // stays queued (see the type's notes).
        if enable != fifosEnabled {
            fifosEnabled = enable
            loopbackFIFO.removeAll()
        } else if enable && value & FCR.clearReceiver != 0 {
            loopbackFIFO.removeAll()
        }
        // Clearing the transmit FIFO (bit 2) has nothing to do: it is
        // always empty. Trigger levels (bits 7:6) do not matter when data
        // available raises the interrupt at once.
    }

    private mutating func sampleModemInputs() {
        let inputs = sampledModemInputs
        let changed = inputs ^ modemInputs
        if changed & MSR.clearToSend != 0 { modemDeltas |= MSR.deltaCTS }
        if changed & MSR.dataSetReady != 0 { modemDeltas |= MSR.deltaDSR }
        if changed & MSR.dataCarrierDetect != 0 { modemDeltas |= MSR.deltaDCD }
        // RI reports only its trailing edge (ring ended).
        if modemInputs & MSR.ringIndicator != 0 && inputs & MSR.ringIndicator == 0 {
            modemDeltas |= MSR.trailingEdgeRI
        }
        modemInputs = inputs
    }

    /// A byte arriving at a full receiver is an overrun: with FIFOs the new
    /// byte is lost, without them it overwrites the unread one.
    private mutating func receiveLoopedBack(_ byte: UInt8) {
        if loopbackFIFO.count < receiverDepth {
            loopbackFIFO.append(byte)
        } else {
            lineStatusErrors |= LSR.overrunError
            if !fifosEnabled {
                loopbackFIFO.removeAll()
                loopbackFIFO.append(byte)
            }
        }
    }

    // MARK: Host input

    mutating func receiveFromHost(_ bytes: some Collection<UInt8>) -> Int {
        var accepted = 0
        for byte in bytes {
            guard hostInput.append(byte) else { break }
            accepted += 1
        }
        // Refused, not lost: the caller still holds these bytes, so this is
        // no overrun for the guest to hear about.
        refusedInputByteCount += bytes.count - accepted
        return accepted
    }
}

/// A first-in first-out byte queue that never holds more than `capacity`
/// bytes. Storage grows on demand up to the capacity, so an idle device
/// holding a 64 KiB bound costs a few hundred bytes.
private struct BoundedByteQueue {
    let capacity: Int
    private var storage: [UInt8]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        storage = [UInt8](repeating: 0, count: min(capacity, 256))
    }

    var isEmpty: Bool { count == 0 }

    /// Appends `byte` unless the queue is full.
    @discardableResult
    mutating func append(_ byte: UInt8) -> Bool {
        if count == storage.count {
            guard storage.count < capacity else { return false }
            grow()
        }
        var tail = head + count
        if tail >= storage.count { tail -= storage.count }
        storage[tail] = byte
        count += 1
        return true
    }

    mutating func popFirst() -> UInt8? {
        guard count > 0 else { return nil }
        let byte = storage[head]
        head += 1
        if head == storage.count { head = 0 }
        count -= 1
        return byte
    }

    mutating func removeAll() {
        head = 0
        count = 0
    }

    /// The queued bytes, oldest first.
    var elements: [UInt8] {
        (0..<count).map { storage[(head + $0) % storage.count] }
    }

    private mutating func grow() {
        let newSize = min(capacity, storage.count * 2)
        var grown = [UInt8]()
        grown.reserveCapacity(newSize)
        for i in 0..<count {
            let index = head + i
            grown.append(storage[index < storage.count ? index : index - storage.count])
        }
        grown.append(contentsOf: repeatElement(0, count: newSize - count))
        storage = grown
        head = 0
    }
}

// MARK: - Byte-wide ISA devices

/// The legacy ISA devices (UART, i8042, CMOS) are eight bits wide: the
/// chipset splits a 16- or 32-bit `in`/`out` into byte cycles at consecutive
/// ports, lowest port and least significant byte first. Byte lanes that fall
/// outside the device's decoded ports read as 0xFF and are not written.
/// Shared by the byte-wide devices of this module.
enum ISAByteLanes {
    static func read(
        port: UInt16, size: Int, decoded: ClosedRange<UInt16>, readByte: (UInt16) -> UInt8
    ) -> UInt32 {
        guard (1...4).contains(size) else { return 0xFFFF_FFFF }
        var value: UInt32 = 0
        for lane in 0..<size {
            let lanePort = Int(port) + lane
            var byte: UInt8 = 0xFF
            if lanePort <= Int(decoded.upperBound), decoded.contains(UInt16(lanePort)) {
                byte = readByte(UInt16(lanePort))
            }
            value |= UInt32(byte) << (8 * UInt32(lane))
        }
        return value
    }

    static func write(
        port: UInt16, size: Int, value: UInt32, decoded: ClosedRange<UInt16>,
        writeByte: (UInt16, UInt8) -> Void
    ) {
        guard (1...4).contains(size) else { return }
        for lane in 0..<size {
            let lanePort = Int(port) + lane
            guard lanePort <= Int(decoded.upperBound), decoded.contains(UInt16(lanePort)) else { continue }
            writeByte(UInt16(lanePort), UInt8(truncatingIfNeeded: value >> (8 * UInt32(lane))))
        }
    }
}

// MARK: - Saved state

/// The guest-visible registers go into a save image; queued host input does
/// not (it is the host's, and the restored device gets its own), nor does
/// the count of refused input.
extension Serial16550: StatefulDevice {
    public func saveState(into writer: inout StateWriter) {
        state.withLock { $0.save(into: &writer) }
    }

    /// After the registers are back, the line level they imply (with
    /// whatever host input the new device already holds) is reported to
    /// `interrupt` once, high or low, whatever was reported before: KVM's
    /// irqchip state (KVM_SET_IRQCHIP) does not carry the level each
    /// source drives, only the pins' latched state, and a pin left latched
    /// high with nobody to lower it would interrupt forever after an EOI.
    /// Re-asserting a level the restored irqchip already has does not
    /// deliver again (the IOAPIC's remote IRR, the PIC's last IRR), so
    /// restore this device after the irqchip.
    public func restoreState(from reader: inout StateReader) throws(DeviceStateError) {
        var restored = state.withLock { $0 }
        try restored.restore(from: &reader)
        state.withLock { uart in
            uart = restored
            uart.reportedLineLevel = uart.interruptLineLevel
            interrupt(uart.reportedLineLevel)
        }
    }
}

extension UARTState {
    func save(into w: inout StateWriter) {
        w.u8(interruptEnable)
        w.u8(lineControl)
        w.u8(modemControl)
        w.u8(scratch)
        w.u16(divisorLatch)
        w.bool(fifosEnabled)
        w.u8(lineStatusErrors)
        w.u8(modemInputs)
        w.u8(modemDeltas)
        w.bool(transmitterEmptyInterruptPending)
        w.block(loopbackFIFO.elements)
        w.bool(reportedLineLevel)
    }

    /// Replaces the registers with saved ones; host input stays as it is.
    /// Nothing changes unless all of it is acceptable.
    mutating func restore(from r: inout StateReader) throws(DeviceStateError) {
        var s = self
        s.interruptEnable = try r.u8()
        s.lineControl = try r.u8()
        s.modemControl = try r.u8()
        s.scratch = try r.u8()
        s.divisorLatch = try r.u16()
        s.fifosEnabled = try r.bool()
        s.lineStatusErrors = try r.u8()
        s.modemInputs = try r.u8()
        s.modemDeltas = try r.u8()
        s.transmitterEmptyInterruptPending = try r.bool()
        let looped = try r.block(limit: receiveFIFODepth)
        _ = try r.bool()    // the level then; the restored device works out its own

        func refuse(_ what: String) -> DeviceStateError { DeviceStateError("\(r.what): \(what)") }
        guard s.interruptEnable & ~IER.implemented == 0 else { throw refuse("IER 0x\(hex(s.interruptEnable)) has bits a 16550A does not have") }
        guard s.modemControl & ~MCR.implemented == 0 else { throw refuse("MCR 0x\(hex(s.modemControl)) has bits a 16550A does not have") }
        guard s.lineStatusErrors & ~LSR.overrunError == 0 else { throw refuse("LSR errors 0x\(hex(s.lineStatusErrors)): only an overrun can be latched") }
        // The inputs always follow MCR (loopback) or the always-ready host.
        guard s.modemInputs == s.sampledModemInputs else { throw refuse("MSR inputs 0x\(hex(s.modemInputs)) do not follow MCR 0x\(hex(s.modemControl))") }
        guard s.modemDeltas & 0xF0 == 0 else { throw refuse("MSR deltas 0x\(hex(s.modemDeltas)) outside bits 3:0") }
        guard looped.count <= s.receiverDepth else { throw refuse("\(looped.count) looped-back bytes in a receiver of \(s.receiverDepth)") }
        s.loopbackFIFO.removeAll()
        for byte in looped { s.loopbackFIFO.append(byte) }
        self = s
    }
}

private func hex(_ v: UInt8) -> String { String(v, radix: 16) }
