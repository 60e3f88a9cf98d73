import Glibc
@testable import GuestImage

// Builders for synthetic inputs: LZ4 blocks and frames, ELF files, bzImages.

/// Deterministic generator so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xff) } }
func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8((v >> (8 * UInt64($0))) & 0xff) } }

func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}

/// One LZ4 sequence: literals, then a match (absent for the final sequence).
struct Sequence {
    var literals: [UInt8]
    var offset: Int = 0
    var matchLength: Int = 0   // 0 = no match (last sequence)
}

/// Appends an LZ4 length extension: 255s then the remainder.
func appendExtension(_ n: Int, to out: inout [UInt8]) {
    var rest = n
    while rest >= 255 { out.append(255); rest -= 255 }
    out.append(UInt8(rest))
}

/// Encodes sequences into one LZ4 block, exactly as the format specifies.
func encodeBlock(_ sequences: [Sequence]) -> [UInt8] {
    var out: [UInt8] = []
    for s in sequences {
        let lit = s.literals.count
        let ml = s.matchLength == 0 ? 0 : s.matchLength - 4
        var token = UInt8(min(lit, 15)) << 4
        if s.matchLength != 0 { token |= UInt8(min(ml, 15)) }
        out.append(token)
        if lit >= 15 { appendExtension(lit - 15, to: &out) }
        out += s.literals
        if s.matchLength != 0 {
            out += le16(UInt16(s.offset))
            if ml >= 15 { appendExtension(ml - 15, to: &out) }
        }
    }
    return out
}

/// What a block of these sequences must decode to, computed byte by byte.
func referenceDecode(_ sequences: [Sequence]) -> [UInt8] {
    var out: [UInt8] = []
    for s in sequences {
        out += s.literals
        for _ in 0..<s.matchLength { out.append(out[out.count - s.offset]) }
    }
    return out
}

/// A legacy frame of the given blocks, with Linux's size trailer if asked.
func legacyFrame(_ blocks: [[UInt8]], trailer: UInt32? = nil) -> [UInt8] {
    var out = le32(LZ4.legacyMagic)
    for b in blocks { out += le32(UInt32(b.count)) + b }
    if let trailer { out += le32(trailer) }
    return out
}

/// Random sequences exercising every copy path: short and long literal runs,
/// matches at offsets 1..65535 (small periods especially), lengths 4..600.
func randomSequences(_ rng: inout SplitMix64, targetSize: Int) -> [Sequence] {
    var seqs: [Sequence] = []
    var produced = 0
    while produced < targetSize {
        let litCount: Int
        switch rng.next() % 8 {
        case 0: litCount = 0
        case 1: litCount = 15 + Int(rng.next() % 600)
        default: litCount = Int(rng.next() % 20)
        }
        var lits = (0..<litCount).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        if produced + lits.count == 0 { lits = [0x41] }
        produced += lits.count
        let offset: Int
        switch rng.next() % 6 {
        case 0: offset = 1 + Int(rng.next() % 3)
        case 1: offset = 4 + Int(rng.next() % 12)
        case 2: offset = 16 + Int(rng.next() % 48)
        default: offset = 1 + Int(rng.next() % 65535)
        }
        let matchLength: Int
        switch rng.next() % 5 {
        case 0: matchLength = 19 + Int(rng.next() % 600)
        default: matchLength = 4 + Int(rng.next() % 30)
        }
        seqs.append(Sequence(literals: lits, offset: min(offset, produced), matchLength: matchLength))
        produced += matchLength
    }
    seqs.append(Sequence(literals: (0..<Int(rng.next() % 8)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }))
    return seqs
}

/// One ELF note record, name and descriptor padded to 4 bytes.
func noteRecord(name: String, type: UInt32, desc: [UInt8]) -> [UInt8] {
    func pad(_ b: [UInt8]) -> [UInt8] { b + [UInt8](repeating: 0, count: (4 - b.count % 4) % 4) }
    let nameBytes = Array(name.utf8) + [0]
    return le32(UInt32(nameBytes.count)) + le32(UInt32(desc.count)) + le32(type) + pad(nameBytes) + pad(desc)
}

