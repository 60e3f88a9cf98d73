import Synchronization
import Testing
@testable import Machine

// MARK: - Support shared by the legacy device tests

/// Records, in order, what a device reports through one of its closures.
final class DeviceEventLog<Event: Sendable>: Sendable {
    private let events = Mutex<[Event]>([])

    func append(_ event: Event) { events.withLock { $0.append(event) } }
    var all: [Event] { events.withLock { $0 } }
    var count: Int { events.withLock { $0.count } }
    var last: Event? { events.withLock { $0.last } }
}

/// A seeded SplitMix64 generator of hostile port accesses: reproducible, so
/// a failure replays.
struct PortFuzzer: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A port in `ports` (now and then just outside it, where wide accesses
    /// straddle the edge), a size of 1, 2 or 4, and any value.
    mutating func access(around ports: ClosedRange<UInt16>) -> (port: UInt16, size: Int, value: UInt32) {
        let low = Int(ports.lowerBound) - 3, high = Int(ports.upperBound)
        let port = UInt16(clamping: Int.random(in: max(0, low)...high, using: &self))
        let size = [1, 1, 1, 2, 4].randomElement(using: &self)!
        let value: UInt32 = Bool.random(using: &self) ? UInt32(UInt8.random(in: 0...255, using: &self)) : UInt32.random(in: 0...UInt32.max, using: &self)
        return (port, size, value)
    }
}

// MARK: - 16550A

/// A UART on a port bus, driven one byte at a time as a guest driver does.
private struct UARTBench {
    let bus = PortBus()
    let uart: Serial16550
    let output: DeviceEventLog<UInt8>
    let line: DeviceEventLog<Bool>

    init(pendingInputLimit: Int = 64 * 1024) {
        let output = DeviceEventLog<UInt8>(), line = DeviceEventLog<Bool>()
        uart = Serial16550(pendingInputLimit: pendingInputLimit,
                           output: { output.append($0) }, interrupt: { line.append($0) })
        self.output = output
        self.line = line
        _ = bus.register(uart)
    }

    func outb(_ register: UInt16, _ value: UInt8) { bus.write(port: 0x3F8 + register, size: 1, value: UInt32(value)) }
    func inb(_ register: UInt16) -> UInt8 { UInt8(truncatingIfNeeded: bus.read(port: 0x3F8 + register, size: 1)) }

    /// Reads RBR while LSR says data is ready.
    func drain(limit: Int = 1 << 20) -> [UInt8] {
        var bytes: [UInt8] = []
        while inb(UART.lsr) & 0x01 != 0 && bytes.count < limit { bytes.append(inb(UART.rbr)) }
        return bytes
    }
}

/// Register offsets and bits as a driver names them.
private enum UART {
    static let rbr: UInt16 = 0, thr: UInt16 = 0, dll: UInt16 = 0, dlm: UInt16 = 1
    static let ier: UInt16 = 1, iir: UInt16 = 2, fcr: UInt16 = 2, efr: UInt16 = 2
    static let lcr: UInt16 = 3, mcr: UInt16 = 4, lsr: UInt16 = 5, msr: UInt16 = 6, scr: UInt16 = 7
    static let out2: UInt8 = 0x08, loop: UInt8 = 0x10
}

@Suite struct Serial16550Tests {
    @Test func existenceProbeSeesOnlyTheLowFourIERBitsAndAScratchRegister() {
        let bench = UARTBench()
        // Linux's autoconfig: IER must read 0 after writing 0 and 0x0F after
        // 0x0F; its high nibble must stay 0 (no XScale UUE bit).
        bench.outb(UART.ier, 0)
        #expect(bench.inb(UART.ier) == 0)
        bench.outb(UART.ier, 0x0F)
        #expect(bench.inb(UART.ier) == 0x0F)
        bench.outb(UART.ier, 0xFF)
        #expect(bench.inb(UART.ier) == 0x0F)
        bench.outb(UART.ier, 0)
        for pattern: UInt8 in [0xA5, 0x5A, 0x00, 0xFF] {
            bench.outb(UART.scr, pattern)
            #expect(bench.inb(UART.scr) == pattern)
        }
    }

