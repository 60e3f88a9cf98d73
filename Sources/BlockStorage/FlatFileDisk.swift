import Glibc

/// Whether a disk's I/O goes through the host's page cache.
public enum DiskCaching: Sendable, Equatable {
    /// The host caches nothing for the guest (O_DIRECT, QEMU's cache=none):
    /// as Xen's blkback, which hands the guest's pages to the block layer.
    /// The guest has a page cache of its own; a second one in the host
    /// holds the same data in host memory no one accounts to the guest,
    /// and a cold read through it costs the host about five times the CPU
    /// of a direct one (docs/BENCHMARKS.md).
    case direct
    /// Reads and writes go through the host's page cache (QEMU's
    /// cache=writeback): data the host has cached reads at memory speed,
    /// and guests that share files share their cache.
    case writeback
}

/// A guest disk kept as a flat (raw) file on the host, as the seed's test
/// farm keeps its file systems: sector N of the disk is bytes N*512 of the
/// file. One instance serves one guest device; its methods are safe to call
/// from several threads (each is one positioned system call).
///
/// With `.direct` caching a transfer whose offset, lengths and buffers meet
/// the file system's direct-I/O alignment goes through a second descriptor
/// opened with O_DIRECT; anything else (a misaligned request, a refusal)
/// takes the page cache, which the kernel keeps coherent with direct I/O.
public final class FlatFileDisk: @unchecked Sendable {
    public static let sectorSize: UInt64 = 512

    public let path: String
    public let isReadOnly: Bool
    /// Size in bytes, fixed when the disk is opened (the guest sees this).
    public let size: UInt64
    /// The device's serial/ID string (virtio-blk's GET_ID, xenstore's `serial`):
    /// at most 20 bytes, derived from the file's device and inode numbers so
    /// that it stays the same across boots of the same file.
    public let serial: String
    /// The caching in effect: `.writeback` when it was asked for, or when
    /// the file system cannot do direct I/O.
    public let caching: DiskCaching
    private let fd: Int32
    /// The O_DIRECT descriptor (-1 without one).
    private let directFD: Int32
    /// Direct I/O's alignment masks: buffer addresses, and file offsets and lengths.
    private let memoryMask: UInt, offsetMask: UInt

    public var sectors: UInt64 { size / Self.sectorSize }