/// Builds a small ELF64 x86-64 executable. Segment data is placed after the
/// program headers in order; each segment's `data` becomes its file bytes.
struct ELFBuilder {
    struct Seg {
        var type: UInt32
        var flags: UInt32 = 4
        var vaddr: UInt64 = 0
        var paddr: UInt64 = 0
        var data: [UInt8] = []
        var memorySize: UInt64? = nil
        var align: UInt64 = 4
    }
    var entry: UInt64 = 0x100_0000
    var type: UInt16 = 2
    var machine: UInt16 = 62
    var segments: [Seg] = []
    /// Notes to put in an SHT_NOTE section (with no PT_NOTE).
    var sectionNotes: [UInt8]? = nil

    func build() -> [UInt8] {
        let phoff = 64
        var dataOffset = phoff + 56 * segments.count
        var phdrs: [UInt8] = []
        var data: [UInt8] = []
        for s in segments {
            phdrs += le32(s.type) + le32(s.flags) + le64(UInt64(dataOffset)) + le64(s.vaddr) + le64(s.paddr)
            phdrs += le64(UInt64(s.data.count)) + le64(s.memorySize ?? UInt64(s.data.count)) + le64(s.align)
            data += s.data
            dataOffset += s.data.count
        }
        var shoff = 0
        var shdrs: [UInt8] = []
        var shnum = 0
        if let notes = sectionNotes {
            let noteOffset = dataOffset
            data += notes
            dataOffset += notes.count
            while dataOffset % 8 != 0 { data.append(0); dataOffset += 1 }
            shoff = dataOffset
            // Section 0 (null) and one SHT_NOTE section.
            shdrs += [UInt8](repeating: 0, count: 64)
            shdrs += le32(0) + le32(7) + le64(2) + le64(0) + le64(UInt64(noteOffset)) + le64(UInt64(notes.count))
            shdrs += le32(0) + le32(0) + le64(4) + le64(0)
            shnum = 2
        }
        var header: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        header += le16(type) + le16(machine) + le32(1) + le64(entry)
        header += le64(segments.isEmpty ? 0 : UInt64(phoff)) + le64(UInt64(shoff)) + le32(0)
        header += le16(64) + le16(56) + le16(UInt16(segments.count)) + le16(64) + le16(UInt16(shnum)) + le16(0)
        precondition(header.count == 64)
        return header + phdrs + data + shdrs
    }
}

/// Xen notes like the Debian kernel's, with 8-byte addresses and 4-byte flags.
func debianLikeXenNotes(entry: UInt64 = 0xffff_ffff_8304_e1c0) -> [UInt8] {
    var n: [UInt8] = []
    n += noteRecord(name: "Xen", type: 6, desc: Array("linux".utf8) + [0])
    n += noteRecord(name: "Xen", type: 7, desc: Array("2.6".utf8) + [0])
    n += noteRecord(name: "Xen", type: 5, desc: Array("xen-3.0".utf8) + [0])
    n += noteRecord(name: "Xen", type: 3, desc: le64(0xffff_ffff_8000_0000))
    n += noteRecord(name: "Xen", type: 15, desc: le64(0x80_0000_0000))
    n += noteRecord(name: "Xen", type: 1, desc: le64(entry))
    n += noteRecord(name: "Xen", type: 10, desc: Array("!writable_page_tables|pae_pgdir_above_4gb".utf8))
    n += noteRecord(name: "Xen", type: 17, desc: le32(0x8801))
    n += noteRecord(name: "Xen", type: 9, desc: Array("yes".utf8) + [0])
    n += noteRecord(name: "Xen", type: 8, desc: Array("generic".utf8) + [0])
    n += noteRecord(name: "Xen", type: 13, desc: le64(1) + le64(1))
    n += noteRecord(name: "Xen", type: 14, desc: le32(1))
    n += noteRecord(name: "Xen", type: 16, desc: le32(1))
    n += noteRecord(name: "Xen", type: 12, desc: le64(0xffff_8000_0000_0000))
    n += noteRecord(name: "Xen", type: 4, desc: le64(0))
    n += noteRecord(name: "GNU", type: 3, desc: [UInt8](repeating: 0xab, count: 20))
    n += noteRecord(name: "Xen", type: 18, desc: le64(0x100_0850))
    return n
}

