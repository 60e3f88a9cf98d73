import CKVM
import Glibc

/// The container of a save image: a header, then typed records, one of
/// which holds guest memory. The HVM image (docs/SAVE-FORMAT.md) is written
/// and read through it; what each record means is its user's business.
///
///     header   magic (16 bytes), version u32, header size u32 (32), 8 bytes zero
///     records  type u32, 4 bytes zero, payload length u64, payload, zero padding to 8 bytes
///     memory   (type `memoryType`) run count u64, page count u64, runs × (first page u64, pages u64),
///              zero padding to a 4 KiB file offset, then the pages of each run in order
///     end      (type 0xffff) the image's length u64, which must be where it ends
///
/// Little-endian throughout. Pages outside every run are zero.
public struct SaveFileError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A run of guest pages (4 KiB each, counted from guest RAM's start in the memfd).
public struct PageRun: Equatable, Sendable {
    public var first: UInt64
    public var pages: UInt64
    public init(first: UInt64, pages: UInt64) { self.first = first; self.pages = pages }
}

public enum SaveFile {
    public static let pageSize: UInt64 = 4096
    static let headerSize = 32
    static let endType: UInt32 = 0xffff
    /// The largest record other than memory a writer writes and a reader
    /// accepts: room for a PV guest's list of ballooned frames (8 bytes
    /// each) or an HVM balloon's bitmap of a 1 TiB guest (32 MiB).
    public static let recordLimit: UInt64 = 1 << 28
}

/// Writes an image to `path + ".part"`, renamed to `path` by `finish`.
public struct SaveFileWriter {
    let fd: Int32
    let path: String
    public private(set) var offset: UInt64 = 0
    private var finished = false

    public init(path: String, magic: [UInt8], version: UInt32) throws(SaveFileError) {
        precondition(magic.count == 16)
        fd = open(path + ".part", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SaveFileError("\(path).part: \(String(cString: strerror(errno)))") }
        self.path = path
        var h = magic
        Self.append(version, to: &h); Self.append(UInt32(SaveFile.headerSize), to: &h); Self.append(UInt64(0), to: &h)
        try write(h)
    }

    /// Closes the file; removes it unless `finish` renamed it.
    public func close() {
        Glibc.close(fd)
        if !finished { unlink(path + ".part") }
    }

    static func append<T: FixedWidthInteger>(_ v: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ bytes: [UInt8]) throws(SaveFileError) {
        let failure = bytes.withUnsafeBytes { raw -> SaveFileError? in
            do throws(SaveFileError) { try write(raw) } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }

    public mutating func write(_ bytes: UnsafeRawBufferPointer) throws(SaveFileError) {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, min(bytes.count - done, 1 << 30))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SaveFileError("writing \(path): \(String(cString: strerror(errno)))") }
            done += n
        }
        offset += UInt64(bytes.count)
    }

    mutating func recordHeader(_ type: UInt32, length: UInt64) throws(SaveFileError) {
        var h: [UInt8] = []
        Self.append(type, to: &h); Self.append(UInt32(0), to: &h); Self.append(length, to: &h)
        try write(h)
    }

    mutating func pad() throws(SaveFileError) {
        let extra = Int((8 - offset % 8) % 8)
        if extra > 0 { try write([UInt8](repeating: 0, count: extra)) }
    }

    public mutating func record(_ type: UInt32, _ payload: [UInt8]) throws(SaveFileError) {
        precondition(type != SaveFile.endType)
        guard UInt64(payload.count) <= SaveFile.recordLimit else {
            throw SaveFileError("a record of \(payload.count) bytes is over the image's limit of \(SaveFile.recordLimit)")
        }
        try recordHeader(type, length: UInt64(payload.count))
        try write(payload)
        try pad()
    }

    /// The memory record: `runs` of the guest RAM at `base`. Returns the page count.
    @discardableResult
    public mutating func memory(_ type: UInt32, runs: [PageRun], base: UnsafeRawPointer) throws(SaveFileError) -> UInt64 {
        let pageCount = runs.reduce(UInt64(0)) { $0 + $1.pages }
        var table: [UInt8] = []
        Self.append(UInt64(runs.count), to: &table); Self.append(pageCount, to: &table)
        for r in runs { Self.append(r.first, to: &table); Self.append(r.pages, to: &table) }
        let tableEnd = offset + 16 + UInt64(table.count)
        let padding = ((tableEnd + 4095) & ~UInt64(4095)) - tableEnd
        try recordHeader(type, length: UInt64(table.count) + padding + pageCount * SaveFile.pageSize)
        try write(table)
        try write([UInt8](repeating: 0, count: Int(padding)))
        for r in runs {
            try write(UnsafeRawBufferPointer(start: base + Int(r.first * SaveFile.pageSize), count: Int(r.pages * SaveFile.pageSize)))
        }
        try pad()
        return pageCount
    }

    /// The end record, then the rename that makes the image appear whole.
    public mutating func finish() throws(SaveFileError) {
        var end: [UInt8] = []
        Self.append(offset + 16 + 8, to: &end)
        try recordHeader(SaveFile.endType, length: 8)
        try write(end)
        guard rename(path + ".part", path) == 0 else {
            throw SaveFileError("cannot rename \(path).part to \(path): \(String(cString: strerror(errno)))")
        }
        finished = true
    }
}

