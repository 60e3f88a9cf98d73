import Synchronization
import Testing
@testable import Machine

@Suite struct PowerControlTests {
    final class Events: Sendable {
        let off = Atomic<Int>(0), resets = Atomic<Int>(0)
    }

    @Test func softOffAndResetAsLinuxWritesThem() {
        let e = Events()
        let p = PowerControl(base: 0x600, powerOff: { e.off.add(1, ordering: .relaxed) },
                             reset: { e.resets.add(1, ordering: .relaxed) })
        p.write(port: 0x600, size: 1, value: 5 << 2)            // SLP_TYP without SLP_EN: nothing
        #expect(e.off.load(ordering: .relaxed) == 0)
        p.write(port: 0x600, size: 1, value: 3 << 2 | 0x20)     // S3 is not offered
        #expect(e.off.load(ordering: .relaxed) == 0)
        p.write(port: 0x600, size: 1, value: 5 << 2 | 0x20)     // S5 + SLP_EN
        #expect(e.off.load(ordering: .relaxed) == 1)
        p.write(port: 0x602, size: 1, value: 2)
        #expect(e.resets.load(ordering: .relaxed) == 0)
        p.write(port: 0x602, size: 1, value: 1)
        #expect(e.resets.load(ordering: .relaxed) == 1)
        #expect(p.read(port: 0x601, size: 1) == 0)
    }

    @Test func powerButtonStatusIsSetByThePressAndClearedByWritingOne() {
        let p = PowerControl(base: 0x600, powerOff: {}, reset: {})
        #expect(p.ports == 0x600...0x603)
        #expect(p.read(port: 0x603, size: 1) == 0 && !p.powerButtonPending)
        p.pressPowerButton()
        #expect(p.read(port: 0x603, size: 1) == 1 && p.powerButtonPending)
        p.write(port: 0x603, size: 1, value: 0)                 // writing 0 clears nothing
        #expect(p.read(port: 0x603, size: 1) == 1)
        p.write(port: 0x603, size: 1, value: 1)
        #expect(p.read(port: 0x603, size: 1) == 0 && !p.powerButtonPending)
    }
}
