/// An ELF64 little-endian x86-64 executable (a vmlinux), parsed far enough to
/// load it: entry point, program headers and notes.
///
/// Every header field is checked against the file at parse time (segment
/// file ranges, note records), so later users can slice `bytes` with the
/// stored ranges without re-validating.
public struct ELFImage: Sendable {
    public struct Segment: Equatable, Sendable {
        public static let load: UInt32 = 1   // PT_LOAD
        public static let note: UInt32 = 4   // PT_NOTE

        public let type: UInt32
        /// PF_X 1, PF_W 2, PF_R 4.
        public let flags: UInt32
        public let offset: UInt64
        public let vaddr: UInt64
        public let paddr: UInt64
        public let fileSize: UInt64
        public let memorySize: UInt64
        public let align: UInt64

        public var isLoad: Bool { type == Self.load }
        public var isExecutable: Bool { flags & 1 != 0 }
        public var isWritable: Bool { flags & 2 != 0 }
        public var isReadable: Bool { flags & 4 != 0 }

        public init(type: UInt32, flags: UInt32, offset: UInt64, vaddr: UInt64, paddr: UInt64,
                    fileSize: UInt64, memorySize: UInt64, align: UInt64) {
            self.type = type
            self.flags = flags
            self.offset = offset
            self.vaddr = vaddr
            self.paddr = paddr
            self.fileSize = fileSize
            self.memorySize = memorySize
            self.align = align
        }
    }

    public struct Note: Equatable, Sendable {
        /// Owner name without its terminating NUL ("Xen", "GNU", "Linux").
        public let name: String
        public let type: UInt32
        public let desc: [UInt8]

        public init(name: String, type: UInt32, desc: [UInt8]) {
            self.name = name
            self.type = type
            self.desc = desc
        }
    }

    /// The whole file (shared, not copied).
    public let bytes: [UInt8]
    public let entry: UInt64
    public let segments: [Segment]
    /// Notes from the PT_NOTE segments, or from SHT_NOTE sections when the
    /// file has no PT_NOTE (some linkers leave notes out of the segments).
    public let notes: [Note]

    /// The PT_LOAD segments in file order.
    public var loadSegments: [Segment] { segments.filter(\.isLoad) }

    static let headerSize = 64
    static let programHeaderSize = 56
    static let sectionHeaderSize = 64

    public init(_ bytes: [UInt8]) throws {
        guard bytes.count >= 4, bytes[0..<4].elementsEqual([0x7f, 0x45, 0x4c, 0x46]) else {
            throw GuestImageError.notELF(reason: "no \\x7fELF magic at offset 0")
        }
        guard bytes.count >= Self.headerSize else {
            throw GuestImageError.malformedELF(reason: "file is \(bytes.count) bytes, shorter than the 64-byte ELF64 header")
        }
        guard bytes[4] == 2 else {
            throw GuestImageError.unsupportedELF(reason: bytes[4] == 1 ? "32-bit ELF; Xenolith loads ELF64 kernels" : "ELF class \(bytes[4]) is not ELF64")
        }
        guard bytes[5] == 1 else {
            throw GuestImageError.unsupportedELF(reason: "ELF data encoding \(bytes[5]) is not little-endian")
        }
        guard bytes[6] == 1 else {
            throw GuestImageError.unsupportedELF(reason: "ELF version \(bytes[6]) is not 1")
        }
        let type = bytes.le16(at: 16)!
        guard type == 2 else {
            let what = [0: "ET_NONE", 1: "a relocatable object (ET_REL)", 3: "a shared object or PIE (ET_DYN)", 4: "a core dump (ET_CORE)"][Int(type)] ?? "type \(type)"
            throw GuestImageError.unsupportedELF(reason: "ELF file is \(what), not an executable (ET_EXEC)")
        }
        let machine = bytes.le16(at: 18)!
        guard machine == 62 else {
            throw GuestImageError.unsupportedELF(reason: "ELF machine \(machine) is not x86-64 (62)")
        }

        self.bytes = bytes
        entry = bytes.le64(at: 24)!
        let phoff = bytes.le64(at: 32)!
        let shoff = bytes.le64(at: 40)!
        let phentsize = Int(bytes.le16(at: 54)!)
        var phnum = Int(bytes.le16(at: 56)!)
        let shentsize = Int(bytes.le16(at: 58)!)
        let shnum = Int(bytes.le16(at: 60)!)

        // PN_XNUM: more than 0xfffe program headers, real count in section 0's sh_info.
        if phnum == 0xffff {
            guard shoff != 0,
                  let s0 = checkedRange(offset: shoff, length: UInt64(Self.sectionHeaderSize), within: bytes.count)
            else {
                throw GuestImageError.malformedELF(reason: "program header count is PN_XNUM but there is no section header 0 to hold it")
            }
            phnum = Int(bytes.le32(at: s0.lowerBound + 44)!)
        }

        var segments: [Segment] = []
        if phnum > 0 {
            guard phentsize >= Self.programHeaderSize else {
                throw GuestImageError.malformedELF(reason: "program header entry size \(phentsize) is smaller than 56")
            }
            guard let table = checkedRange(offset: phoff, length: UInt64(phnum) * UInt64(phentsize), within: bytes.count) else {
                throw GuestImageError.malformedELF(reason: "program header table (offset 0x\(hex(phoff)), \(phnum) entries) lies outside the \(bytes.count)-byte file")
            }
            segments.reserveCapacity(phnum)
            for i in 0..<phnum {
                let at = table.lowerBound + i * phentsize
                let segment = Segment(
                    type: bytes.le32(at: at)!, flags: bytes.le32(at: at + 4)!,
                    offset: bytes.le64(at: at + 8)!, vaddr: bytes.le64(at: at + 16)!,
                    paddr: bytes.le64(at: at + 24)!, fileSize: bytes.le64(at: at + 32)!,
                    memorySize: bytes.le64(at: at + 40)!, align: bytes.le64(at: at + 48)!)
                try Self.validate(segment, index: i, fileSize: bytes.count)
                segments.append(segment)
            }
        }
        self.segments = segments

        var notes: [Note] = []
        let noteSegments = segments.filter { $0.type == Segment.note }
        for segment in noteSegments {
            let range = checkedRange(offset: segment.offset, length: segment.fileSize, within: bytes.count)!
            try Self.parseNotes(bytes, range, alignment: segment.align == 8 ? 8 : 4, into: &notes)
        }
        if noteSegments.isEmpty {
            try Self.sectionNotes(bytes, shoff: shoff, shentsize: shentsize, shnum: shnum, into: &notes)
        }
        self.notes = notes
    }