    @Test func loopbackWiresModemControlToModemStatusAndTransmitToReceive() {
        let bench = UARTBench()
        #expect(bench.inb(UART.msr) & 0xF0 == 0xB0)          // CTS, DSR, DCD: host ready
        bench.outb(UART.mcr, UART.loop | 0x0A)                // loop + RTS + OUT2
        #expect(bench.inb(UART.msr) & 0xF0 == 0x90)          // CTS + DCD: Linux's check
        bench.outb(UART.mcr, UART.loop | 0x05)                // loop + DTR + OUT1
        #expect(bench.inb(UART.msr) & 0xF0 == 0x60)          // DSR + RI
        bench.outb(UART.thr, 0x42)
        #expect(bench.output.count == 0)
        #expect(bench.inb(UART.lsr) & 0x01 == 0x01)
        #expect(bench.inb(UART.rbr) == 0x42)
        bench.outb(UART.mcr, 0)
        #expect(bench.inb(UART.msr) & 0xF0 == 0xB0)
        bench.outb(UART.thr, 0x43)
        #expect(bench.output.all == [0x43])
        #expect(bench.inb(UART.lsr) & 0x01 == 0)
    }

    @Test func modemStatusDeltasReportChangesAndClearOnRead() {
        let bench = UARTBench()
        bench.outb(UART.mcr, UART.loop | 0x04)                // RI on; CTS, DSR, DCD drop
        #expect(bench.inb(UART.msr) == 0x40 | 0x0B)          // RI, with DCTS DDSR DDCD
        #expect(bench.inb(UART.msr) == 0x40)
        bench.outb(UART.mcr, UART.loop)                       // RI ends: trailing edge
        #expect(bench.inb(UART.msr) == 0x04)
    }

    @Test func fifoControlMakesLinuxDetectA16550A() {
        let bench = UARTBench()
        #expect(bench.inb(UART.iir) == 0x01)                  // FIFOs off at reset
        // autoconfig: clear the would-be EFR, then enable FIFOs.
        bench.outb(UART.lcr, 0xBF)
        bench.outb(UART.efr, 0)
        bench.outb(UART.lcr, 0)
        bench.outb(UART.fcr, 0x01)
        #expect(bench.inb(UART.iir) >> 6 == 0b11)
        // autoconfig_16550a: no EFR behind DLAB or LCR 0xBF (reads non-zero).
        bench.outb(UART.lcr, 0x80)
        #expect(bench.inb(UART.efr) != 0)
        bench.outb(UART.lcr, 0xBF)
        #expect(bench.inb(UART.efr) != 0)
        // No 64-byte FIFO (16750) with or without DLAB: IIR bit 5 stays 0.
        bench.outb(UART.lcr, 0)
        bench.outb(UART.fcr, 0x21)
        #expect(bench.inb(UART.iir) & 0x20 == 0)
        bench.outb(UART.lcr, 0x80)
        bench.outb(UART.fcr, 0x21)
        #expect(bench.inb(UART.iir) & 0x20 == 0)
        bench.outb(UART.lcr, 0)
        bench.outb(UART.fcr, 0)
        #expect(bench.inb(UART.iir) == 0x01)
    }

    @Test func fifoSizeProbeCountsSixteenBytes() {
        // Linux's size_fifo: loopback, 256 bytes out, count what comes back.
        let bench = UARTBench()
        bench.outb(UART.fcr, 0x07)
        bench.outb(UART.mcr, UART.loop)
        bench.outb(UART.lcr, 0x03)
        for byte in 0..<256 { bench.outb(UART.thr, UInt8(byte)) }
        #expect(bench.inb(UART.lsr) & 0x03 == 0x03)           // DR, and OE for the rest
        #expect(bench.drain() == Array(0..<16))
        #expect(bench.output.count == 0)
        // Without FIFOs the holding register keeps the newest byte.
        bench.outb(UART.fcr, 0)
        bench.outb(UART.thr, 1)
        bench.outb(UART.thr, 2)
        #expect(bench.inb(UART.lsr) & 0x03 == 0x03)
        #expect(bench.drain() == [2])
    }

