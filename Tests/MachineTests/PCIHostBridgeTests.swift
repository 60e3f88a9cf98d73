import Synchronization
import Testing
@testable import Machine

/// A PCI function that answers with its offset and records every access.
private final class RecordingFunction: PCIFunction, Sendable {
    struct Access: Equatable, Sendable {
        var isWrite: Bool
        var offset: UInt16
        var size: Int
        var value: UInt32
    }

    let accesses = DeviceEventLog<Access>()

    func configRead(offset: UInt16, size: Int) -> UInt32 {
        accesses.append(Access(isWrite: false, offset: offset, size: size, value: 0))
        return 0xAB00_0000 | UInt32(offset)
    }

    func configWrite(offset: UInt16, size: Int, value: UInt32) {
        accesses.append(Access(isWrite: true, offset: offset, size: size, value: value))
    }
}

/// A host bridge on a port bus, driven as Linux's pci_conf1 does.
private struct PCIBench {
    let bus = PortBus()
    let bridge: PCIHostBridge
    let resets: DeviceEventLog<Void>

    init() {
        let resets = DeviceEventLog<Void>()
        bridge = PCIHostBridge(resetControl: { resets.append(()) })
        self.resets = resets
        _ = bus.register(bridge)
    }

    func select(bus number: UInt32 = 0, device: UInt32, function: UInt32 = 0, register: UInt32) {
        bus.write(port: 0xCF8, size: 4,
                  value: 0x8000_0000 | number << 16 | device << 11 | function << 8 | register & 0xFC)
    }

    func read(bus number: UInt32 = 0, device: UInt32, function: UInt32 = 0, offset: UInt32, size: Int) -> UInt32 {
        select(bus: number, device: device, function: function, register: offset)
        return bus.read(port: 0xCFC + UInt16(offset & 3), size: size)
    }

    func write(device: UInt32, function: UInt32 = 0, offset: UInt32, size: Int, value: UInt32) {
        select(device: device, function: function, register: offset)
        bus.write(port: 0xCFC + UInt16(offset & 3), size: size, value: value)
    }
}

@Suite struct PCIHostBridgeTests {
    @Test func hostBridgeIdentifiesItself() {
        let bench = PCIBench()
        #expect(bench.read(device: 0, offset: 0x00, size: 4) == 0x0D57_8086)
        #expect(bench.read(device: 0, offset: 0x00, size: 2) == 0x8086)
        #expect(bench.read(device: 0, offset: 0x02, size: 2) == 0x0D57)
        #expect(bench.read(device: 0, offset: 0x03, size: 1) == 0x0D)
        #expect(bench.read(device: 0, offset: 0x08, size: 4) == 0x0600_0000)
        #expect(bench.read(device: 0, offset: 0x0A, size: 2) == 0x0600)   // PCI_CLASS_DEVICE
        #expect(bench.read(device: 0, offset: 0x0B, size: 1) == 0x06)
        #expect(bench.read(device: 0, offset: 0x0E, size: 1) == 0x00)     // header type 0
        #expect(bench.read(device: 0, offset: 0x06, size: 2) == 0x0000)   // status
        #expect(bench.read(device: 0, offset: 0x04, size: 2) == 0x0006)   // memory + master
        for offset in stride(from: UInt32(0x0C), to: 0x100, by: 4) {
            #expect(bench.read(device: 0, offset: offset, size: 4) == 0)
        }
    }

    @Test func barsAreNotImplementedAndOnlyCommandBitsStick() {
        let bench = PCIBench()
        bench.write(device: 0, offset: 0x10, size: 4, value: 0xFFFF_FFFF)  // BAR sizing
        #expect(bench.read(device: 0, offset: 0x10, size: 4) == 0)
        bench.write(device: 0, offset: 0x04, size: 4, value: 0xFFFF_FFFF)
        #expect(bench.read(device: 0, offset: 0x04, size: 4) == 0x0000_0547)
        bench.write(device: 0, offset: 0x04, size: 1, value: 0x03)
        #expect(bench.read(device: 0, offset: 0x04, size: 2) == 0x0503)
        bench.write(device: 0, offset: 0x05, size: 1, value: 0x00)
        #expect(bench.read(device: 0, offset: 0x04, size: 2) == 0x0003)
        bench.write(device: 0, offset: 0x00, size: 4, value: 0)
        #expect(bench.read(device: 0, offset: 0x00, size: 4) == 0x0D57_8086)
    }

    @Test func emptySlotsReadAllOnes() {
        let bench = PCIBench()
        #expect(bench.read(device: 1, offset: 0, size: 4) == 0xFFFF_FFFF)
        #expect(bench.read(device: 31, offset: 0, size: 2) == 0xFFFF)
        #expect(bench.read(device: 0, function: 1, offset: 0, size: 4) == 0xFFFF_FFFF)
        #expect(bench.read(bus: 1, device: 0, offset: 0, size: 1) == 0xFF)
        // Configuration cycles off: nothing answers.
        bench.bus.write(port: 0xCF8, size: 4, value: 0x0000_0000)
        #expect(bench.bus.read(port: 0xCFC, size: 4) == 0xFFFF_FFFF)
        // AMD's extended register bits reach past 256 bytes: nothing there,
        // and no alias of the IDs that would parse as a capability.
        bench.bus.write(port: 0xCF8, size: 4, value: 0x8100_0000)
        #expect(bench.bus.read(port: 0xCFC, size: 4) == 0xFFFF_FFFF)
        // Reserved bits 30:28 are ignored.
        bench.bus.write(port: 0xCF8, size: 4, value: 0xF000_0000)
        #expect(bench.bus.read(port: 0xCFC, size: 4) == 0x0D57_8086)
    }

