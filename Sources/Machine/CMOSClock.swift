import Glibc
import Synchronization

/// The MC146818 real-time clock and its CMOS RAM: index port 0x70, data port
/// 0x71. The guest reads its wall-clock time here at boot (UTC, as Linux
/// assumes on x86 unless told otherwise).
///
/// - Time comes from `now` (seconds since the epoch, the host's
///   CLOCK_REALTIME by default) plus an offset the guest sets by writing the
///   time registers, so `hwclock --systohc` sticks and the clock runs on from
///   the written time. Bytes that do not form a valid time are ignored.
///   While status B's SET bit is on, the time registers are frozen and
///   collect the guest's writes; clearing SET commits them all at once, so
///   fields written one by one never pass through an invalid date.
/// - Status A's update-in-progress bit always reads 0: every register read
///   samples the clock afresh, and Linux's reader already re-reads the
///   seconds to catch a tick between registers.
/// - Status B's data mode (bit 2, binary vs BCD) and hour format (bit 1,
///   24 vs 12 hours) apply to every time register read and write. Its
///   interrupt enables are stored but no interrupt is raised (IRQ 8 stays
///   low; status C reads 0).
/// - Everything else in the 128 bytes (alarms, the BIOS area) is RAM.
/// - Bit 7 of the index is the NMI mask on a PC; it is kept apart, never
///   part of the register number. The index port reads 0xFF.
public final class CMOSClock: PortDevice, @unchecked Sendable {
    public static let indexPort: UInt16 = 0x70
    public static let dataPort: UInt16 = 0x71
    public let ports: ClosedRange<UInt16> = CMOSClock.indexPort...CMOSClock.dataPort

    private let now: @Sendable () -> Int
    private let state = Mutex(ClockState())

    /// - Parameter now: the host wall clock in seconds since the epoch;
    ///   injectable so tests see a fixed time.
    public init(now: @escaping @Sendable () -> Int = { CMOSClock.hostWallClockSeconds() }) {
        self.now = now
    }

    /// CLOCK_REALTIME, whole seconds.
    public static func hostWallClockSeconds() -> Int {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int(time.tv_sec)
    }

    public func read(port: UInt16, size: Int) -> UInt32 {
        state.withLock { clock in
            ISAByteLanes.read(port: port, size: size, decoded: ports) { bytePort in
                bytePort == CMOSClock.dataPort ? clock.readSelected(now: now) : 0xFF
            }
        }
    }

    public func write(port: UInt16, size: Int, value: UInt32) {
        state.withLock { clock in
            // An `outw` to 0x70 selects and writes in one go, low byte first.
            ISAByteLanes.write(port: port, size: size, value: value, decoded: ports) { bytePort, byte in
                if bytePort == CMOSClock.indexPort {
                    clock.select(byte)
                } else {
                    clock.writeSelected(byte, now: now)
                }
            }
        }
    }

    /// Whether the guest has masked NMIs (index bit 7).
    public var isNMIMasked: Bool { state.withLock { $0.nmiMasked } }
}

private enum Register {
    static let seconds = 0x00
    static let minutes = 0x02
    static let hours = 0x04
    static let dayOfWeek = 0x06
    static let dayOfMonth = 0x07
    static let month = 0x08
    static let year = 0x09
    static let statusA = 0x0A
    static let statusB = 0x0B
    static let statusC = 0x0C
    static let statusD = 0x0D
    /// Not an MC146818 register but where PCs keep it; ACPI's FADT names it.
    static let century = 0x32
}

private enum StatusB {
    static let set: UInt8 = 0x80
    static let updateInterruptEnable: UInt8 = 0x10
    static let binaryMode: UInt8 = 0x04
    static let twentyFourHour: UInt8 = 0x02
}

/// Status D bit 7: the battery is good, RAM and time are valid.
private let validRAMAndTime: UInt8 = 0x80
/// Status A bits 6:0: 32.768 kHz time base, 1024 Hz periodic rate.
private let defaultStatusA: UInt8 = 0x26
/// 12-hour mode: hour bit 7 marks PM.
private let hourPM: UInt8 = 0x80

private struct ClockState {
    var index = 0
    var nmiMasked = false
    var ram = [UInt8](repeating: 0, count: 128)
    /// Added to `now()`: the guest's clock minus the host's.
    var offsetSeconds = 0
    /// The time registers while SET is on.
    var frozenTime: CalendarTime?

    init() {
        ram[Register.statusA] = defaultStatusA
        ram[Register.statusB] = StatusB.twentyFourHour
    }

    var statusB: UInt8 { ram[Register.statusB] }
    var isBinary: Bool { statusB & StatusB.binaryMode != 0 }
    var is24Hour: Bool { statusB & StatusB.twentyFourHour != 0 }

    mutating func select(_ byte: UInt8) {
        nmiMasked = byte & 0x80 != 0
        index = Int(byte & 0x7F)
    }

    func currentTime(now: () -> Int) -> CalendarTime {
        frozenTime ?? CalendarTime(secondsSinceEpoch: now() &+ offsetSeconds)
    }

