/// The `type` field of a xenstore message header (`enum xsd_sockmsg_type` in
/// `xen/io/xs_wire.h`). A struct rather than an enum so that a header with an
/// unknown number survives parsing and can be answered with an error.
public struct XenStoreMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let control = Self(rawValue: 0)
    /// The old name of `control`; same number.
    public static let debug = Self(rawValue: 0)
    public static let directory = Self(rawValue: 1)
    public static let read = Self(rawValue: 2)
    public static let getPerms = Self(rawValue: 3)
    public static let watch = Self(rawValue: 4)
    public static let unwatch = Self(rawValue: 5)
    public static let transactionStart = Self(rawValue: 6)
    public static let transactionEnd = Self(rawValue: 7)
    public static let introduce = Self(rawValue: 8)
    public static let release = Self(rawValue: 9)
    public static let getDomainPath = Self(rawValue: 10)
    public static let write = Self(rawValue: 11)
    public static let mkdir = Self(rawValue: 12)
    public static let rm = Self(rawValue: 13)
    public static let setPerms = Self(rawValue: 14)
    public static let watchEvent = Self(rawValue: 15)
    public static let error = Self(rawValue: 16)
    public static let isDomainIntroduced = Self(rawValue: 17)
    public static let resume = Self(rawValue: 18)
    public static let setTarget = Self(rawValue: 19)
    // 20 was XS_RESTRICT, since removed.
    public static let resetWatches = Self(rawValue: 21)
    public static let directoryPart = Self(rawValue: 22)
    /// Guaranteed never to be a valid type.
    public static let invalid = Self(rawValue: 0xffff)

    public var description: String {
        switch rawValue {
        case 0: "XS_CONTROL"
        case 1: "XS_DIRECTORY"
        case 2: "XS_READ"
        case 3: "XS_GET_PERMS"
        case 4: "XS_WATCH"
        case 5: "XS_UNWATCH"
        case 6: "XS_TRANSACTION_START"
        case 7: "XS_TRANSACTION_END"
        case 8: "XS_INTRODUCE"
        case 9: "XS_RELEASE"
        case 10: "XS_GET_DOMAIN_PATH"
        case 11: "XS_WRITE"
        case 12: "XS_MKDIR"
        case 13: "XS_RM"
        case 14: "XS_SET_PERMS"
        case 15: "XS_WATCH_EVENT"
        case 16: "XS_ERROR"
        case 17: "XS_IS_DOMAIN_INTRODUCED"
        case 18: "XS_RESUME"
        case 19: "XS_SET_TARGET"
        case 21: "XS_RESET_WATCHES"
        case 22: "XS_DIRECTORY_PART"
        default: "XS_UNKNOWN(\(rawValue))"
        }
    }
}

/// Why bytes could not be taken as a xenstore message.
public enum XenStoreMessageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The header's `len` exceeds `XENSTORE_PAYLOAD_MAX` (4096): a protocol
    /// violation, not something to wait for more bytes of.
    case payloadTooLarge(length: UInt32)
    /// Fewer bytes than the header (and its `len`) require.
    case truncated(needed: Int, available: Int)
    /// More bytes than one message (for `init(bytes:)`, which takes exactly one).
    case trailingBytes(count: Int)

    public var description: String {
        switch self {
        case .payloadTooLarge(let n):
            "xenstore message payload of \(n) bytes exceeds XENSTORE_PAYLOAD_MAX (\(XenStoreMessage.maxPayload))"
        case .truncated(let needed, let available):
            "xenstore message truncated: \(available) of \(needed) bytes"
        case .trailingBytes(let n):
            "\(n) bytes after the end of the xenstore message"
        }
    }
}

/// One xenstore message: the 16-byte `struct xsd_sockmsg` header
/// (`type`, `req_id`, `tx_id`, `len`, each a little-endian u32) and `len`
/// payload bytes. Requests, replies and watch events all have this shape.
public struct XenStoreMessage: Equatable, Sendable, CustomStringConvertible {
    public static let headerSize = 16
    /// `XENSTORE_PAYLOAD_MAX`.
    public static let maxPayload = 4096

    public var type: XenStoreMessageType
    public var reqID: UInt32
    public var txID: UInt32
    public var payload: [UInt8]

    public init(type: XenStoreMessageType, reqID: UInt32 = 0, txID: UInt32 = 0, payload: [UInt8] = []) {
        self.type = type
        self.reqID = reqID
        self.txID = txID
        self.payload = payload
    }