    static func validate(_ s: Segment, index: Int, fileSize: Int) throws {
        // Only segments whose bytes we will read need their file range
        // checked; other types (GNU_STACK, ...) may carry anything.
        guard s.type == Segment.load || s.type == Segment.note else { return }
        guard checkedRange(offset: s.offset, length: s.fileSize, within: fileSize) != nil else {
            throw GuestImageError.malformedELF(reason: "segment \(index) (offset 0x\(hex(s.offset)), 0x\(hex(s.fileSize)) bytes) lies outside the \(fileSize)-byte file")
        }
        if s.type == Segment.load {
            guard s.fileSize <= s.memorySize else {
                throw GuestImageError.malformedELF(reason: "segment \(index) has more file bytes (0x\(hex(s.fileSize))) than memory bytes (0x\(hex(s.memorySize)))")
            }
            guard s.paddr.addingReportingOverflow(s.memorySize).overflow == false,
                  s.vaddr.addingReportingOverflow(s.memorySize).overflow == false
            else {
                throw GuestImageError.malformedELF(reason: "segment \(index) (0x\(hex(s.memorySize)) bytes at 0x\(hex(s.paddr))) wraps around the address space")
            }
        }
    }

    /// Note records: namesz, descsz, type (u32 each), then the name and the
    /// descriptor, each padded to the note alignment (4, or 8 for the rare
    /// 8-aligned note segments such as GNU properties).
    static func parseNotes(_ bytes: [UInt8], _ range: Range<Int>, alignment: Int, into notes: inout [Note]) throws {
        func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
        var at = range.lowerBound
        while range.upperBound - at >= 12 {
            let namesz = Int(bytes.le32(at: at)!)
            let descsz = Int(bytes.le32(at: at + 4)!)
            let type = bytes.le32(at: at + 8)!
            let nameStart = at + 12
            // namesz/descsz are < 2^32, so these sums cannot overflow Int.
            let descStart = nameStart + padded(namesz)
            let next = descStart + padded(descsz)
            guard descStart + descsz <= range.upperBound else {
                throw GuestImageError.malformedELF(reason: "note at offset 0x\(hex(at)) (name \(namesz) bytes, descriptor \(descsz) bytes) runs past the end of its note area")
            }
            var nameBytes = bytes[nameStart..<(nameStart + namesz)]
            if let nul = nameBytes.firstIndex(of: 0) { nameBytes = nameBytes[..<nul] }
            notes.append(Note(name: String(decoding: nameBytes, as: UTF8.self), type: type,
                              desc: Array(bytes[descStart..<(descStart + descsz)])))
            at = min(next, range.upperBound)
        }
    }

    /// Fallback: notes from SHT_NOTE sections.
    static func sectionNotes(_ bytes: [UInt8], shoff: UInt64, shentsize: Int, shnum: Int, into notes: inout [Note]) throws {
        guard shoff != 0, shnum > 0 else { return }
        guard shentsize >= sectionHeaderSize else {
            throw GuestImageError.malformedELF(reason: "section header entry size \(shentsize) is smaller than 64")
        }
        guard let table = checkedRange(offset: shoff, length: UInt64(shnum) * UInt64(shentsize), within: bytes.count) else {
            throw GuestImageError.malformedELF(reason: "section header table (offset 0x\(hex(shoff)), \(shnum) entries) lies outside the \(bytes.count)-byte file")
        }
        for i in 0..<shnum {
            let at = table.lowerBound + i * shentsize
            guard bytes.le32(at: at + 4)! == 7 else { continue }  // SHT_NOTE
            let offset = bytes.le64(at: at + 24)!
            let size = bytes.le64(at: at + 32)!
            let align = bytes.le64(at: at + 48)!
            guard let range = checkedRange(offset: offset, length: size, within: bytes.count) else {
                throw GuestImageError.malformedELF(reason: "note section \(i) (offset 0x\(hex(offset)), 0x\(hex(size)) bytes) lies outside the \(bytes.count)-byte file")
            }
            try parseNotes(bytes, range, alignment: align == 8 ? 8 : 4, into: &notes)
        }
    }
}