    @Test func transmittedBytesReachTheOutputAndTheTransmitterIsAlwaysEmpty() {
        let bench = UARTBench()
        bench.outb(UART.lcr, 0x03)
        for byte in "hello\r\n".utf8 {
            #expect(bench.inb(UART.lsr) & 0x60 == 0x60)       // THRE + TEMT: wait_for_xmitr
            bench.outb(UART.thr, byte)
        }
        #expect(bench.output.all == Array("hello\r\n".utf8))
        #expect(bench.inb(UART.lsr) == 0x60)
    }

    @Test func divisorLatchRoundTripsBehindDLAB() {
        let bench = UARTBench()
        bench.outb(UART.ier, 0x05)
        bench.outb(UART.lcr, 0x83)
        bench.outb(UART.dll, 0x0C)
        bench.outb(UART.dlm, 0x34)
        #expect(bench.inb(UART.dll) == 0x0C)
        #expect(bench.inb(UART.dlm) == 0x34)
        #expect(bench.output.count == 0)
        bench.outb(UART.lcr, 0x03)
        #expect(bench.inb(UART.lcr) == 0x03)
        #expect(bench.inb(UART.ier) == 0x05)                  // untouched by DLM
        bench.outb(UART.thr, 0x41)
        #expect(bench.output.all == [0x41])
        bench.outb(UART.lcr, 0x83)
        #expect(bench.inb(UART.dll) == 0x0C)                  // untouched by THR
    }

    @Test func hostInputSetsDataReadyAndRaisesTheLineOnlyWhenEnabled() {
        let bench = UARTBench()
        bench.outb(UART.mcr, UART.out2 | 0x03)
        #expect(bench.uart.enqueueInput([0x61]) == 1)
        #expect(bench.inb(UART.lsr) & 0x01 == 0x01)
        #expect(bench.line.count == 0)                        // IER 0: no interrupt
        #expect(bench.inb(UART.iir) == 0x01)
        bench.outb(UART.ier, 0x01)
        #expect(bench.line.all == [true])
        #expect(bench.inb(UART.iir) == 0x04)
        #expect(bench.inb(UART.rbr) == 0x61)
        #expect(bench.line.all == [true, false])
        #expect(bench.inb(UART.lsr) & 0x01 == 0)
        bench.uart.enqueueInput([0x62, 0x63])
        #expect(bench.line.all == [true, false, true])
        #expect(bench.drain() == [0x62, 0x63])
        #expect(bench.line.all == [true, false, true, false])
    }

    @Test func out2GatesTheLineAndLoopbackDisconnectsIt() {
        let bench = UARTBench()
        bench.outb(UART.ier, 0x01)
        bench.uart.enqueueInput([1])
        #expect(bench.inb(UART.iir) == 0x04)                  // pending inside the chip...
        #expect(bench.line.count == 0)                        // ...but OUT2 is off
        bench.outb(UART.mcr, UART.out2)
        #expect(bench.line.all == [true])
        bench.outb(UART.mcr, UART.out2 | UART.loop)
        #expect(bench.line.all == [true, false])
        bench.outb(UART.mcr, UART.out2)
        #expect(bench.line.all == [true, false, true])
        #expect(bench.uart.interruptLineLevel)
    }

    @Test func transmitterEmptyInterruptFollowsThe16550A() {
        let bench = UARTBench()
        bench.outb(UART.mcr, UART.out2)
        bench.outb(UART.ier, 0x02)                            // enabled with THR empty
        #expect(bench.line.all == [true])
        #expect(bench.inb(UART.iir) == 0x02)                  // reported, and acknowledged
        #expect(bench.line.all == [true, false])
        #expect(bench.inb(UART.iir) == 0x01)
        bench.outb(UART.ier, 0x02)                            // unchanged: nothing new
        #expect(bench.line.all == [true, false])
        bench.outb(UART.thr, 0x41)                            // THR empties again at once
        #expect(bench.line.all == [true, false, true])
        #expect(bench.inb(UART.iir) == 0x02)
        #expect(bench.line.all == [true, false, true, false])
        bench.outb(UART.thr, 0x42)
        bench.outb(UART.ier, 0)                               // disabling drops it
        #expect(bench.line.all == [true, false, true, false, true, false])
        #expect(bench.output.all == [0x41, 0x42])
    }

