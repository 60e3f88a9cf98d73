/// Up to 15 instruction bytes held inline (no heap), e.g. as fetched from
/// guest memory at a faulting rip. 15 is the architectural maximum length of
/// an x86 instruction (SDM vol. 2, 2.3.11): a longer one raises #GP.
public struct InstructionBytes: Equatable, Hashable, Sendable {
    public static let maximumLength = 15

    // Little-endian: byte i lives in bits 8*(i%8) of word i/8.
    private var low: UInt64 = 0
    private var high: UInt64 = 0
    /// How many of the bytes are valid (0...15).
    public private(set) var count: Int = 0

    public init() {}

    /// Copies the first `min(bytes.count, 15)` bytes.
    public init(_ bytes: UnsafeRawBufferPointer) {
        let n = min(bytes.count, Self.maximumLength)
        for i in 0..<n { append(bytes[i]) }
    }

    /// Copies at most 15 bytes from a sequence (convenient in tests).
    public init<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        for b in bytes {
            if count == Self.maximumLength { break }
            append(b)
        }
    }

    /// Appends one byte; ignored once 15 bytes are held.
    public mutating func append(_ byte: UInt8) {
        guard count < Self.maximumLength else { return }
        let shift = UInt64((count & 7) * 8)
        if count < 8 {
            low |= UInt64(byte) << shift
        } else {
            high |= UInt64(byte) << shift
        }
        count += 1
    }

    /// Byte `i`; 0 for `i` outside `0..<count` (never traps).
    public subscript(_ i: Int) -> UInt8 {
        guard i >= 0 && i < count else { return 0 }
        let shift = UInt64((i & 7) * 8)
        return UInt8(truncatingIfNeeded: (i < 8 ? low : high) >> shift)
    }

    /// The valid bytes as a raw buffer, valid only inside `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var words = (low.littleEndian, high.littleEndian)
        let n = count
        return try Swift.withUnsafeBytes(of: &words) { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[0..<n]))
        }
    }
}

extension InstructionBytes: CustomStringConvertible {
    /// Space-separated lowercase hex, as objdump prints them.
    public var description: String {
        var s = ""
        for i in 0..<count {
            if i > 0 { s += " " }
            let b = self[i]
            let digits: StaticString = "0123456789abcdef"
            s.unicodeScalars.append(Unicode.Scalar(digits.utf8Start[Int(b >> 4)]))
            s.unicodeScalars.append(Unicode.Scalar(digits.utf8Start[Int(b & 15)]))
        }
        return s
    }
}
