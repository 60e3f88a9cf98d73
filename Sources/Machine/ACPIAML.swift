/// An encoder for the few AML terms the DSDT needs (ACPI 6.4 §20.2). Each
/// function returns a term's complete encoding, so terms nest by
/// concatenation and an enclosing PkgLength always counts finished bytes.
///
/// Names and IDs come from this module's code, never from the guest or the
/// user: a malformed one is a programming error and traps.
enum AML {
    /// Opcodes (§20.2.5).
    enum Opcode {
        static let zero: UInt8 = 0x00
        static let one: UInt8 = 0x01
        static let name: UInt8 = 0x08
        static let bytePrefix: UInt8 = 0x0A
        static let wordPrefix: UInt8 = 0x0B
        static let dwordPrefix: UInt8 = 0x0C
        static let qwordPrefix: UInt8 = 0x0E
        static let scope: UInt8 = 0x10
        static let buffer: UInt8 = 0x11
        static let package: UInt8 = 0x12
        static let extendedPrefix: UInt8 = 0x5B
        static let device: UInt8 = 0x82             // after extendedPrefix
    }

    /// Name string prefixes (§20.2.2).
    enum NamePrefix {
        static let root = UInt8(ascii: "\\")
        static let dualName: UInt8 = 0x2E
        static let multiName: UInt8 = 0x2F
    }

    /// The largest PkgLength: 28 bits (four bytes, §20.2.4).
    static let maximumPackageLength = (1 << 28) - 1

    // MARK: Named objects and scopes

    /// `Name(name, object)`: NameOp NameString DataRefObject.
    static func name(_ name: String, _ object: [UInt8]) -> [UInt8] {
        [Opcode.name] + nameString(name) + object
    }

    /// `Scope(path) { terms }`: ScopeOp PkgLength NameString TermList.
    static func scope(_ path: String, _ terms: [[UInt8]]) -> [UInt8] {
        [Opcode.scope] + withPackageLength(nameString(path) + terms.joined())
    }

    /// `Device(name) { terms }`: ExtOpPrefix DeviceOp PkgLength NameString TermList.
    static func device(_ name: String, _ terms: [[UInt8]]) -> [UInt8] {
        [Opcode.extendedPrefix, Opcode.device] + withPackageLength(nameString(name) + terms.joined())
    }

    // MARK: Data objects

    /// `Package() { elements }`: PackageOp PkgLength NumElements PackageElementList.
    static func package(_ elements: [[UInt8]]) -> [UInt8] {
        precondition(elements.count <= 255, "AML: a Package holds at most 255 elements")
        return [Opcode.package] + withPackageLength([UInt8(elements.count)] + elements.joined())
    }

    /// `Buffer() { bytes }`: BufferOp PkgLength BufferSize ByteList.
    static func buffer(_ bytes: [UInt8]) -> [UInt8] {
        [Opcode.buffer] + withPackageLength(integer(UInt64(bytes.count)) + bytes)
    }

    /// The shortest encoding of an integer constant (§20.2.3): ZeroOp,
    /// OneOp, or a Byte/Word/DWord/QWord prefix and the value.
    static func integer(_ value: UInt64) -> [UInt8] {
        switch value {
        case 0: return [Opcode.zero]
        case 1: return [Opcode.one]
        case ...0xFF: return [Opcode.bytePrefix, UInt8(value)]
        case ...0xFFFF: return littleEndian(Opcode.wordPrefix, UInt16(value))
        case ...0xFFFF_FFFF: return littleEndian(Opcode.dwordPrefix, UInt32(value))
        default: return littleEndian(Opcode.qwordPrefix, value)
        }
    }

