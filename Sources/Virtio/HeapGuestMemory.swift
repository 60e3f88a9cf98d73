/// Guest memory in an ordinary heap allocation: guest-physical `[0, size)`.
///
/// For tests and fuzzing of virtio code without a VM. The allocation is
/// exactly `size` bytes, so an address sanitizer catches any access that a
/// bounds check let through by mistake.
public final class HeapGuestMemory: GuestMemoryView, @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let size: UInt64

    /// Zero-filled memory of `size` bytes, page-aligned so that aligned guest
    /// addresses are aligned host addresses as in a real VM.
    public init(size: Int) {
        let byteCount = max(size, 0)
        base = .allocate(byteCount: max(byteCount, 1), alignment: 4096)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
        self.size = UInt64(byteCount)
    }

    deinit {
        base.deallocate()
    }

    public func pointer(_ gpa: UInt64, length: UInt64) -> UnsafeMutableRawPointer? {
        // Subtract rather than add: `gpa + length` may overflow.
        guard gpa < size, length <= size - gpa else { return nil }
        return base + Int(gpa)
    }

    /// The little-endian value at `gpa`, or nil when out of range.
    public func load<T: FixedWidthInteger>(_ gpa: UInt64, as type: T.Type = T.self) -> T? {
        guard let p = pointer(gpa, length: UInt64(MemoryLayout<T>.size)) else { return nil }
        return T(littleEndian: p.loadUnaligned(as: T.self))
    }

    /// Stores `value` little-endian at `gpa`; false when out of range.
    @discardableResult
    public func store<T: FixedWidthInteger>(_ value: T, at gpa: UInt64) -> Bool {
        guard let p = pointer(gpa, length: UInt64(MemoryLayout<T>.size)) else { return false }
        p.storeBytes(of: value.littleEndian, as: T.self)
        return true
    }

    /// Copies `bytes` to `gpa`; false (and nothing written) when out of range.
    @discardableResult
    public func write(_ bytes: some Collection<UInt8>, at gpa: UInt64) -> Bool {
        guard let p = pointer(gpa, length: UInt64(bytes.count)) else { return false }
        var offset = 0
        for byte in bytes {
            p.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
        return true
    }

    /// The `length` bytes at `gpa`, or nil when out of range.
    public func read(_ gpa: UInt64, length: Int) -> [UInt8]? {
        guard length >= 0, let p = pointer(gpa, length: UInt64(length)) else { return nil }
        return Array(UnsafeRawBufferPointer(start: p, count: length))
    }
}
