/// The system description table header every table but the RSDP starts
/// with (ACPI 6.4 §5.2.6), and the checksum rule they all share: the bytes
/// of a table sum to zero modulo 256.
enum SystemDescriptionTable {
    static let headerLength = 36
    static let lengthOffset = 4
    static let checksumOffset = 9
    /// Creator ID and revision: who made the table (for an AML table, the
    /// compiler; here, this builder).
    static let creatorID = "XNLT"
    static let creatorRevision: UInt32 = 1

    /// A complete table: the header for `signature` and `revision`, then
    /// `body`, with Length and Checksum filled in.
    static func make(signature: String, revision: UInt8, config: ACPIConfig, body: [UInt8]) -> [UInt8] {
        var table: [UInt8] = []
        table.reserveCapacity(headerLength + body.count)
        table.appendASCII(signature, width: 4)
        table.appendLittleEndian(UInt32(headerLength + body.count))
        table.append(revision)
        table.append(0)                                     // checksum, below
        table.appendASCII(config.oemID, width: 6)
        table.appendASCII(config.oemTableID, width: 8)
        table.appendLittleEndian(UInt32(1))                 // OEM revision
        table.appendASCII(creatorID, width: 4)
        table.appendLittleEndian(creatorRevision)
        table += body
        table[checksumOffset] = acpiChecksum(table)
        return table
    }
}

/// The byte that makes `bytes` plus itself sum to zero modulo 256.
func acpiChecksum(_ bytes: some Sequence<UInt8>) -> UInt8 {
    0 &- bytes.reduce(0, &+)
}

/// The Root System Description Pointer, revision 2 (ACPI 6.4 §5.2.5.3).
/// Only the XSDT is given: the RSDT address stays 0, which every OS that
/// reads a revision-2 RSDP accepts (Linux prefers the XSDT anyway).
enum RSDP {
    static let length = 36
    static let signature = "RSD PTR "
    /// The ACPI 1.0 checksum covers the first 20 bytes; the extended
    /// checksum covers all 36.
    static let firstChecksumLength = 20
    static let checksumOffset = 8
    static let extendedChecksumOffset = 32

    static func structure(oemID: String, xsdtAddress: UInt64) -> [UInt8] {
        var rsdp: [UInt8] = []
        rsdp.appendASCII(signature, width: 8)
        rsdp.append(0)                                      // checksum, below
        rsdp.appendASCII(oemID, width: 6)
        rsdp.append(2)                                      // revision: ACPI 2.0+
        rsdp.appendLittleEndian(UInt32(0))                  // RsdtAddress: none
        rsdp.appendLittleEndian(UInt32(length))
        rsdp.appendLittleEndian(xsdtAddress)
        rsdp.append(0)                                      // extended checksum, below
        rsdp += [0, 0, 0]                                   // reserved
        rsdp[checksumOffset] = acpiChecksum(rsdp[0..<firstChecksumLength])
        rsdp[extendedChecksumOffset] = acpiChecksum(rsdp)
        return rsdp
    }
}

/// The Extended System Description Table (ACPI 6.4 §5.2.8): 64-bit
/// addresses of every table but the FACS and DSDT (the FADT points at those).
enum XSDT {
    static func length(entries: Int) -> Int { SystemDescriptionTable.headerLength + 8 * entries }

    static func table(config: ACPIConfig, entries: [UInt64]) -> [UInt8] {
        var body: [UInt8] = []
        for address in entries { body.appendLittleEndian(address) }
        return SystemDescriptionTable.make(signature: "XSDT", revision: 1, config: config, body: body)
    }
}

/// A Generic Address Structure (ACPI 6.4 §5.2.3.2): where a register is.
struct GenericAddress {
    /// Address space IDs (Table 5.1).
    enum Space: UInt8 {
        case systemMemory = 0, systemIO = 1
    }

    static let length = 12

    var space: Space
    var bitWidth: UInt8
    /// 0 undefined, 1 byte, 2 word, 3 dword, 4 qword.
    var accessSize: UInt8
    var address: UInt64

    /// An 8-bit I/O port, accessed a byte at a time.
    static func ioPort(_ port: UInt16) -> GenericAddress {
        GenericAddress(space: .systemIO, bitWidth: 8, accessSize: 1, address: UInt64(port))
    }

    var bytes: [UInt8] {
        var b: [UInt8] = [space.rawValue, bitWidth, 0, accessSize]   // bit offset 0
        b.appendLittleEndian(address)
        return b
    }
}

extension Array where Element == UInt8 {
    /// Appends `value` least significant byte first, as every ACPI field is.
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        for i in 0..<(T.bitWidth / 8) {
            append(UInt8(truncatingIfNeeded: value >> (8 * i)))
        }
    }

    /// Appends `text` as exactly `width` bytes: cut, or padded with spaces.
    /// Non-ASCII characters become '?': these fields are ASCII.
    mutating func appendASCII(_ text: String, width: Int) {
        var field = text.unicodeScalars.prefix(width).map { $0.isASCII ? UInt8($0.value) : UInt8(ascii: "?") }
        field += [UInt8](repeating: UInt8(ascii: " "), count: width - field.count)
        self += field
    }
}