    /// `EisaId("PNP0A03")`: a DWordConst holding the compressed EISA ID
    /// (§19.6.35): three letters of five bits each ('A' is 1), then four hex
    /// digits, stored most significant byte first.
    static func eisaID(_ id: String) -> [UInt8] {
        let chars = Array(id.utf8)
        precondition(chars.count == 7, "AML: EISA ID '\(id)' is not 3 letters and 4 hex digits")
        var value: UInt32 = 0
        for c in chars[0..<3] {
            precondition((UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c), "AML: EISA ID '\(id)' vendor is not A-Z")
            value = value << 5 | UInt32(c - 0x40)
        }
        for c in chars[3..<7] {
            guard let digit = hexDigitValue(c) else { preconditionFailure("AML: EISA ID '\(id)' product is not hex") }
            value = value << 4 | UInt32(digit)
        }
        return [Opcode.dwordPrefix] + (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
    }

    /// `ResourceTemplate() { descriptors }`: a Buffer of resource
    /// descriptors closed by an End Tag (§6.4.2.9).
    static func resourceTemplate(_ descriptors: [[UInt8]]) -> [UInt8] {
        buffer(ResourceDescriptor.terminated(Array(descriptors.joined())))
    }

    // MARK: Encoding pieces

    /// `contents` preceded by the PkgLength that counts them and itself.
    static func withPackageLength(_ contents: [UInt8]) -> [UInt8] {
        packageLength(contentLength: contents.count) + contents
    }

    /// PkgLength (§20.2.4) for `contentLength` bytes that follow it. The
    /// encoded length includes the PkgLength's own bytes, so the encoding
    /// is the shortest of 1...4 bytes whose total still fits it. One byte
    /// holds up to 63 in bits 5:0. Longer: bits 7:6 of the lead byte count
    /// the bytes that follow, its bits 3:0 are the low nibble of the
    /// length, and each following byte the next eight bits.
    static func packageLength(contentLength: Int) -> [UInt8] {
        precondition(contentLength >= 0)
        if contentLength + 1 <= 0x3F { return [UInt8(contentLength + 1)] }
        for following in 1...3 {
            let total = contentLength + 1 + following
            guard total < 1 << (4 + 8 * following) else { continue }
            var bytes = [UInt8(following << 6) | UInt8(total & 0x0F)]
            for i in 0..<following { bytes.append(UInt8(truncatingIfNeeded: total >> (4 + 8 * i))) }
            return bytes
        }
        preconditionFailure("AML: \(contentLength) bytes exceed the largest PkgLength")
    }

    /// A NameString (§20.2.2): an optional root prefix, then one NameSeg,
    /// a DualNamePrefix and two, or a MultiNamePrefix, a count and more.
    /// Segments are separated by '.', and a segment shorter than four
    /// characters is padded with '_' as ASL does.
    static func nameString(_ path: String) -> [UInt8] {
        var text = Substring(path)
        var encoded: [UInt8] = []
        if text.first == "\\" {
            encoded.append(NamePrefix.root)
            text = text.dropFirst()
        }
        let segments = text.split(separator: ".", omittingEmptySubsequences: false).map(nameSegment)
        precondition(!segments.isEmpty && segments.count <= 255, "AML: bad name '\(path)'")
        switch segments.count {
        case 1: break
        case 2: encoded.append(NamePrefix.dualName)
        default: encoded += [NamePrefix.multiName, UInt8(segments.count)]
        }
        return encoded + segments.joined()
    }

    /// A NameSeg: a lead character A-Z or '_', three more of A-Z, 0-9, '_'.
    private static func nameSegment(_ segment: Substring) -> [UInt8] {
        let chars = Array(segment.utf8)
        precondition((1...4).contains(chars.count), "AML: name segment '\(segment)' is not 1 to 4 characters")
        for (i, c) in chars.enumerated() {
            let isLead = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c) || c == UInt8(ascii: "_")
            let isDigit = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
            precondition(isLead || (i > 0 && isDigit), "AML: name segment '\(segment)' has a bad character")
        }
        return chars + [UInt8](repeating: UInt8(ascii: "_"), count: 4 - chars.count)
    }

    private static func hexDigitValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func littleEndian<T: FixedWidthInteger>(_ prefix: UInt8, _ value: T) -> [UInt8] {
        var bytes = [prefix]
        bytes.appendLittleEndian(value)
        return bytes
    }
}
