// Bounds-checked little-endian field access over untrusted file bytes.
//
// Every parser in this module reads through these helpers, so a bad offset in
// a kernel file becomes `nil` (and then a typed error), never a trap.

extension Array where Element == UInt8 {
    /// `count` bytes at `offset`, or nil if any of them lies outside the array.
    @inline(__always)
    func hasBytes(at offset: Int, count n: Int) -> Bool {
        offset >= 0 && n >= 0 && offset <= count && n <= count - offset
    }

    func le8(at offset: Int) -> UInt8? {
        hasBytes(at: offset, count: 1) ? self[offset] : nil
    }

    func le16(at offset: Int) -> UInt16? {
        guard hasBytes(at: offset, count: 2) else { return nil }
        return UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }

    func le32(at offset: Int) -> UInt32? {
        guard hasBytes(at: offset, count: 4) else { return nil }
        var v: UInt32 = 0
        for i in (0..<4).reversed() { v = v << 8 | UInt32(self[offset + i]) }
        return v
    }

    func le64(at offset: Int) -> UInt64? {
        guard hasBytes(at: offset, count: 8) else { return nil }
        var v: UInt64 = 0
        for i in (0..<8).reversed() { v = v << 8 | UInt64(self[offset + i]) }
        return v
    }
}

/// `base + count` as a byte range inside a buffer of `size` bytes, with every
/// step checked: the values come from file headers and may be anything.
func checkedRange(offset: UInt64, length: UInt64, within size: Int) -> Range<Int>? {
    guard let start = Int(exactly: offset), let n = Int(exactly: length) else { return nil }
    guard start >= 0, n >= 0, start <= size, n <= size - start else { return nil }
    return start..<(start + n)
}

/// Little-endian integer of 1, 2, 4 or 8 bytes (the widths Xen's libelf
/// accepts for numeric notes).
func littleEndianInteger(_ bytes: ArraySlice<UInt8>) -> UInt64? {
    guard [1, 2, 4, 8].contains(bytes.count) else { return nil }
    var v: UInt64 = 0
    for b in bytes.reversed() { v = v << 8 | UInt64(b) }
    return v
}