    /// A message whose payload is `strings`, each followed by a NUL (the
    /// shape of most requests: `XS_READ` is `path\0`, `XS_WATCH` is
    /// `path\0token\0`).
    public init(type: XenStoreMessageType, reqID: UInt32 = 0, txID: UInt32 = 0, strings: [String]) {
        var p: [UInt8] = []
        for s in strings {
            p.append(contentsOf: s.utf8)
            p.append(0)
        }
        self.init(type: type, reqID: reqID, txID: txID, payload: p)
    }

    /// The payload split at NULs, as strings (for tests and logs; a
    /// trailing NUL does not make an extra empty string).
    public var payloadStrings: [String] {
        var out: [String] = []
        var start = 0
        for (i, b) in payload.enumerated() where b == 0 {
            out.append(String(decoding: payload[start..<i], as: UTF8.self))
            start = i + 1
        }
        if start < payload.count { out.append(String(decoding: payload[start...], as: UTF8.self)) }
        return out
    }

    public var description: String {
        "\(type) req=\(reqID) tx=\(txID) \(payloadStrings)"
    }

    /// The payload length a header announces, or nil if fewer than 16 bytes.
    public static func payloadLength(header bytes: UnsafeRawBufferPointer) -> UInt32? {
        bytes.count >= headerSize ? le32(bytes, 12) : nil
    }

    /// Parses the message at the start of `bytes`. Returns nil while the
    /// message is incomplete (the caller waits for more bytes), the message
    /// and the number of bytes it occupies otherwise. Throws only
    /// `payloadTooLarge`, as soon as the header is there.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(XenStoreMessageError) -> (message: XenStoreMessage, length: Int)? {
        guard bytes.count >= headerSize else { return nil }
        let len = le32(bytes, 12)
        guard len <= UInt32(maxPayload) else { throw .payloadTooLarge(length: len) }
        let total = headerSize + Int(len)
        guard bytes.count >= total else { return nil }
        let m = XenStoreMessage(
            type: XenStoreMessageType(rawValue: le32(bytes, 0)),
            reqID: le32(bytes, 4),
            txID: le32(bytes, 8),
            payload: Array(UnsafeRawBufferPointer(rebasing: bytes[headerSize..<total])))
        return (m, total)
    }

    /// `parse` over an array.
    public static func parse(_ bytes: [UInt8]) throws(XenStoreMessageError) -> (message: XenStoreMessage, length: Int)? {
        // Typed throws do not pass through withUnsafeBytes's rethrows; carry the result out.
        let r: Result<(message: XenStoreMessage, length: Int)?, XenStoreMessageError> = bytes.withUnsafeBytes { buf in
            do throws(XenStoreMessageError) { return .success(try parse(buf)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    /// Exactly one message: refuses short input and trailing bytes.
    public init(bytes: [UInt8]) throws(XenStoreMessageError) {
        guard let (m, n) = try Self.parse(bytes) else {
            let needed: Int
            if bytes.count >= Self.headerSize {
                needed = Self.headerSize + Int(bytes.withUnsafeBytes { Self.le32($0, 12) })
            } else {
                needed = Self.headerSize
            }
            throw .truncated(needed: needed, available: bytes.count)
        }
        guard n == bytes.count else { throw .trailingBytes(count: bytes.count - n) }
        self = m
    }

    /// Header and payload as they go on the wire. The payload is not checked
    /// against `maxPayload`: every message this module builds respects it.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.headerSize + payload.count)
        encode(into: &out)
        return out
    }

    /// Appends the wire form to `out`.
    public func encode(into out: inout [UInt8]) {
        for v in [type.rawValue, reqID, txID, UInt32(truncatingIfNeeded: payload.count)] {
            out.append(UInt8(truncatingIfNeeded: v))
            out.append(UInt8(truncatingIfNeeded: v >> 8))
            out.append(UInt8(truncatingIfNeeded: v >> 16))
            out.append(UInt8(truncatingIfNeeded: v >> 24))
        }
        out.append(contentsOf: payload)
    }

    @inline(__always)
    static func le32(_ b: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(b[offset]) | UInt32(b[offset + 1]) << 8 | UInt32(b[offset + 2]) << 16 | UInt32(b[offset + 3]) << 24
    }
}
