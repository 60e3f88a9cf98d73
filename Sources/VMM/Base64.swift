/// Standard base64 (RFC 4648, `=` padding), as busybox's `base64` writes
/// and reads it: the encoding `xeno exec` and the guest agent use to carry
/// commands and output over line-based channels.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// The value of one alphabet byte, or nil.
    @inline(__always)
    static func value(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): b - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): b - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }

    static func encodedLength(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    /// The decoded length of well-formed text (whole quanta, at most two
    /// `=` and only at the end), or nil.
    static func decodedLength<C: Collection>(_ text: C) -> Int? where C.Element == UInt8 {
        guard text.count % 4 == 0 else { return nil }
        var padding = 0
        for b in text {
            if b == UInt8(ascii: "=") {
                padding += 1
            } else if padding > 0 || value(b) == nil {
                return nil
            }
        }
        guard padding <= 2 else { return nil }
        return text.count / 4 * 3 - padding
    }

    static func encode<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(encodedLength(bytes.count))
        var i = bytes.startIndex
        while i != bytes.endIndex {
            var quantum: UInt32 = 0, n = 0
            while n < 3 && i != bytes.endIndex {
                quantum |= UInt32(bytes[i]) << (16 - 8 * UInt32(n))
                n += 1
                i = bytes.index(after: i)
            }
            for k in 0..<4 {
                out.append(k <= n ? alphabet[Int((quantum >> (18 - 6 * UInt32(k))) & 63)] : UInt8(ascii: "="))
            }
        }
        return out
    }

    /// Appends the bytes `text` encodes to `out`; false if it is not well formed.
    static func decode<C: Collection>(_ text: C, into out: inout [UInt8]) -> Bool where C.Element == UInt8 {
        guard decodedLength(text) != nil else { return false }
        var quantum: UInt32 = 0, n = 0
        for b in text {
            guard let v = value(b) else { break }       // padding: the end
            quantum = quantum << 6 | UInt32(v)
            n += 1
            if n == 4 {
                out.append(UInt8(quantum >> 16)); out.append(UInt8(quantum >> 8 & 0xff)); out.append(UInt8(quantum & 0xff))
                quantum = 0; n = 0
            }
        }
        if n == 3 {
            out.append(UInt8(quantum >> 10)); out.append(UInt8(quantum >> 2 & 0xff))
        } else if n == 2 {
            out.append(UInt8(quantum >> 4))
        }
        return true
    }
}
