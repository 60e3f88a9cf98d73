import CKVM

/// The backend's view of one `struct xencons_interface` (Xen's public
/// `io/console.h`) in a page the frontend granted:
///
///     char in[1024];   @0      host → guest, written by the backend
///     char out[2048];  @1024   guest → host, written by the frontend
///     u32 in_cons @3072, in_prod @3076, out_cons @3080, out_prod @3084
///
/// The page is the guest's and may change at any time. The backend keeps
/// its own copies of the two indexes it produces or consumes (`in_prod`,
/// `out_cons`) and never takes them back from the page; of the guest's
/// indexes (`out_prod`, `in_cons`) it accepts only values that leave at most
/// a ring's worth of bytes between the two ends. Every byte offset is masked
/// into its ring, so nothing outside the page is ever touched. Anything else
/// is `corrupt`: the caller closes the device.
public struct ConsoleRing {
    public static let inSize: UInt32 = 1024, outSize: UInt32 = 2048
    static let inOffset = 0, outOffset = 1024
    static let inConsOffset = 3072, inProdOffset = 3076, outConsOffset = 3080, outProdOffset = 3084
    /// The page must hold at least this much.
    public static let pageBytes = 4096

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The guest's output producer is more than a ring ahead of what we consumed.
        case outputIndex(produced: UInt32, consumed: UInt32)
        /// The guest claims to have consumed input we never produced (or more than a ring behind).
        case inputIndex(produced: UInt32, consumed: UInt32)

        public var description: String {
            switch self {
            case .outputIndex(let p, let c): "out_prod \(p) is not within \(ConsoleRing.outSize) bytes of out_cons \(c)"
            case .inputIndex(let p, let c): "in_cons \(c) is not within \(ConsoleRing.inSize) bytes behind in_prod \(p)"
            }
        }
    }

    let page: UnsafeMutableRawPointer
    /// Our end of each ring: the next output byte to take, the next input slot to fill.
    public private(set) var outConsumed: UInt32
    public private(set) var inProduced: UInt32

    /// Takes over a ring the frontend set up: both ends start where the page
    /// says (a frontend may have written before the backend came).
    public init(page: UnsafeMutableRawPointer) {
        self.page = page
        outConsumed = ckvm_load_acquire32(page + Self.outConsOffset)
        inProduced = ckvm_load_acquire32(page + Self.inProdOffset)
    }

    /// Output bytes waiting, or a failure if the guest's index is out of bounds.
    public func pendingOutput() -> Result<Int, Failure> {
        let produced = ckvm_load_acquire32(page + Self.outProdOffset)
        let count = produced &- outConsumed
        guard count <= Self.outSize else { return .failure(.outputIndex(produced: produced, consumed: outConsumed)) }
        return .success(Int(count))
    }

    /// Copies up to `scratch.count` waiting output bytes into `scratch` (the
    /// guest cannot change them there), offers them to `consume`, which
    /// returns how many it took, and releases that many to the guest.
    /// Returns the number taken.
    public mutating func drainOutput(into scratch: UnsafeMutableRawBufferPointer,
                                     _ consume: (UnsafeRawBufferPointer) -> Int) -> Result<Int, Failure> {
        let count: Int
        switch pendingOutput() {
        case .failure(let f): return .failure(f)
        case .success(let n): count = min(n, scratch.count)
        }
        guard count > 0, let dst = scratch.baseAddress else { return .success(0) }
        // At most two runs: to the end of the ring, then from its start.
        let start = Int(outConsumed & (Self.outSize - 1))
        let first = min(count, Int(Self.outSize) - start)
        dst.copyMemory(from: page + Self.outOffset + start, byteCount: first)
        if first < count { (dst + first).copyMemory(from: page + Self.outOffset, byteCount: count - first) }
        let taken = max(0, min(count, consume(UnsafeRawBufferPointer(start: dst, count: count))))
        if taken > 0 {
            outConsumed &+= UInt32(taken)
            ckvm_fence()        // bytes read before the slot is handed back
            ckvm_store_release32(page + Self.outConsOffset, outConsumed)
        }
        return .success(taken)
    }

    /// Room for input, or a failure if the guest's consumer index is out of bounds.
    public func inputRoom() -> Result<Int, Failure> {
        let consumed = ckvm_load_acquire32(page + Self.inConsOffset)
        let used = inProduced &- consumed
        guard used <= Self.inSize else { return .failure(.inputIndex(produced: inProduced, consumed: consumed)) }
        return .success(Int(Self.inSize - used))
    }

    /// Writes as much of `bytes` as there is room for; returns how many.
    public mutating func fillInput(_ bytes: UnsafeRawBufferPointer) -> Result<Int, Failure> {
        let room: Int
        switch inputRoom() {
        case .failure(let f): return .failure(f)
        case .success(let n): room = n
        }
        let count = min(room, bytes.count)
        guard count > 0, let src = bytes.baseAddress else { return .success(0) }
        let start = Int(inProduced & (Self.inSize - 1))
        let first = min(count, Int(Self.inSize) - start)
        (page + Self.inOffset + start).copyMemory(from: src, byteCount: first)
        if first < count { (page + Self.inOffset).copyMemory(from: src + first, byteCount: count - first) }
        inProduced &+= UInt32(count)
        ckvm_fence()            // bytes written before the index that publishes them
        ckvm_store_release32(page + Self.inProdOffset, inProduced)
        return .success(count)
    }
}