/// A small kernel-shaped ELF: text, data with .bss, a percpu segment at
/// vaddr 0, and the notes.
func kernelLikeELF(notes: [UInt8]? = debianLikeXenNotes()) -> [UInt8] {
    var b = ELFBuilder()
    b.segments.append(.init(type: 1, flags: 5, vaddr: 0xffff_ffff_8100_0000, paddr: 0x100_0000,
                            data: (0..<300).map { UInt8($0 & 0xff) }, align: 0x20_0000))
    b.segments.append(.init(type: 1, flags: 6, vaddr: 0xffff_ffff_8200_0000, paddr: 0x200_0000,
                            data: [1, 2, 3, 4], memorySize: 0x1000, align: 0x20_0000))
    b.segments.append(.init(type: 1, flags: 6, vaddr: 0, paddr: 0x300_0000, data: [9, 9], memorySize: 0x2000, align: 0x20_0000))
    if let notes {
        b.segments.append(.init(type: 4, vaddr: 0xffff_ffff_8240_0000, paddr: 0x240_0000, data: notes))
    }
    return b.build()
}

/// A fake bzImage: setup sectors of zeros with the header fields filled in,
/// then `payload` at `payloadOffset` inside the protected-mode part.
func fakeBzImage(setupSectors: UInt8 = 4, version: UInt16 = 0x020f, payload: [UInt8],
                 payloadOffset: UInt32 = 0x100, payloadLength: UInt32? = nil,
                 signature: [UInt8] = Array("HdrS".utf8)) -> [UInt8] {
    let sectors = setupSectors == 0 ? 4 : Int(setupSectors)
    let pm = (sectors + 1) * 512
    var f = [UInt8](repeating: 0, count: pm + Int(payloadOffset) + payload.count)
    func put(_ bytes: [UInt8], at offset: Int) { f.replaceSubrange(offset..<(offset + bytes.count), with: bytes) }
    f[0x1f1] = setupSectors
    put(le16(0xaa55), at: 0x1fe)
    put(signature, at: 0x202)
    put(le16(version), at: 0x206)
    put(le16(0x300 - 0x200), at: 0x20e)           // kernel_version → 0x300
    put(Array("6.1.0-test (nobody@example) #1".utf8) + [0], at: 0x300)
    f[0x211] = 0x01                                 // LOADED_HIGH
    put(le32(0x20_0000), at: 0x230)
    f[0x234] = 1
    put(le16(0x7f), at: 0x236)
    put(le32(2047), at: 0x238)
    put(le32(payloadOffset), at: 0x248)
    put(le32(payloadLength ?? UInt32(payload.count)), at: 0x24c)
    put(le64(0x100_0000), at: 0x258)
    put(le32(0x337_8000), at: 0x260)
    put(payload, at: pm + Int(payloadOffset))
    return f
}

/// Runs `body` with a temporary file holding `bytes`, removed afterwards.
func withTemporaryFile<R>(_ bytes: [UInt8], _ body: (String) throws -> R) throws -> R {
    var template = Array("/tmp/guestimage-test-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    precondition(fd >= 0)
    let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    defer { unlink(path) }
    bytes.withUnsafeBytes { raw in
        var done = 0
        while done < raw.count {
            let n = write(fd, raw.baseAddress! + done, raw.count - done)
            precondition(n > 0)
            done += n
        }
    }
    close(fd)
    return try body(path)
}

/// Whether `error` is a GuestImageError matching `predicate`, and its
/// description is a usable sentence (non-empty, no Swift dump syntax).
func isGuestImageError(_ error: any Error, _ predicate: (GuestImageError) -> Bool) -> Bool {
    guard let e = error as? GuestImageError else { return false }
    return predicate(e) && !e.description.isEmpty && !e.description.contains("GuestImageError")
}