    @Test func linuxStartupTestsFindNeitherTHREBugNorTXENBug() {
        let bench = UARTBench()
        // serial8250_do_startup, UART_BUG_THRE: the interrupt must come back
        // when THRI is re-enabled after being acknowledged.
        #expect(bench.inb(UART.lsr) & 0x20 != 0)
        bench.outb(UART.ier, 0x02)
        let firstIIR = bench.inb(UART.iir)
        bench.outb(UART.ier, 0)
        bench.outb(UART.ier, 0x02)
        let secondIIR = bench.inb(UART.iir)
        bench.outb(UART.ier, 0)
        #expect(firstIIR & 0x01 == 0 && secondIIR & 0x01 == 0)
        // UART_BUG_TXEN: enabling THRI must show a pending interrupt.
        bench.outb(UART.lcr, 0x03)
        bench.outb(UART.mcr, UART.out2 | 0x03)
        bench.outb(UART.ier, 0x02)
        let lsr = bench.inb(UART.lsr), iir = bench.inb(UART.iir)
        bench.outb(UART.ier, 0)
        #expect(!(lsr & 0x40 != 0 && iir & 0x01 != 0))
    }

    @Test func interruptIdentificationReportsTheHighestPrioritySource() {
        let bench = UARTBench(pendingInputLimit: 4)
        bench.outb(UART.fcr, 0x01)
        bench.outb(UART.mcr, UART.out2)
        bench.outb(UART.ier, 0x0F)
        #expect(bench.uart.enqueueInput(Array(repeating: 0x55, count: 30)) == 4)
        #expect(bench.uart.refusedInputByteCount == 26)
        #expect(bench.inb(UART.lsr) & 0x03 == 0x01)           // refused is not overrun
        bench.outb(UART.mcr, UART.out2 | UART.loop | 0x0A)    // overrun the FIFO in loopback
        for _ in 0...16 { bench.outb(UART.thr, 0xAA) }
        bench.outb(UART.mcr, UART.out2)
        _ = bench.inb(UART.msr)                               // DSR toggled: clear the deltas
        #expect(bench.inb(UART.iir) == 0xC6)                  // overrun: line status first
        #expect(bench.inb(UART.lsr) & 0x03 == 0x03)           // reading LSR clears OE
        #expect(bench.inb(UART.iir) == 0xC4)                  // received data next
        #expect(bench.drain() == Array(repeating: 0xAA, count: 16) + Array(repeating: 0x55, count: 4))
        #expect(bench.inb(UART.iir) == 0xC2)                  // then THRE (newly enabled)
        #expect(bench.inb(UART.iir) == 0xC1)
        bench.outb(UART.mcr, UART.out2 | UART.loop | 0x01)    // CTS drops (no RTS)
        #expect(bench.inb(UART.iir) == 0xC0)                  // modem status last
        _ = bench.inb(UART.msr)
        #expect(bench.inb(UART.iir) == 0xC1)
    }

