/// Everything that can go wrong while reading a guest kernel image.
///
/// Kernel files are untrusted input, so every malformed field ends up here
/// instead of trapping. `description` is one plain sentence meant to be shown
/// to the user as is (by `xeno` and in `xenod` logs).
public enum GuestImageError: Error, CustomStringConvertible, Equatable, Sendable {
    // Files.
    case fileNotFound(path: String)
    case permissionDenied(path: String)
    case notARegularFile(path: String)
    case fileTooLarge(path: String, size: Int, limit: Int)
    case io(path: String, operation: String, errno: Int32)

    // bzImage.
    case notBzImage(reason: String)
    case bootProtocolTooOld(version: UInt16, needed: UInt16)
    case payloadOutOfRange(offset: Int, length: Int, fileSize: Int)
    case unsupportedCompression(PayloadCompression, firstBytes: [UInt8])

    // LZ4.
    case notLZ4Legacy(magic: UInt32)
    case lz4Corrupt(reason: String)
    case decompressionLimitExceeded(limit: Int)

    // ELF.
    case notELF(reason: String)
    case unsupportedELF(reason: String)
    case malformedELF(reason: String)

    // Xen notes.
    case noXenNotes
    case malformedXenNote(type: UInt32, reason: String)

    // Whole-file detection.
    case notAKernel(reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): no such file"
        case .permissionDenied(let path):
            return "\(path): permission denied"
        case .notARegularFile(let path):
            return "\(path): not a regular file"
        case .fileTooLarge(let path, let size, let limit):
            return "\(path): file is \(size) bytes, more than the \(describeSize(limit)) limit"
        case .io(let path, let operation, let code):
            return "\(path): \(operation) failed: \(errnoText(code))"
        case .notBzImage(let reason):
            return "not a bzImage: \(reason)"
        case .bootProtocolTooOld(let version, let needed):
            return "bzImage boot protocol \(protocolText(version)) is too old; Xenolith needs \(protocolText(needed)) or later for the payload fields"
        case .payloadOutOfRange(let offset, let length, let fileSize):
            return "bzImage payload (offset 0x\(hex(offset)), length 0x\(hex(length))) lies outside the \(fileSize)-byte file (truncated?)"
        case .unsupportedCompression(let kind, let first):
            if kind == .unknown {
                let shown = first.map { hex($0, width: 2) }.joined(separator: " ")
                return "kernel payload has an unrecognised compression format (first bytes \(shown)); Xenolith decompresses LZ4 (Debian's default)"
            }
            return "kernel payload is \(kind.name)-compressed; Xenolith decompresses LZ4 (Debian's default)"
        case .notLZ4Legacy(let magic):
            if magic == LZ4.frameMagic {
                return "payload is an LZ4 frame (magic 0x184D2204), not the legacy format Linux uses (magic 0x184C2102)"
            }
            return "not an LZ4 legacy frame: magic is 0x\(hex(magic, width: 8)), expected 0x184C2102"
        case .lz4Corrupt(let reason):
            return "LZ4 data is corrupt: \(reason)"
        case .decompressionLimitExceeded(let limit):
            return "decompressed kernel would be larger than the \(describeSize(limit)) limit"
        case .notELF(let reason):
            return "not an ELF file: \(reason)"
        case .unsupportedELF(let reason):
            return "unsupported ELF file: \(reason)"
        case .malformedELF(let reason):
            return "malformed ELF file: \(reason)"
        case .noXenNotes:
            return "kernel has no Xen PV support: no Xen ELF notes"
        case .malformedXenNote(let type, let reason):
            return "malformed Xen ELF note \(XenNotes.noteName(type)): \(reason)"
        case .notAKernel(let reason):
            return "not a kernel image: \(reason)"
        }
    }
}

// MARK: - Formatting helpers shared by the module's messages.

func hex<T: BinaryInteger>(_ value: T, width: Int = 0) -> String {
    let digits = String(value, radix: 16)
    if digits.count >= width { return digits }
    return String(repeating: "0", count: width - digits.count) + digits
}

/// Boot protocol versions are written major.minor with a two-digit decimal
/// minor, as boot.rst does (0x020f is "2.15").
func protocolText(_ version: UInt16) -> String {
    let minor = Int(version & 0xff)
    return "\(version >> 8).\(minor < 10 ? "0" : "")\(minor)"
}

func describeSize(_ bytes: Int) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
    if bytes >= 1 << 10 && bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
    return "\(bytes)-byte"
}