    @Test func configAddressLatchesOnlyDwordWrites() {
        let bench = PCIBench()
        // Linux's pci_check_type1.
        bench.bus.write(port: 0xCFB, size: 1, value: 0x01)
        let saved = bench.bus.read(port: 0xCF8, size: 4)
        bench.bus.write(port: 0xCF8, size: 4, value: 0x8000_0000)
        #expect(bench.bus.read(port: 0xCF8, size: 4) == 0x8000_0000)
        bench.bus.write(port: 0xCF8, size: 4, value: saved)
        #expect(saved == 0)
        bench.bus.write(port: 0xCF8, size: 4, value: 0x8000_1234)
        bench.bus.write(port: 0xCF8, size: 2, value: 0xFFFF)
        bench.bus.write(port: 0xCF8, size: 1, value: 0xFF)
        #expect(bench.bus.read(port: 0xCF8, size: 4) == 0x8000_1234)
        #expect(bench.bus.read(port: 0xCF8, size: 2) == 0xFFFF)
        #expect(bench.bus.read(port: 0xCFA, size: 1) == 0xFF)
    }

    @Test func misalignedDataAccessesAreDropped() {
        let bench = PCIBench()
        let function = RecordingFunction()
        #expect(bench.bridge.register(function, device: 2))
        bench.select(device: 2, register: 0)
        #expect(bench.bus.read(port: 0xCFD, size: 2) == 0xFFFF)
        #expect(bench.bus.read(port: 0xCFE, size: 4) == 0xFFFF_FFFF)
        bench.bus.write(port: 0xCFF, size: 2, value: 0)
        bench.bus.write(port: 0xCFC, size: 3, value: 0)
        #expect(function.accesses.count == 0)
    }

    @Test func registeredFunctionAnswersAtItsDeviceNumber() {
        let bench = PCIBench()
        let function = RecordingFunction()
        #expect(bench.bridge.register(function, device: 3))
        #expect(bench.read(device: 3, offset: 0x00, size: 4) == 0xAB00_0000)
        #expect(bench.read(device: 3, offset: 0x0E, size: 1) == 0x0E)        // masked to a byte
        #expect(bench.read(device: 3, offset: 0x42, size: 2) == 0x0042)
        bench.write(device: 3, offset: 0x11, size: 1, value: 0x1234_5678)
        bench.write(device: 3, offset: 0x14, size: 4, value: 0xFEDC_BA98)
        #expect(function.accesses.all == [
            .init(isWrite: false, offset: 0x00, size: 4, value: 0),
            .init(isWrite: false, offset: 0x0E, size: 1, value: 0),
            .init(isWrite: false, offset: 0x42, size: 2, value: 0),
            .init(isWrite: true, offset: 0x11, size: 1, value: 0x78),
            .init(isWrite: true, offset: 0x14, size: 4, value: 0xFEDC_BA98),
        ])
        #expect(bench.read(device: 3, function: 1, offset: 0, size: 4) == 0xFFFF_FFFF)
        #expect(bench.read(device: 4, offset: 0, size: 4) == 0xFFFF_FFFF)
    }

    @Test func registrationRefusesTheHostBridgeSlotBadNumbersAndDuplicates() {
        let bridge = PCIHostBridge()
        #expect(!bridge.register(RecordingFunction(), device: 0))
        #expect(!bridge.register(RecordingFunction(), device: 32))
        #expect(!bridge.register(RecordingFunction(), device: 5, function: 8))
        #expect(bridge.register(RecordingFunction(), device: 5))
        #expect(!bridge.register(RecordingFunction(), device: 5))
        #expect(bridge.register(RecordingFunction(), device: 5, function: 1))
    }

    @Test func resetControlRegisterResetsOnlyWithBitTwo() {
        let bench = PCIBench()
        // Linux's BOOT_CF9: read, request a hard reset, then perform it.
        let initial = bench.bus.read(port: 0xCF9, size: 1)
        bench.bus.write(port: 0xCF9, size: 1, value: initial | 0x02)
        #expect(bench.resets.count == 0)
        #expect(bench.bus.read(port: 0xCF9, size: 1) == 0x02)
        bench.bus.write(port: 0xCF9, size: 1, value: 0x06)
        #expect(bench.resets.count == 1)
        #expect(bench.bus.read(port: 0xCF9, size: 1) == 0x02)
        // Without a reset closure 0xCF9 is not decoded.
        let plain = PCIHostBridge()
        plain.write(port: 0xCF9, size: 1, value: 0x06)
        #expect(plain.read(port: 0xCF9, size: 1) == 0xFF)
    }

    @Test func hostileAccessesNeitherTrapNorReachFunctionsMisaligned() {
        let bench = PCIBench()
        let function = RecordingFunction()
        #expect(bench.bridge.register(function, device: 1))
        var fuzzer = PortFuzzer(seed: 0xCF8)
        for round in 0..<100_000 {
            var access = fuzzer.access(around: bench.bridge.ports)
            // Aim a share of the addresses at the registered slot.
            if access.port == 0xCF8 && access.size == 4 && round % 3 == 0 {
                access.value = access.value & 0x7F00_00FF | 0x8000_0800
            }
            if Bool.random(using: &fuzzer) {
                bench.bus.write(port: access.port, size: access.size, value: access.value)
            } else {
                _ = bench.bus.read(port: access.port, size: access.size)
            }
        }
        let accesses = function.accesses.all
        #expect(!accesses.isEmpty)
        #expect(accesses.allSatisfy { $0.offset < 256 && [1, 2, 4].contains($0.size) && Int($0.offset) % $0.size == 0 })
        #expect(accesses.allSatisfy { $0.size == 4 || $0.value >> (8 * UInt32($0.size)) == 0 })
        #expect(bench.read(device: 0, offset: 0, size: 4) == 0x0D57_8086)
    }
}
