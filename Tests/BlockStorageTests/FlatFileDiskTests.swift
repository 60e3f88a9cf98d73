import BlockStorage
import Glibc
import Testing

/// A 1 MiB disk file on a disk-backed file system (/var/tmp: direct I/O
/// needs one), byte i holding i % 251, removed when the test ends.
private final class PatternFile {
    static let size = 1 << 20
    let path = "/var/tmp/xeno-flatfile-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).img"

    init() throws {
        let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0o600)
        try #require(fd >= 0)
        defer { close(fd) }
        let bytes = (0..<Self.size).map { UInt8($0 % 251) }
        try #require(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == Self.size)
    }

    deinit { unlink(path) }

    /// The file's bytes at `offset`, read by the host past any disk object.
    func hostBytes(at offset: Int, count: Int) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: count)
        _ = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        return out
    }
}

/// `count` bytes of page-aligned memory, `shift` bytes past an alignment
/// boundary, for one test.
private func withBuffer<T>(count: Int, shift: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> T) rethrows -> T {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: count + 4096, alignment: 4096)
    defer { raw.deallocate() }
    return try body(UnsafeMutableRawBufferPointer(start: raw + shift, count: count))
}

private func read(_ disk: FlatFileDisk, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Bool {
    var v = [iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)]
    return v.withUnsafeMutableBufferPointer { if case .success = disk.read(vectors: UnsafeBufferPointer($0), at: offset) { true } else { false } }
}

private func write(_ disk: FlatFileDisk, _ buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Bool {
    var v = [iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)]
    return v.withUnsafeMutableBufferPointer { if case .success = disk.write(vectors: UnsafeBufferPointer($0), at: offset) { true } else { false } }
}

@Suite("flat-file disks: direct I/O and the host's page cache")
struct FlatFileDiskTests {
    @Test("a disk is opened for direct I/O by default on a file system that has it, for the page cache when asked")
    func cachingMode() throws {
        let file = try PatternFile()
        #expect(try FlatFileDisk(path: file.path, readOnly: true).caching == .direct)
        #expect(try FlatFileDisk(path: file.path, readOnly: true, caching: .writeback).caching == .writeback)
    }

    @Test("aligned transfers (direct) and misaligned ones (through the page cache) read the file's bytes",
          arguments: [0, 1, 512, 2048])
    func readsAtAnyAlignment(shift: Int) throws {
        let file = try PatternFile()
        let disk = try FlatFileDisk(path: file.path, readOnly: true)
        try withBuffer(count: 65536, shift: shift) { buffer in
            try #require(read(disk, into: buffer, at: 8192 + 512))
            #expect(Array(buffer) == file.hostBytes(at: 8192 + 512, count: 65536))
        }
    }

    @Test("what one path writes the other reads: misaligned writes, direct reads, and the host's own reads")
    func coherentAcrossPaths() throws {
        let file = try PatternFile()
        let disk = try FlatFileDisk(path: file.path, readOnly: false)
        try withBuffer(count: 4096, shift: 3) { misaligned in
            for i in 0..<4096 { misaligned[i] = 0xA5 }
            try #require(write(disk, misaligned, at: 4096))         // through the page cache
        }
        try withBuffer(count: 8192, shift: 0) { aligned in
            try #require(read(disk, into: aligned, at: 4096))       // direct: must see the cached write
            #expect(aligned.prefix(4096).allSatisfy { $0 == 0xA5 })
            #expect(Array(aligned.suffix(4096)) == file.hostBytes(at: 8192, count: 4096))
            for i in 0..<8192 { aligned[i] = 0x5A }
            try #require(write(disk, aligned, at: 65536))            // direct
        }
        #expect(file.hostBytes(at: 65536, count: 8192).allSatisfy { $0 == 0x5A })
        let after: [UInt8] = (0..<512).map { UInt8((65536 + 8192 + $0) % 251) }
        #expect(file.hostBytes(at: 65536 + 8192, count: 512) == after)
    }

    @Test("a read past the end of the disk is refused, and one that ends at it reads the last sectors")
    func endOfDisk() throws {
        let file = try PatternFile()
        let disk = try FlatFileDisk(path: file.path, readOnly: true)
        try withBuffer(count: 8192, shift: 0) { buffer in
            #expect(!read(disk, into: buffer, at: UInt64(PatternFile.size) - 4096))
            let last = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<4096])
            try #require(read(disk, into: last, at: UInt64(PatternFile.size) - 4096))
            #expect(Array(last) == file.hostBytes(at: PatternFile.size - 4096, count: 4096))
        }
    }
}
