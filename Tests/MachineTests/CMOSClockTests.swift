import Glibc
import Synchronization
import Testing
@testable import Machine

/// A host clock the test moves by hand.
private final class ManualClock: Sendable {
    private let seconds: Atomic<Int>
    init(_ start: Int) { seconds = Atomic(start) }
    var now: Int { seconds.load(ordering: .relaxed) }
    func advance(by delta: Int) { seconds.add(delta, ordering: .relaxed) }
}

/// An RTC on a port bus at a chosen host time.
private struct ClockBench {
    let bus = PortBus()
    let clock: ManualClock
    let rtc: CMOSClock

    init(at seconds: Int) {
        let clock = ManualClock(seconds)
        self.clock = clock
        rtc = CMOSClock(now: { clock.now })
        _ = bus.register(rtc)
    }

    subscript(register: UInt8) -> UInt8 {
        get {
            bus.write(port: 0x70, size: 1, value: UInt32(register))
            return UInt8(truncatingIfNeeded: bus.read(port: 0x71, size: 1))
        }
        nonmutating set {
            bus.write(port: 0x70, size: 1, value: UInt32(register))
            bus.write(port: 0x71, size: 1, value: UInt32(newValue))
        }
    }

    /// Seconds, minutes, hours, weekday, day, month, year, century.
    var timeRegisters: [UInt8] { [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32].map { self[$0] } }
}

/// Thursday 2024-02-29 13:45:07 UTC.
private let leapDayAfternoon = 1_709_214_307

@Suite struct CMOSClockTests {
    @Test func readsTheHostTimeInBCDByDefault() {
        let bench = ClockBench(at: leapDayAfternoon)
        #expect(bench[0x0B] == 0x02)                          // 24-hour, BCD
        #expect(bench.timeRegisters == [0x07, 0x45, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20])
        bench.clock.advance(by: 60 * 60 * 24 + 3)             // into March
        #expect(bench.timeRegisters == [0x10, 0x45, 0x13, 0x06, 0x01, 0x03, 0x24, 0x20])
    }

    @Test func binaryModeReadsPlainNumbers() {
        let bench = ClockBench(at: leapDayAfternoon)
        bench[0x0B] = 0x06
        #expect(bench[0x0B] == 0x06)
        #expect(bench.timeRegisters == [7, 45, 13, 5, 29, 2, 24, 20])
    }

    @Test func twelveHourModeMarksPM() {
        let afternoon = ClockBench(at: leapDayAfternoon)
        afternoon[0x0B] = 0x00                                // 12-hour, BCD
        #expect(afternoon[0x04] == 0x81)                      // 1 PM
        afternoon[0x0B] = 0x04                                // 12-hour, binary
        #expect(afternoon[0x04] == 0x81)
        let midnight = ClockBench(at: 1_709_166_600)          // 00:30
        midnight[0x0B] = 0x00
        #expect(midnight[0x04] == 0x12)                       // 12 AM
        let noon = ClockBench(at: 1_709_208_300)              // 12:05
        noon[0x0B] = 0x00
        #expect(noon[0x04] == 0x92)                           // 12 PM
    }

    @Test func statusRegistersLetLinuxReadTheClock() {
        let bench = ClockBench(at: leapDayAfternoon)
        #expect(bench[0x0A] & 0x80 == 0)                      // never update-in-progress
        #expect(bench[0x0A] == 0x26)
        #expect(bench[0x0C] == 0)
        #expect(bench[0x0D] == 0x80)                          // valid RAM and time
        bench[0x0D] = 0                                       // read-only
        bench[0x0A] = 0xA6                                    // UIP is read-only
        #expect(bench[0x0D] == 0x80 && bench[0x0A] == 0x26)
    }

