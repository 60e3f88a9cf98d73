import BlockStorage
import Glibc

/// Scratch space for serving the requests one pass over a blkif ring finds,
/// allocated once per ring: the requests copied out of the ring, their
/// statuses, and the vectors and claims of a merged transfer.
public final class BlockBatch {
    /// The most vectors one merged transfer may carry (IOV_MAX).
    public static let maxVectors = 1024
    /// The most bytes one merged transfer may carry: as large as the host's
    /// own reads of a sequential file need to be to keep its disk busy.
    public static let maxBytes = 4 << 20

    public let requests: UnsafeMutablePointer<BlockRequest>
    public let statuses: UnsafeMutablePointer<Int16>
    let segments: UnsafeMutablePointer<BlockSegment>
    let vectors: UnsafeMutablePointer<iovec>
    /// Grants claimed for the transfer being built, to release afterwards.
    let claims: UnsafeMutablePointer<UInt32>

    public init() {
        requests = .allocate(capacity: Int(BlockRing.entries))
        requests.initialize(repeating: BlockRequest(), count: Int(BlockRing.entries))
        statuses = .allocate(capacity: Int(BlockRing.entries))
        statuses.initialize(repeating: 0, count: Int(BlockRing.entries))
        segments = .allocate(capacity: BlockRing.maxIndirectSegments)
        segments.initialize(repeating: BlockSegment(grant: 0, first: 0, last: 0), count: BlockRing.maxIndirectSegments)
        vectors = .allocate(capacity: Self.maxVectors)
        vectors.initialize(repeating: iovec(), count: Self.maxVectors)
        claims = .allocate(capacity: Self.maxVectors)
        claims.initialize(repeating: 0, count: Self.maxVectors)
    }

    deinit {
        requests.deallocate()
        statuses.deallocate()
        segments.deallocate()
        vectors.deallocate()
        claims.deallocate()
    }
}

extension BlockRequests {
    /// Serves `batch.requests[0..<count]` in order, writing each one's status.
    ///
    /// Reads (and writes) that follow each other on the disk are merged into
    /// one vectored system call, as the host's block layer merges a bio's
    /// pieces: Linux's blkfront splits a 1 MiB read into 128 KiB requests,
    /// and the host's disk reads 128 KiB pieces one at a time several times
    /// slower than 1 MiB ones. Every request is still checked on its own;
    /// one that cannot join a merge is served alone, so it fails alone, and
    /// a merged transfer that fails is done again request by request, so
    /// each gets its own status.
    public static func perform<G: GrantMapper, S: BlockStore>(batch: BlockBatch, count: Int, grants: G, store: S,
                                                              counters: inout BlockCounters) {
        var i = 0
        while i < count {
            let end = mergedTransfer(batch: batch, from: i, count: count, grants: grants, store: store, counters: &counters)
            if end == i {
                batch.statuses[i] = perform(batch.requests[i], grants: grants, store: store, counters: &counters)
                i += 1
            } else {
                i = end
            }
        }
    }

    /// The direction of a read or write (plain or indirect), or nil.
    static func direction(_ r: BlockRequest) -> Bool? {
        switch r.operation {
        case read: return true
        case write: return false
        case indirect: return r.indirectOperation == read ? true : r.indirectOperation == write ? false : nil
        default: return nil
        }
    }

    /// Builds and does one transfer for the requests from `start` on that
    /// follow each other on the disk in one direction; returns the index
    /// after the last one served, or `start` if `start` is to be served alone.
    static func mergedTransfer<G: GrantMapper, S: BlockStore>(batch: BlockBatch, from start: Int, count: Int, grants: G, store: S,
                                                             counters: inout BlockCounters) -> Int {
        guard let toGuest = direction(batch.requests[start]), toGuest || !store.isReadOnly else { return start }
        let firstSector = batch.requests[start].sector
        var vectorCount = 0, claimCount = 0, bytes = 0
        var end = start
        defer { for c in 0..<claimCount { grants.release(grant: batch.claims[c], writable: toGuest) } }
        requests: while end < count {
            let r = batch.requests[end]
            guard direction(r) == toGuest, r.sector == firstSector &+ UInt64(bytes / 512) else { break }
            guard let n = resolveSegments(r, into: batch.segments, grants: grants), vectorCount + n <= BlockBatch.maxVectors else { break }
            // Claim this request's pages; any refusal leaves it to be served alone.
            var length = 0
            for k in 0..<n {
                let s = batch.segments[k]
                guard s.first <= s.last && s.last < 8, case .success(let page) = grants.claim(grant: s.grant, writable: toGuest) else {
                    for c in (claimCount - k)..<claimCount { grants.release(grant: batch.claims[c], writable: toGuest) }
                    claimCount -= k
                    break requests
                }
                batch.claims[claimCount] = s.grant
                claimCount += 1
                let l = (Int(s.last) - Int(s.first) + 1) * 512
                batch.vectors[vectorCount + k] = iovec(iov_base: page + Int(s.first) * 512, iov_len: l)
                length += l
            }
            vectorCount += n
            bytes += length
            end += 1
            if bytes >= BlockBatch.maxBytes { break }
        }
        // One request alone takes the plain path, with its exact refusals.
        guard end - start >= 2 else { return start }
        let (offset, overflow) = firstSector.multipliedReportingOverflow(by: FlatFileDisk.sectorSize)
        guard !overflow, store.contains(offset: offset, count: UInt64(bytes)) else { return start }
        let vectors = UnsafeBufferPointer(start: batch.vectors, count: vectorCount)
        let result = toGuest ? store.read(vectors: vectors, at: offset) : store.write(vectors: vectors, at: offset)
        guard case .success = result else { return start }
        for k in start..<end { batch.statuses[k] = okay }
        if toGuest { counters.readRequests += end - start; counters.bytesRead += bytes }
        else { counters.writeRequests += end - start; counters.bytesWritten += bytes }
        return end
    }

    /// The segments of a read or write, copied into `segments`; nil when the
    /// request is malformed (the plain path then says how).
    static func resolveSegments<G: GrantMapper>(_ r: BlockRequest, into segments: UnsafeMutablePointer<BlockSegment>, grants: G) -> Int? {
        if r.operation != indirect {
            let n = r.segmentCount
            guard n >= 1 && n <= BlockRing.maxSegments else { return nil }
            for k in 0..<n { segments[k] = r.segment(k) }
            return n
        }
        let n = r.indirectSegmentCount
        guard n >= 1 && n <= BlockRing.maxIndirectSegments else { return nil }
        return copyIndirectSegments(r, count: n, into: segments, grants: grants) == nil ? n : nil
    }
}