    /// Opens `path` for a guest. A writable disk takes an exclusive advisory
    /// lock (a read-only one a shared lock), so two guests never write one file.
    public init(path: String, readOnly: Bool, caching: DiskCaching = .direct) throws(DiskError) {
        self.path = path
        isReadOnly = readOnly
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else { throw DiskError.open(path: path, errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { let e = errno; close(fd); throw DiskError.open(path: path, errno: e) }
        guard (st.st_mode & S_IFMT) == S_IFREG || (st.st_mode & S_IFMT) == S_IFBLK else {
            close(fd); throw DiskError.notAFile(path: path)
        }
        if flock(fd, (readOnly ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0 {
            close(fd); throw DiskError.inUse(path: path)
        }
        var bytes = UInt64(st.st_size)
        if (st.st_mode & S_IFMT) == S_IFBLK {
            let end = lseek(fd, 0, SEEK_END)
            bytes = end > 0 ? UInt64(end) : 0
        }
        guard bytes >= Self.sectorSize else { close(fd); throw DiskError.tooSmall(path: path, size: bytes) }
        size = bytes & ~(Self.sectorSize - 1)
        self.fd = fd
        let alignment = caching == .direct ? Self.directAlignment(fd) : nil
        let direct = alignment == nil ? -1 : open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC | hostODirect)
        directFD = direct
        self.caching = direct >= 0 ? .direct : .writeback
        memoryMask = UInt(alignment?.memory ?? 1) - 1
        offsetMask = UInt(alignment?.offset ?? 1) - 1
        serial = String(String(UInt64(st.st_dev), radix: 16).suffix(6)) + "-" + String(String(UInt64(st.st_ino), radix: 16).suffix(13))
    }

    deinit {
        close(fd)
        if directFD >= 0 { close(directFD) }
    }

    /// The file system's direct-I/O alignment for the open file `fd`
    /// (statx's STATX_DIOALIGN, Linux 6.1), or nil when it has none. A file
    /// system that does not say is tried with 512 bytes: a transfer it
    /// refuses takes the page cache.
    private static func directAlignment(_ fd: Int32) -> (memory: Int, offset: Int)? {
        let statxDIOAlign: UInt32 = 0x2000
        return withUnsafeTemporaryAllocation(byteCount: 256, alignment: 8) { buffer in
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            guard hostStatx(fd, "", 0x1000 /* AT_EMPTY_PATH */, statxDIOAlign, buffer.baseAddress!) == 0,
                  buffer.load(as: UInt32.self) & statxDIOAlign != 0 else { return (512, 512) }
            // struct statx: stx_dio_mem_align at byte 152, stx_dio_offset_align at 156.
            let memory = Int(buffer.load(fromByteOffset: 152, as: UInt32.self))
            let offset = Int(buffer.load(fromByteOffset: 156, as: UInt32.self))
            guard memory > 0, offset > 0, memory & (memory - 1) == 0, offset & (offset - 1) == 0 else { return nil }
            return (memory, offset)
        }
    }

    /// Whether a transfer of `vectors` at `offset` meets direct I/O's
    /// alignment (always false without a direct descriptor).
    private func isDirectAligned(_ vectors: UnsafeBufferPointer<iovec>, at offset: UInt64) -> Bool {
        guard directFD >= 0, UInt(truncatingIfNeeded: offset) & offsetMask == 0 else { return false }
        for v in vectors where UInt(bitPattern: v.iov_base) & memoryMask != 0 || UInt(v.iov_len) & offsetMask != 0 {
            return false
        }
        return true
    }

    /// Whether `count` bytes at `offset` lie wholly on the disk.
    public func contains(offset: UInt64, count: UInt64) -> Bool {
        offset <= size && count <= size - offset
    }

    /// Reads exactly `buffer.count` bytes at `offset`.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Result<Void, DiskError> {
        guard contains(offset: offset, count: UInt64(buffer.count)) else { return .failure(.outOfRange) }
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 { if errno == EINTR { continue }; return .failure(.io(errno: errno)) }
            if n == 0 {     // the file shrank under us: the rest reads as zeroes
                (buffer.baseAddress! + done).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count - done)
                break
            }
            done += n
        }
        return .success(())
    }