    @Test func hostInputArrivesInOrderThroughTheFIFO() {
        let bench = UARTBench()
        bench.outb(UART.fcr, 0x07)
        let text = Array((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        #expect(bench.uart.enqueueInput(text) == text.count)
        #expect(bench.uart.pendingInputCount == text.count)
        #expect(bench.drain() == text)
        #expect(bench.uart.pendingInputCount == 0)
    }

    @Test func loopbackHoldsHostInputOnTheWire() {
        let bench = UARTBench()
        bench.outb(UART.mcr, UART.loop)
        bench.uart.enqueueInput([7, 8])
        #expect(bench.inb(UART.lsr) & 0x01 == 0)
        bench.outb(UART.thr, 9)
        #expect(bench.drain() == [9])
        bench.outb(UART.mcr, 0)
        #expect(bench.drain() == [7, 8])
    }

    @Test func fifoResetsDiscardLoopedBackBytesButNotHostInput() {
        // Linux clears the FIFOs at probe, open and close; input typed or
        // piped before the getty opens the port must survive that.
        let bench = UARTBench()
        bench.uart.enqueueInput(Array(0..<20))
        bench.outb(UART.mcr, UART.loop)
        bench.outb(UART.fcr, 0x01)
        bench.outb(UART.thr, 0xEE)
        bench.outb(UART.fcr, 0x07)                            // serial8250_clear_fifos
        bench.outb(UART.fcr, 0x00)
        #expect(bench.inb(UART.lsr) & 0x01 == 0)
        bench.outb(UART.mcr, 0)
        _ = bench.inb(UART.rbr)                               // startup's "clear" read takes one
        #expect(bench.drain() == Array(1..<20))
    }

    @Test func pendingHostInputIsBoundedAndExcessRefused() {
        let bench = UARTBench()
        let limit = bench.uart.pendingInputLimit
        let input = (0..<(limit + 5000)).map { UInt8(truncatingIfNeeded: $0) }
        let accepted = bench.uart.enqueueInput(input)
        #expect(accepted == limit)
        #expect(bench.uart.refusedInputByteCount == input.count - accepted)
        #expect(!bench.uart.hasRoomForInput)
        #expect(bench.uart.enqueueInput([1, 2, 3]) == 0)
        #expect(bench.uart.refusedInputByteCount == input.count - accepted + 3)
        #expect(bench.uart.pendingInputCount == limit)
        let received = bench.drain()
        #expect(received == Array(input.prefix(accepted)))    // queued input kept, in order
        #expect(bench.inb(UART.lsr) & 0x02 == 0)              // refusal is no overrun
        #expect(bench.uart.hasRoomForInput)
    }

    @Test func wideAccessesSplitIntoByteCycles() {
        let bench = UARTBench()
        bench.bus.write(port: 0x3FF, size: 1, value: 0x77)
        // inw at LSR reads LSR and MSR; inl at 0x3FE runs off the end.
        #expect(bench.bus.read(port: 0x3FD, size: 2) == 0xB060)
        #expect(bench.bus.read(port: 0x3FE, size: 4) == 0xFFFF_77B0)
        // outw at LCR writes LCR and MCR.
        bench.bus.write(port: 0x3FB, size: 2, value: 0x0B03)
        #expect(bench.inb(UART.lcr) == 0x03 && bench.inb(UART.mcr) == 0x0B)
        // A device alone (no bus) decodes only its own ports.
        #expect(bench.uart.read(port: 0x3F5, size: 4) == 0x00FF_FFFF)
    }

    @Test func concurrentInputAndGuestReadsLoseNothing() async {
        let bench = UARTBench(pendingInputLimit: 64)
        bench.outb(UART.fcr, 0x01)
        bench.outb(UART.mcr, UART.out2)
        bench.outb(UART.ier, 0x01)
        let input = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let uart = bench.uart
        let feeder = Task.detached {
            var sent = 0
            while sent < input.count {
                sent += uart.enqueueInput(input[sent..<min(input.count, sent + 100)])
                await Task.yield()
            }
        }
        var received: [UInt8] = []
        while received.count < input.count {
            received += bench.drain()
            await Task.yield()
        }
        await feeder.value
        #expect(received == input)                            // refused bytes were resent
        // Levels alternate: the closure hears only changes.
        let levels = bench.line.all
        #expect(zip(levels, levels.dropFirst()).allSatisfy { $0 != $1 })
        #expect(levels.last == false)
    }

    @Test func hostileAccessesNeitherTrapNorGrowState() {
        let bench = UARTBench(pendingInputLimit: 1024)
        var fuzzer = PortFuzzer(seed: 0x16550)
        var mostPending = 0
        for round in 0..<200_000 {
            let access = fuzzer.access(around: bench.uart.ports)
            if Bool.random(using: &fuzzer) {
                bench.bus.write(port: access.port, size: access.size, value: access.value)
            } else {
                _ = bench.bus.read(port: access.port, size: access.size)
            }
            if round % 97 == 0 {
                bench.uart.enqueueInput((0..<Int.random(in: 0...600, using: &fuzzer)).map { UInt8(truncatingIfNeeded: $0) })
            }
            mostPending = max(mostPending, bench.uart.pendingInputCount)
        }
        #expect(mostPending <= 1024)
        let levels = bench.line.all
        #expect(zip(levels, levels.dropFirst()).allSatisfy { $0 != $1 })
        #expect(bench.uart.interruptLineLevel == (levels.last ?? false))
        // Still a working UART afterwards.
        bench.outb(UART.lcr, 0x03)
        bench.outb(UART.mcr, 0)
        let before = bench.output.count
        bench.outb(UART.thr, 0x21)
        #expect(bench.output.count == before + 1 && bench.output.last == 0x21)
    }
}
