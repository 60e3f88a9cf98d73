import Glibc
import Virtio

/// Moving bytes between host buffers and a chain's guest buffers, across
/// segment boundaries. Offsets count from the start of the readable (or
/// writable) part of the chain.
extension UnsafeBufferPointer where Element == BufferSegment {
    var totalLength: UInt64 { reduce(0) { $0 + UInt64($1.length) } }

    /// Copies up to `destination.count` bytes starting at `offset`; returns how many.
    func copyOut(from offset: UInt64, into destination: UnsafeMutableRawBufferPointer) -> Int {
        var skip = offset
        var done = 0
        for segment in self where done < destination.count {
            if skip >= UInt64(segment.length) { skip -= UInt64(segment.length); continue }
            let n = Swift.min(Int(UInt64(segment.length) - skip), destination.count - done)
            (destination.baseAddress! + done).copyMemory(from: segment.pointer + Int(skip), byteCount: n)
            done += n
            skip = 0
        }
        return done
    }

    /// Copies `source` in starting at `offset`, as far as the buffers go; returns how many.
    func copyIn(_ source: UnsafeRawBufferPointer, at offset: UInt64) -> Int {
        var skip = offset
        var done = 0
        for segment in self where done < source.count {
            if skip >= UInt64(segment.length) { skip -= UInt64(segment.length); continue }
            let n = Swift.min(Int(UInt64(segment.length) - skip), source.count - done)
            (segment.pointer + Int(skip)).copyMemory(from: source.baseAddress! + done, byteCount: n)
            done += n
            skip = 0
        }
        return done
    }

    /// The bytes `[offset, offset + length)` as I/O vectors in `vectors`;
    /// nil when they do not fit there or the buffers end first.
    func vectors(from offset: UInt64, length: UInt64, into vectors: UnsafeMutableBufferPointer<iovec>) -> Int? {
        var skip = offset
        var left = length
        var count = 0
        for segment in self where left > 0 {
            if skip >= UInt64(segment.length) { skip -= UInt64(segment.length); continue }
            guard count < vectors.count else { return nil }
            let n = Swift.min(UInt64(segment.length) - skip, left)
            vectors[count] = iovec(iov_base: segment.pointer + Int(skip), iov_len: Int(n))
            count += 1
            left -= n
            skip = 0
        }
        return left == 0 ? count : nil
    }
}
