/// A device whose guest-visible state goes into an HVM save image and comes
/// back on restore (`xeno save` of an HVM domain). Every device of the HVM
/// machine has this shape: it writes its registers in its own encoding, and
/// reads back only what it wrote. The restore side is fed a file, so it
/// treats the bytes as untrusted: every count is bounded, every value is
/// checked against what the device can hold, and a mismatch is refused with
/// a line that says what is wrong (the domain then does not start).
///
/// Saving happens with the guest paused and the device's service threads
/// stopped; restoring, on a freshly built device before anything runs.
/// Host-side attachments (the TAP, the disk file, pending console input)
/// are not state: the restored device gets its own.
public protocol StatefulDevice: AnyObject {
    /// Appends the device's state.
    func saveState(into writer: inout StateWriter)
    /// Puts back what `saveState` wrote, consuming exactly that.
    func restoreState(from reader: inout StateReader) throws(DeviceStateError)
}

/// Why saved device state was refused.
public struct DeviceStateError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Little-endian writer for device state.
public struct StateWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    /// A count (u32) and the bytes.
    public mutating func block<C: Collection>(_ b: C) where C.Element == UInt8 {
        u32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }
}

/// Reader for what `StateWriter` wrote; every read is bounded by the bytes left.
public struct StateReader: Sendable {
    private let bytes: [UInt8]
    public private(set) var offset = 0
    /// Names the device in errors.
    public let what: String

    public init(_ bytes: [UInt8], what: String) {
        self.bytes = bytes
        self.what = what
    }

    public var isAtEnd: Bool { offset == bytes.count }

    private mutating func take(_ n: Int) throws(DeviceStateError) -> ArraySlice<UInt8> {
        guard n >= 0, bytes.count - offset >= n else {
            throw DeviceStateError("\(what): the saved state ends early (\(n) more bytes wanted at \(offset) of \(bytes.count))")
        }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    private mutating func integer(_ n: Int) throws(DeviceStateError) -> UInt64 {
        try take(n).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    public mutating func u8() throws(DeviceStateError) -> UInt8 { UInt8(try integer(1)) }
    public mutating func u16() throws(DeviceStateError) -> UInt16 { UInt16(try integer(2)) }
    public mutating func u32() throws(DeviceStateError) -> UInt32 { UInt32(try integer(4)) }
    public mutating func u64() throws(DeviceStateError) -> UInt64 { try integer(8) }

    public mutating func bool() throws(DeviceStateError) -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        case let v: throw DeviceStateError("\(what): \(v) where a flag (0 or 1) was saved")
        }
    }

    /// A `block` of at most `limit` bytes.
    public mutating func block(limit: Int) throws(DeviceStateError) -> [UInt8] {
        let n = Int(try u32())
        guard n <= limit else { throw DeviceStateError("\(what): a saved block of \(n) bytes (at most \(limit) here)") }
        return Array(try take(n))
    }

    /// Refuses state with bytes left over (written by another version).
    public func finish() throws(DeviceStateError) {
        guard isAtEnd else { throw DeviceStateError("\(what): \(bytes.count - offset) bytes of saved state left over") }
    }
}

extension StatefulDevice {
    /// The device's state on its own, as one record.
    public func savedState() -> [UInt8] {
        var writer = StateWriter()
        saveState(into: &writer)
        return writer.bytes
    }

    /// Restores a record `savedState()` made, refusing one cut short or
    /// with bytes left over. `what` names the device in errors.
    public func restoreState(_ bytes: [UInt8], what: String) throws(DeviceStateError) {
        var reader = StateReader(bytes, what: what)
        try restoreState(from: &reader)
        try reader.finish()
    }
}