    /// Writes all of `buffer` at `offset`.
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) -> Result<Void, DiskError> {
        guard !isReadOnly else { return .failure(.readOnly) }
        guard contains(offset: offset, count: UInt64(buffer.count)) else { return .failure(.outOfRange) }
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 { if errno == EINTR { continue }; return .failure(.io(errno: errno)) }
            done += n
        }
        return .success(())
    }

    /// Reads into `vectors` in order, starting at `offset` (one `preadv` in
    /// the usual case). The caller has checked the range.
    public func read(vectors: UnsafeBufferPointer<iovec>, at offset: UInt64) -> Result<Void, DiskError> {
        let total = vectors.reduce(0) { $0 + $1.iov_len }
        guard contains(offset: offset, count: UInt64(total)) else { return .failure(.outOfRange) }
        // Direct when aligned; a direct transfer that fails or falls short
        // (a refusal, the end of the file) is done again through the page
        // cache, which also gives the error its errno.
        if isDirectAligned(vectors, at: offset),
           preadv(directFD, vectors.baseAddress, Int32(vectors.count), off_t(offset)) == total {
            return .success(())
        }
        let n = preadv(fd, vectors.baseAddress, Int32(vectors.count), off_t(offset))
        if n == total { return .success(()) }
        return eachVector(vectors, at: offset) { read(into: UnsafeMutableRawBufferPointer(start: $0.iov_base, count: $0.iov_len), at: $1) }
    }

    /// Writes `vectors` in order, starting at `offset` (one `pwritev` in the usual case).
    public func write(vectors: UnsafeBufferPointer<iovec>, at offset: UInt64) -> Result<Void, DiskError> {
        guard !isReadOnly else { return .failure(.readOnly) }
        let total = vectors.reduce(0) { $0 + $1.iov_len }
        guard contains(offset: offset, count: UInt64(total)) else { return .failure(.outOfRange) }
        if isDirectAligned(vectors, at: offset),
           pwritev(directFD, vectors.baseAddress, Int32(vectors.count), off_t(offset)) == total {
            return .success(())
        }
        let n = pwritev(fd, vectors.baseAddress, Int32(vectors.count), off_t(offset))
        if n == total { return .success(()) }
        return eachVector(vectors, at: offset) { write(UnsafeRawBufferPointer(start: $0.iov_base, count: $0.iov_len), at: $1) }
    }

    /// The slow path after a short or interrupted vectored call: one vector
    /// at a time, each retried to completion (rewriting a prefix is harmless).
    private func eachVector(_ vectors: UnsafeBufferPointer<iovec>, at offset: UInt64,
                            _ body: (iovec, UInt64) -> Result<Void, DiskError>) -> Result<Void, DiskError> {
        var at = offset
        for v in vectors {
            if case .failure(let e) = body(v, at) { return .failure(e) }
            at += UInt64(v.iov_len)
        }
        return .success(())
    }

    /// Makes every completed write durable (the guest's cache flush).
    public func flush() -> Result<Void, DiskError> {
        guard !isReadOnly else { return .success(()) }
        return fdatasync(fd) == 0 ? .success(()) : .failure(.io(errno: errno))
    }

    /// Gives the range back to the host file system (discard/TRIM): the
    /// range reads as zeroes afterwards and stops taking host space.
    public func discard(offset: UInt64, count: UInt64) -> Result<Void, DiskError> {
        punchHole(offset: offset, count: count)
    }

    /// Zeroes the range without writing zero bytes (write-zeroes): a hole.
    public func writeZeroes(offset: UInt64, count: UInt64) -> Result<Void, DiskError> {
        punchHole(offset: offset, count: count)
    }

    private func punchHole(offset: UInt64, count: UInt64) -> Result<Void, DiskError> {
        guard !isReadOnly else { return .failure(.readOnly) }
        guard contains(offset: offset, count: count) else { return .failure(.outOfRange) }
        guard count > 0 else { return .success(()) }
        let mode: Int32 = 0x02 | 0x01    // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
        return hostFallocate(fd, mode, Int64(offset), Int64(count)) == 0 ? .success(()) : .failure(.io(errno: errno))
    }
}

/// Why a disk operation failed.
public enum DiskError: Error, Equatable, CustomStringConvertible {
    case open(path: String, errno: Int32)
    case notAFile(path: String)
    case inUse(path: String)
    case tooSmall(path: String, size: UInt64)
    case outOfRange
    case readOnly
    case io(errno: Int32)

    public var description: String {
        switch self {
        case .open(let p, let e): "disk \(p): \(String(cString: strerror(e)))"
        case .notAFile(let p): "disk \(p): not a regular file or block device"
        case .inUse(let p): "disk \(p): already in use by another guest (locked)"
        case .tooSmall(let p, let s): "disk \(p): \(s) bytes is smaller than one sector"
        case .outOfRange: "request beyond the end of the disk"
        case .readOnly: "write to a read-only disk"
        case .io(let e): "host I/O error: \(String(cString: strerror(e)))"
        }
    }
}

/// O_DIRECT on x86-64 (a _GNU_SOURCE constant the Glibc module does not export).
private let hostODirect: Int32 = 0o40000

/// glibc's statx(2), which the Glibc module does not export (a _GNU_SOURCE
/// declaration); the result is read from the kernel's `struct statx` layout.
@_silgen_name("statx")
private func hostStatx(_ dirfd: Int32, _ path: UnsafePointer<CChar>, _ flags: Int32, _ mask: UInt32,
                       _ buffer: UnsafeMutableRawPointer) -> Int32

/// glibc's fallocate(2), which the Glibc module does not export (it is a
/// _GNU_SOURCE declaration); all arguments are plain integers.
@_silgen_name("fallocate")
private func hostFallocate(_ fd: Int32, _ mode: Int32, _ offset: Int64, _ length: Int64) -> Int32
