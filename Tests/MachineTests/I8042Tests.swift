import Testing
@testable import Machine

/// An i8042 on a port bus, with its reset line counted.
private struct KeyboardControllerBench {
    let bus = PortBus()
    let controller: I8042
    let resets: DeviceEventLog<Void>

    init() {
        let resets = DeviceEventLog<Void>()
        controller = I8042(reset: { resets.append(()) })
        self.resets = resets
        _ = bus.register(controller)
    }

    var status: UInt8 { UInt8(truncatingIfNeeded: bus.read(port: 0x64, size: 1)) }
    func command(_ byte: UInt8) { bus.write(port: 0x64, size: 1, value: UInt32(byte)) }
    func writeData(_ byte: UInt8) { bus.write(port: 0x60, size: 1, value: UInt32(byte)) }
    func readData() -> UInt8 { UInt8(truncatingIfNeeded: bus.read(port: 0x60, size: 1)) }

    /// What Linux's i8042_command does for a command with one reply byte.
    func reply(to byte: UInt8) -> UInt8? {
        command(byte)
        guard status & 0x01 != 0 else { return nil }
        return readData()
    }
}

@Suite struct I8042Tests {
    @Test func statusStartsWithAnEmptyOutputBufferAndTheSystemFlag() {
        let bench = KeyboardControllerBench()
        #expect(bench.status & 0x01 == 0)                     // OBF: i8042_flush finds nothing
        #expect(bench.status & 0x02 == 0)                     // IBF: writes never wait
        #expect(bench.status & 0x04 == 0x04)                  // system flag
    }

    @Test func selfTestAndInterfaceTestsPass() {
        let bench = KeyboardControllerBench()
        #expect(bench.reply(to: 0xAA) == 0x55)
        #expect(bench.status & 0x01 == 0)                     // reading emptied it
        #expect(bench.reply(to: 0xAB) == 0x00)
        #expect(bench.reply(to: 0xA9) == 0x00)
        #expect(bench.resets.count == 0)
    }

    @Test func commandByteRoundTrips() {
        let bench = KeyboardControllerBench()
        let initial = bench.reply(to: 0x20)
        #expect(initial == 0x45)                              // kbd interrupt, system, translate
        bench.command(0x60)
        bench.writeData(0x67)
        #expect(bench.reply(to: 0x20) == 0x67)
        #expect(bench.controller.commandByte == 0x67)
        // Port enables are accepted and show in the command byte.
        bench.command(0xA7)
        bench.command(0xAD)
        #expect(bench.reply(to: 0x20) == 0x77)
        bench.command(0xA8)
        bench.command(0xAE)
        #expect(bench.reply(to: 0x20) == 0x47)
    }

    @Test func resetPulseCommandResets() {
        let bench = KeyboardControllerBench()
        // Linux's BOOT_KBD: wait for IBF clear, then pulse.
        #expect(bench.status & 0x02 == 0)
        bench.command(0xFE)
        #expect(bench.resets.count == 1)
        bench.command(0xFF)                                   // pulses nothing
        #expect(bench.resets.count == 1)
    }

    @Test func outputPortWriteWithResetBitClearResets() {
        let bench = KeyboardControllerBench()
        bench.command(0xD1)
        bench.writeData(0xDF)                                 // A20 on, reset line high
        #expect(bench.resets.count == 0)
        #expect(bench.reply(to: 0xD0) == 0xDF)
        bench.command(0xD1)
        bench.writeData(0xDE)
        #expect(bench.resets.count == 1)
    }

    @Test func auxLoopbackReturnsTheByteAsMouseData() {
        let bench = KeyboardControllerBench()
        bench.command(0xD3)
        bench.writeData(0x5A)
        #expect(bench.status & 0x21 == 0x21)                  // OBF from the AUX port
        #expect(bench.readData() == 0x5A)
        #expect(bench.status & 0x21 == 0)
    }

    @Test func bytesForTheAbsentKeyboardAreDropped() {
        let bench = KeyboardControllerBench()
        bench.writeData(0xFF)                                 // keyboard reset command
        #expect(bench.status & 0x01 == 0)
        #expect(bench.resets.count == 0)
        // A command abandons a pending parameter.
        bench.command(0x60)
        bench.command(0xAA)
        #expect(bench.readData() == 0x55)
        bench.writeData(0x00)
        #expect(bench.controller.commandByte == 0x45)
    }

    @Test func portsBetweenDataAndStatusReadAsAbsent() {
        let bench = KeyboardControllerBench()
        for port: UInt16 in 0x61...0x63 {
            #expect(bench.bus.read(port: port, size: 1) == 0xFF)
            bench.bus.write(port: port, size: 1, value: 0xFE)
        }
        #expect(bench.resets.count == 0)
        #expect(bench.status & 0x01 == 0)
    }

    @Test func hostileAccessesNeitherTrapNorLeaveUndefinedStatusBits() {
        let bench = KeyboardControllerBench()
        var fuzzer = PortFuzzer(seed: 0x8042)
        var undefinedStatusBits: UInt8 = 0
        for _ in 0..<100_000 {
            let access = fuzzer.access(around: bench.controller.ports)
            if Bool.random(using: &fuzzer) {
                bench.bus.write(port: access.port, size: access.size, value: access.value)
            } else {
                _ = bench.bus.read(port: access.port, size: access.size)
            }
            undefinedStatusBits |= bench.status & 0xC2       // IBF, timeout, parity
        }
        #expect(undefinedStatusBits == 0)
        #expect(bench.reply(to: 0xAA) == 0x55)               // still answers
    }
}