    @Test func nvramRoundTrips() {
        let bench = ClockBench(at: leapDayAfternoon)
        let ramRegisters = [0x01, 0x03, 0x05] + (0x0E..<0x80).filter { $0 != 0x32 }
        for register in ramRegisters { bench[UInt8(register)] = UInt8(register ^ 0xA5) }
        for register in ramRegisters { #expect(bench[UInt8(register)] == UInt8(register ^ 0xA5)) }
        #expect(bench[0x00] == 0x07)                          // the clock is untouched
    }

    @Test func nmiMaskBitIsNotPartOfTheIndex() {
        let bench = ClockBench(at: leapDayAfternoon)
        #expect(bench[0x80 | 0x0D] == 0x80)                   // status D, NMIs masked
        #expect(bench.rtc.isNMIMasked)
        #expect(bench[0x80 | 0x00] == 0x07)
        bench[0x80 | 0x40] = 0x3C
        #expect(bench[0x40] == 0x3C)
        #expect(!bench.rtc.isNMIMasked)
        #expect(bench.bus.read(port: 0x70, size: 1) == 0xFF)  // index is write-only
    }

    @Test func guestSetTimeSticksAndRunsOn() {
        // hwclock --systohc: SET, the fields one by one, then clear SET.
        let bench = ClockBench(at: leapDayAfternoon)
        bench[0x0B] = 0x82
        bench.clock.advance(by: 5)
        #expect(bench[0x00] == 0x07)                          // frozen while SET
        for (register, value): (UInt8, UInt8) in [(0x00, 0x59), (0x02, 0x59), (0x04, 0x23),
                                                   (0x07, 0x31), (0x08, 0x12), (0x09, 0x99), (0x32, 0x19)] {
            bench[register] = value
        }
        #expect(bench.timeRegisters == [0x59, 0x59, 0x23, 0x05, 0x31, 0x12, 0x99, 0x19])
        bench[0x0B] = 0x02
        bench.clock.advance(by: 2)
        // 1999-12-31 23:59:59 + 2 s = Saturday 2000-01-01 00:00:01.
        #expect(bench.timeRegisters == [0x01, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20])
    }

    @Test func setFieldsNeverPassThroughAnInvalidDate() {
        // From February, day 31 is written before month 3: frozen fields
        // must not roll over to March 2 before the month arrives.
        let bench = ClockBench(at: leapDayAfternoon)
        bench[0x0B] = 0x82
        bench[0x07] = 0x31
        bench[0x08] = 0x03
        bench[0x0B] = 0x02
        #expect(bench[0x07] == 0x31 && bench[0x08] == 0x03)
    }

    @Test func singleFieldWriteWithoutSETAdjustsTheClock() {
        let bench = ClockBench(at: leapDayAfternoon)
        bench[0x02] = 0x10                                    // minutes
        #expect(bench.timeRegisters.prefix(3) == [0x07, 0x10, 0x13])
        bench[0x02] = 0x7A                                    // not BCD: ignored
        bench[0x04] = 0x24                                    // no hour 24: ignored
        #expect(bench.timeRegisters.prefix(3) == [0x07, 0x10, 0x13])
        bench[0x0B] = 0x00                                    // 12-hour write: 11 PM
        bench[0x04] = 0x91
        bench[0x0B] = 0x06
        #expect(bench[0x04] == 23)
    }

    @Test func wordWriteSelectsAndWritesTogether() {
        let bench = ClockBench(at: leapDayAfternoon)
        bench.bus.write(port: 0x70, size: 2, value: 0xCD40)
        #expect(bench[0x40] == 0xCD)
        #expect(bench.bus.read(port: 0x70, size: 2) == 0xCDFF)
    }

    @Test func calendarConversionMatchesGmtime() {
        var fuzzer = PortFuzzer(seed: 0x146818)
        let samples = [0, -1, 86_399, 951_782_400, 4_107_542_400, -62_167_219_200, 253_402_300_799]
            + (0..<5000).map { _ in Int.random(in: -62_167_219_200...253_402_300_799, using: &fuzzer) }
        for seconds in samples {
            var fields = tm()
            var time = time_t(seconds)
            gmtime_r(&time, &fields)
            let calendar = CalendarTime(secondsSinceEpoch: seconds)
            #expect(calendar == CalendarTime(
                year: Int(fields.tm_year) + 1900, month: Int(fields.tm_mon) + 1, day: Int(fields.tm_mday),
                hour: Int(fields.tm_hour), minute: Int(fields.tm_min), second: Int(fields.tm_sec),
                weekday: Int(fields.tm_wday) + 1))
            #expect(calendar.secondsSinceEpoch == seconds)
        }
    }

    @Test func defaultClockIsTheHostWallClock() {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        #expect(abs(CMOSClock.hostWallClockSeconds() - Int(now.tv_sec)) <= 1)
    }

    @Test func hostileAccessesNeitherTrapNorBreakTheClock() {
        let bench = ClockBench(at: leapDayAfternoon)
        var fuzzer = PortFuzzer(seed: 0x70)
        for _ in 0..<100_000 {
            let access = fuzzer.access(around: bench.rtc.ports)
            if Bool.random(using: &fuzzer) {
                bench.bus.write(port: access.port, size: access.size, value: access.value)
            } else {
                _ = bench.bus.read(port: access.port, size: access.size)
            }
        }
        #expect(bench[0x0D] == 0x80)
        bench[0x0B] = 0x06                                    // binary, 24 h, SET off
        let fields = bench.timeRegisters.map(Int.init)
        #expect(fields[0] < 60 && fields[1] < 60 && fields[2] < 24)
        #expect((1...7).contains(fields[3]) && (1...31).contains(fields[4]) && (1...12).contains(fields[5]))
        #expect(fields[6] < 100 && fields[7] < 100)
    }
}
