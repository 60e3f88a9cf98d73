import Testing
@testable import Machine

final class FixedPorts: PortDevice, @unchecked Sendable {
    let ports: ClosedRange<UInt16>
    var written: [(UInt16, UInt32)] = []
    init(_ r: ClosedRange<UInt16>) { ports = r }
    func read(port: UInt16, size: Int) -> UInt32 { UInt32(port) }
    func write(port: UInt16, size: Int, value: UInt32) { written.append((port, value)) }
}

@Suite struct PortBusTests {
    @Test func routesByRangeAndRefusesOverlaps() {
        let bus = PortBus()
        let a = FixedPorts(0x3f8...0x3ff), b = FixedPorts(0x70...0x71)
        #expect(bus.register(a) && bus.register(b))
        #expect(!bus.register(FixedPorts(0x3fc...0x400)))
        #expect(bus.read(port: 0x3fa, size: 1) == 0x3fa)
        bus.write(port: 0x71, size: 1, value: 9)
        #expect(b.written.count == 1 && b.written[0] == (0x71, 9))
    }

    @Test func unclaimedPortsReadAllOnes() {
        let bus = PortBus()
        #expect(bus.read(port: 0x80, size: 1) == 0xff)
        #expect(bus.read(port: 0x80, size: 2) == 0xffff)
        #expect(bus.read(port: 0x80, size: 4) == 0xffff_ffff)
        bus.write(port: 0x80, size: 1, value: 1)  // dropped, no trap
    }
}