    mutating func readSelected(now: () -> Int) -> UInt8 {
        switch index {
        case Register.seconds, Register.minutes, Register.hours, Register.dayOfWeek,
             Register.dayOfMonth, Register.month, Register.year, Register.century:
            return encodeTimeRegister(index, of: currentTime(now: now))
        case Register.statusA:
            return ram[Register.statusA] & 0x7F     // UIP: never in an update
        case Register.statusC:
            return 0                                // no interrupt flags
        case Register.statusD:
            return validRAMAndTime
        default:
            return ram[index]
        }
    }

    mutating func writeSelected(_ byte: UInt8, now: () -> Int) {
        switch index {
        case Register.seconds, Register.minutes, Register.hours, Register.dayOfWeek,
             Register.dayOfMonth, Register.month, Register.year, Register.century:
            var time = currentTime(now: now)
            guard decodeTimeRegister(index, from: byte, into: &time) else { return }
            if frozenTime != nil {
                frozenTime = time
            } else {
                commit(time, now: now)
            }
        case Register.statusA:
            ram[Register.statusA] = byte & 0x7F
        case Register.statusB:
            var newStatus = byte
            let wasSet = statusB & StatusB.set != 0
            if newStatus & StatusB.set != 0 {
                // The chip clears the update interrupt enable with SET.
                newStatus &= ~StatusB.updateInterruptEnable
                if !wasSet { frozenTime = currentTime(now: now) }
            } else if wasSet, let frozen = frozenTime {
                frozenTime = nil
                commit(frozen, now: now)
            }
            ram[Register.statusB] = newStatus
        case Register.statusC, Register.statusD:
            break   // read-only
        default:
            ram[index] = byte
        }
    }

    private mutating func commit(_ time: CalendarTime, now: () -> Int) {
        guard let seconds = time.secondsSinceEpoch else { return }
        offsetSeconds = seconds &- now()
    }

    // MARK: Register encoding

    private func encode(_ value: Int) -> UInt8 {
        let value = UInt8(truncatingIfNeeded: value)
        return isBinary ? value : (value / 10) << 4 | value % 10
    }

    /// nil for a byte that is not a number in the current mode (BCD nibbles
    /// above 9).
    private func decode(_ byte: UInt8) -> Int? {
        if isBinary { return Int(byte) }
        guard byte >> 4 <= 9, byte & 0x0F <= 9 else { return nil }
        return Int(byte >> 4) * 10 + Int(byte & 0x0F)
    }

    private func encodeTimeRegister(_ register: Int, of time: CalendarTime) -> UInt8 {
        switch register {
        case Register.seconds: return encode(time.second)
        case Register.minutes: return encode(time.minute)
        case Register.hours:
            if is24Hour { return encode(time.hour) }
            // 12-hour clock: 12 AM, 1 AM ... 11 AM, 12 PM, 1 PM ... 11 PM.
            let hour12 = time.hour % 12 == 0 ? 12 : time.hour % 12
            return encode(hour12) | (time.hour >= 12 ? hourPM : 0)
        case Register.dayOfWeek: return encode(time.weekday)
        case Register.dayOfMonth: return encode(time.day)
        case Register.month: return encode(time.month)
        case Register.year: return encode(positiveModulo(time.year, 100))
        default: return encode(positiveModulo(floorDivide(time.year, 100), 100))   // century
        }
    }

    /// Replaces one field of `time`; false if `byte` is not a valid value
    /// for it.
    private func decodeTimeRegister(_ register: Int, from byte: UInt8, into time: inout CalendarTime) -> Bool {
        if register == Register.hours && !is24Hour {
            guard let hour12 = decode(byte & ~hourPM), (1...12).contains(hour12) else { return false }
            time.hour = hour12 % 12 + (byte & hourPM != 0 ? 12 : 0)
            return true
        }
        guard let value = decode(byte) else { return false }
        switch register {
        case Register.seconds where value < 60: time.second = value
        case Register.minutes where value < 60: time.minute = value
        case Register.hours where value < 24: time.hour = value
        case Register.dayOfWeek where (1...7).contains(value): time.weekday = value
        case Register.dayOfMonth where (1...31).contains(value): time.day = value
        case Register.month where (1...12).contains(value): time.month = value
        case Register.year where value < 100: time.year = floorDivide(time.year, 100) * 100 + value
        case Register.century where value < 100: time.year = value * 100 + positiveModulo(time.year, 100)
        default: return false
        }
        return true
    }
}

// MARK: - Civil time

/// A UTC date and time in the proleptic Gregorian calendar, converted to and
/// from seconds since the epoch with Howard Hinnant's day-count algorithms
/// (exact for any year, no tables, no time zone, matches gmtime_r).
struct CalendarTime: Equatable {
    var year: Int
    /// 1...12
    var month: Int
    /// 1...31
    var day: Int
    var hour: Int
    var minute: Int
    var second: Int
    /// 1 = Sunday ... 7 = Saturday, as the RTC counts.
    var weekday: Int