/// An image read and checked: its records (memory's pages stay in the
/// file until `loadMemory`). Every length is bounded by the file's size.
public final class SaveFileReader {
    public let path: String
    let fd: Int32
    public let version: UInt32
    /// Records in file order, memory's excluded.
    public let records: [(type: UInt32, payload: [UInt8])]
    public let runs: [PageRun]
    /// Where the memory record's pages start in the file (4 KiB-aligned).
    public let memoryDataOffset: UInt64

    deinit { close(fd) }

    /// Opens `path` and checks its structure; `pageLimit` bounds the memory
    /// record (the guest's size in pages, as the image's own records say is
    /// checked by the caller).
    public init(path: String, magic: [UInt8], memoryType: UInt32, pageLimit: UInt64) throws(SaveFileError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SaveFileError("\(path): \(String(cString: strerror(errno)))") }
        func fail(_ why: String) -> SaveFileError { close(fd); return SaveFileError("\(path): \(why)") }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw fail("not a regular file") }
        let fileSize = UInt64(st.st_size)

        var head = [UInt8](repeating: 0, count: SaveFile.headerSize)
        guard Self.readFully(fd, &head, at: 0) else { throw fail("too short for a save image (\(fileSize) bytes)") }
        guard Array(head[0..<16]) == magic else {
            throw fail("not a Xenolith save image (no \(String(decoding: magic, as: UTF8.self)) magic)")
        }
        func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * $1) } }
        func u64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * $1) } }
        guard u32(head, 20) == UInt32(SaveFile.headerSize) else { throw fail("header size \(u32(head, 20)), not \(SaveFile.headerSize)") }

        var records: [(UInt32, [UInt8])] = []
        var runs: [PageRun]?
        var dataOffset: UInt64 = 0
        var offset = UInt64(SaveFile.headerSize)
        while true {
            var rh = [UInt8](repeating: 0, count: 16)
            guard offset <= fileSize, fileSize - offset >= 16, Self.readFully(fd, &rh, at: offset) else {
                throw fail("truncated: it ends at byte \(fileSize) without its end record")
            }
            let type = u32(rh, 0), length = u64(rh, 8)
            let start = offset + 16
            guard length <= fileSize - start else {
                throw fail("truncated: a record at byte \(offset) of \(length) bytes runs past the end (\(fileSize) bytes)")
            }
            if type == SaveFile.endType {
                var end = [UInt8](repeating: 0, count: 8)
                guard length == 8, Self.readFully(fd, &end, at: start) else { throw fail("a malformed end record") }
                guard u64(end, 0) == start + 8 else { throw fail("the end record says \(u64(end, 0)) bytes, but it ends at \(start + 8)") }
                break
            }
            if type == memoryType {
                guard runs == nil else { throw fail("two memory records") }
                var counts = [UInt8](repeating: 0, count: 16)
                guard length >= 16, Self.readFully(fd, &counts, at: start) else { throw fail("a malformed memory record") }
                let runCount = u64(counts, 0), pageCount = u64(counts, 8)
                guard runCount <= pageLimit, pageCount <= pageLimit, 16 + runCount * 16 <= length else {
                    throw fail("the memory record's counts (\(runCount) runs, \(pageCount) pages) make no sense for \(pageLimit) pages")
                }
                var table = [UInt8](repeating: 0, count: Int(runCount * 16))
                guard Self.readFully(fd, &table, at: start + 16) else { throw fail("cannot read the memory runs") }
                var list: [PageRun] = []
                list.reserveCapacity(Int(runCount))
                var next: UInt64 = 0, total: UInt64 = 0
                for i in 0..<Int(runCount) {
                    let run = PageRun(first: u64(table, i * 16), pages: u64(table, i * 16 + 8))
                    guard run.pages > 0, run.first >= next, run.first <= pageLimit, run.pages <= pageLimit - run.first else {
                        throw fail("the memory record has a run (\(run.first), \(run.pages) pages) out of order or beyond memory")
                    }
                    next = run.first + run.pages
                    total += run.pages
                    list.append(run)
                }
                guard total == pageCount else { throw fail("the memory runs hold \(total) pages, not \(pageCount)") }
                let data = (start + 16 + runCount * 16 + 4095) & ~UInt64(4095)
                guard data + pageCount * SaveFile.pageSize == start + length else {
                    throw fail("the memory record's length does not match its \(pageCount) pages")
                }
                runs = list
                dataOffset = data
            } else {
                guard length <= SaveFile.recordLimit else { throw fail("a record at byte \(offset) is too large (\(length) bytes)") }
                var payload = [UInt8](repeating: 0, count: Int(length))
                guard Self.readFully(fd, &payload, at: start) else { throw fail("cannot read the record at byte \(offset)") }
                records.append((type, payload))
            }
            offset = (start + length + 7) & ~UInt64(7)
        }
        guard let runs else { throw fail("no memory record") }
        self.path = path
        self.fd = fd
        self.version = u32(head, 16)
        self.records = records
        self.runs = runs
        self.memoryDataOffset = dataOffset
    }

    /// Copies the image's pages into guest RAM (`memory`'s memfd), a run at
    /// a time by sendfile (the kernel fills fresh pages from the page cache
    /// without a fault per page), through the mapping where that fails.
    public func loadMemory(into memory: GuestMemory) throws(SaveFileError) {
        var at = memoryDataOffset
        for r in runs {
            let length = Int(r.pages * SaveFile.pageSize)
            guard (r.first + r.pages) * SaveFile.pageSize <= memory.size else {
                throw SaveFileError("\(path): memory beyond the guest's \(memory.size >> 20) MiB")
            }
            if !Self.sendFully(from: fd, at: at, to: memory.fd, at: r.first * SaveFile.pageSize, count: length) {
                let bytes = UnsafeMutableRawBufferPointer(start: memory.base + Int(r.first * SaveFile.pageSize), count: length)
                guard Self.readFully(fd, bytes, at: at) else {
                    throw SaveFileError("\(path): the image ends inside its memory (run at page \(r.first))")
                }
            }
            at += r.pages * SaveFile.pageSize
        }
    }

    static func sendFully(from source: Int32, at sourceOffset: UInt64, to target: Int32, at targetOffset: UInt64,
                          count: Int) -> Bool {
        guard lseek(target, off_t(targetOffset), SEEK_SET) == off_t(targetOffset) else { return false }
        var offset = off_t(sourceOffset)
        var left = count
        while left > 0 {
            let n = sendfile(target, source, &offset, min(left, 1 << 30))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            left -= n
        }
        return true
    }

    static func readFully(_ fd: Int32, _ buffer: inout [UInt8], at offset: UInt64) -> Bool {
        buffer.withUnsafeMutableBytes { readFully(fd, $0, at: offset) }
    }

    static func readFully(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Bool {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
        }
        return true
    }
}

extension GuestMemory {
    /// Runs of pages holding anything but zeros. Holes in the memfd (never
    /// touched, or given back by a balloon) are skipped without reading them.
    public func nonZeroRuns() -> [PageRun] {
        var runs: [PageRun] = []
        var position: off_t = 0
        let end = off_t(size)
        let page = SaveFile.pageSize
        while position < end {
            let data = lseek(fd, position, SEEK_DATA)
            if data < 0 { break }                                  // ENXIO: no data after position
            var hole = lseek(fd, data, SEEK_HOLE)
            if hole < 0 { hole = end }
            var p = UInt64(data) / page
            let endPage = (UInt64(min(hole, end)) + page - 1) / page
            while p < endPage {
                if ckvm_page_is_zero(base + Int(p * page)) == 0 {
                    if let last = runs.last, last.first + last.pages == p {
                        runs[runs.count - 1].pages += 1
                    } else {
                        runs.append(PageRun(first: p, pages: 1))
                    }
                }
                p += 1
            }
            position = off_t(endPage * page)
        }
        return runs
    }
}
