import CKVM
import Glibc

/// Guest RAM backed by a memfd, so it can later be shared (grants) and
/// streamed (save, migration). Every access from the VMM is bounds-checked:
/// addresses come from the guest.
public final class GuestMemory: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let size: UInt64
    public let fd: Int32

    public init(size: UInt64, name: String = "xenolith-guest") throws {
        let fd = ckvm_memfd_create(name)
        guard fd >= 0 else { throw KVMError("memfd_create") }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let e = errno
            close(fd)
            throw KVMError("ftruncate guest memory to \(size) bytes", errno: e)
        }
        let p = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0)
        guard let p, p != MAP_FAILED else {
            let e = errno
            close(fd)
            throw KVMError("mmap guest memory", errno: e)
        }
        self.base = p
        self.size = size
        self.fd = fd
    }

    deinit {
        munmap(base, Int(size))
        close(fd)
    }

    @inline(__always)
    public func contains(_ address: UInt64, length: UInt64) -> Bool {
        address < size && length <= size - address
    }

    /// A pointer to `length` bytes at guest-physical `address`, or nil if out of range.
    @inline(__always)
    public func pointer(_ address: UInt64, length: UInt64) -> UnsafeMutableRawPointer? {
        contains(address, length: length) ? base + Int(address) : nil
    }

    @inline(__always)
    public func load<T: FixedWidthInteger>(_ address: UInt64, as: T.Type = T.self) -> T? {
        guard let p = pointer(address, length: UInt64(MemoryLayout<T>.size)) else { return nil }
        return T(littleEndian: p.loadUnaligned(as: T.self))
    }

    @inline(__always)
    @discardableResult
    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) -> Bool {
        guard let p = pointer(address, length: UInt64(MemoryLayout<T>.size)) else { return false }
        p.storeBytes(of: value.littleEndian, as: T.self)
        return true
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at address: UInt64) -> Bool {
        guard let p = pointer(address, length: UInt64(bytes.count)) else { return false }
        if let b = bytes.baseAddress { p.copyMemory(from: b, byteCount: bytes.count) }
        return true
    }

    /// Frees the host memory behind `length` bytes at `address` (page
    /// aligned): the memfd's pages are punched out, so the process's RSS
    /// falls, and the range reads as zeros until written again.
    @discardableResult
    public func discard(_ address: UInt64, length: UInt64) -> Bool {
        guard address & 4095 == 0, length & 4095 == 0, contains(address, length: length) else { return false }
        return madvise(base + Int(address), Int(length), MADV_REMOVE) == 0
    }

    public func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard let p = pointer(address, length: UInt64(buffer.count)) else { return false }
        if let b = buffer.baseAddress { b.copyMemory(from: p, byteCount: buffer.count) }
        return true
    }
}