    init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, weekday: Int) {
        (self.year, self.month, self.day) = (year, month, day)
        (self.hour, self.minute, self.second, self.weekday) = (hour, minute, second, weekday)
    }

    init(secondsSinceEpoch seconds: Int) {
        // Clamp to ±100 million years so no step below can overflow.
        let seconds = min(max(seconds, -3_000_000_000_000_000), 3_000_000_000_000_000)
        let days = floorDivide(seconds, 86_400)
        let secondOfDay = seconds - days * 86_400
        (hour, minute, second) = (secondOfDay / 3600, secondOfDay / 60 % 60, secondOfDay % 60)
        weekday = positiveModulo(days + 4, 7) + 1      // 1970-01-01 was a Thursday
        // Days since 0000-03-01, in 400-year eras of 146097 days.
        let shifted = days + 719_468
        let era = floorDivide(shifted, 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }

    /// nil if a field is out of range. A day past the end of its month
    /// rolls into the next, as mktime does. The weekday is not consulted.
    var secondsSinceEpoch: Int? {
        guard (0...9999).contains(year), (1...12).contains(month), (1...31).contains(day),
              (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second)
        else { return nil }
        let marchBasedYear = month <= 2 ? year - 1 : year
        let era = floorDivide(marchBasedYear, 400)
        let yearOfEra = marchBasedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return days * 86_400 + hour * 3600 + minute * 60 + second
    }
}

private func floorDivide(_ a: Int, _ b: Int) -> Int {
    let quotient = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
}

private func positiveModulo(_ a: Int, _ b: Int) -> Int {
    let remainder = a % b
    return remainder < 0 ? remainder + b : remainder
}

// MARK: - Saved state

/// The index, the NMI mask, the RAM and the guest's offset from the host's
/// clock (with the frozen time while SET is on). The offset, not the time,
/// is what is kept: a restored guest's RTC runs on from the host's clock as
/// it did before, as a real RTC keeps time while the machine is off.
extension CMOSClock: StatefulDevice {
    public func saveState(into writer: inout StateWriter) {
        state.withLock { $0.save(into: &writer) }
    }

    public func restoreState(from reader: inout StateReader) throws(DeviceStateError) {
        let restored = try ClockState(from: &reader)
        state.withLock { $0 = restored }
    }
}

extension ClockState {
    func save(into w: inout StateWriter) {
        w.u8(UInt8(index))
        w.bool(nmiMasked)
        w.block(ram)
        w.u64(UInt64(bitPattern: Int64(offsetSeconds)))
        w.bool(frozenTime != nil)
        if let t = frozenTime {
            w.u64(UInt64(bitPattern: Int64(t.year)))
            for field in [t.month, t.day, t.hour, t.minute, t.second, t.weekday] { w.u8(UInt8(field)) }
        }
    }

    init(from r: inout StateReader) throws(DeviceStateError) {
        self.init()
        let savedIndex = try r.u8()
        nmiMasked = try r.bool()
        let savedRAM = try r.block(limit: 128)
        offsetSeconds = Int(Int64(bitPattern: try r.u64()))
        if try r.bool() {
            let year = Int(Int64(bitPattern: try r.u64()))
            var fields: [Int] = []
            for _ in 0..<6 { fields.append(Int(try r.u8())) }
            frozenTime = CalendarTime(year: year, month: fields[0], day: fields[1], hour: fields[2],
                                      minute: fields[3], second: fields[4], weekday: fields[5])
        }

        func refuse(_ what: String) -> DeviceStateError { DeviceStateError("\(r.what): \(what)") }
        guard savedIndex < 128 else { throw refuse("index \(savedIndex) past the 128 registers (bit 7 is the NMI mask, kept apart)") }
        guard savedRAM.count == 128 else { throw refuse("\(savedRAM.count) bytes of CMOS RAM, not 128") }
        index = Int(savedIndex)
        ram = savedRAM
        guard ram[Register.statusA] & 0x80 == 0 else { throw refuse("status A with update-in-progress stored") }
        // SET freezes the time and clears the update interrupt enable; the
        // frozen time exists exactly while SET is on.
        let set = statusB & StatusB.set != 0
        guard set == (frozenTime != nil) else { throw refuse("status B SET \(set ? "on without" : "off with") a frozen time") }
        guard !set || statusB & StatusB.updateInterruptEnable == 0 else { throw refuse("status B with SET and the update interrupt both on") }
        if let t = frozenTime {
            // Fields as register writes leave them: each checked on its own
            // (a day past its month's end is allowed; it rolls on commit).
            guard abs(t.year) <= 100_000_000, (1...12).contains(t.month), (1...31).contains(t.day),
                  (0...23).contains(t.hour), (0...59).contains(t.minute), (0...59).contains(t.second),
                  (1...7).contains(t.weekday)
            else { throw refuse("frozen time \(t.year)-\(t.month)-\(t.day) \(t.hour):\(t.minute):\(t.second) (weekday \(t.weekday)) out of range") }
        }
        // Keep the offset where a time read can add `now()` without overflow.
        guard abs(offsetSeconds) <= 1 << 60 else { throw refuse("clock offset of \(offsetSeconds) seconds") }
    }
}
