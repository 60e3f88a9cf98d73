import BlockStorage
import Glibc

/// What blkback needs from a disk: `FlatFileDisk` is one; the fuzzer and
/// the tests use one in memory.
public protocol BlockStore: AnyObject {
    var isReadOnly: Bool { get }
    /// Whether `count` bytes at `offset` lie wholly on the disk.
    func contains(offset: UInt64, count: UInt64) -> Bool
    /// Reads into `vectors` in order, starting at `offset`.
    func read(vectors: UnsafeBufferPointer<iovec>, at offset: UInt64) -> Result<Void, DiskError>
    /// Writes `vectors` in order, starting at `offset`.
    func write(vectors: UnsafeBufferPointer<iovec>, at offset: UInt64) -> Result<Void, DiskError>
    func flush() -> Result<Void, DiskError>
    func discard(offset: UInt64, count: UInt64) -> Result<Void, DiskError>
}

extension FlatFileDisk: BlockStore {}
