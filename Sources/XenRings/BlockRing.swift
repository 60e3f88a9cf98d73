import BlockStorage
import CKVM
import Glibc

/// The backend end of a blkif shared ring (`io/blkif.h`, x86-64 layout, one
/// ring page): `blkif_sring` is four indexes, 48 bytes of padding, then 32
/// entries of 112 bytes, each a request until the backend overwrites it with
/// its response.
///
/// Everything on the page is the guest's and may change under us: the
/// producer index is read once per pass and checked, each request is copied
/// out before it is looked at, and a producer index that runs ahead of what
/// we consumed by more than the ring size is corruption.
public struct BlockRing {
    public static let entries: UInt32 = 32, entryBytes = 112, entriesOffset = 64
    /// BLKIF_MAX_SEGMENTS_PER_REQUEST.
    public static let maxSegments = 11
    /// The segments an indirect request may carry (feature-max-indirect-segments):
    /// 256 pages, 1 MiB, so that one ring slot carries a whole 1 MiB bio. A
    /// frontend uses the smaller of this and its own limit (Linux: 32).
    public static let maxIndirectSegments = 256
    /// Segment descriptors in one indirect page (4096 / 8).
    public static let segmentsPerIndirectPage = 512
    /// BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST.
    public static let maxIndirectPages = 8

    public let page: UnsafeMutableRawPointer
    public private(set) var requestsConsumed: UInt32 = 0
    public private(set) var responsesProduced: UInt32 = 0

    /// `page` is the granted ring page (4 KiB), fresh from the frontend.
    public init(page: UnsafeMutableRawPointer) {
        self.page = page
    }

    /// Serves every request the frontend has published: each pass copies
    /// the requests out of the ring into `batch`, `perform` serves
    /// `batch.requests[0..<n]` and writes their statuses, and the responses
    /// are published in order; `notify` is called when the frontend asked
    /// for an event. Returns the corruption that must close the device, or nil.
    public mutating func service(batch: BlockBatch, perform: (Int) -> Void, notify: () -> Void) -> RingCorruption? {
        let reqProd = page, reqEvent = page + 4, rspProd = page + 8, rspEvent = page + 12
        var more = true
        while more {
            let produced = ckvm_load_acquire32(reqProd)
            if produced &- requestsConsumed > Self.entries {
                return RingCorruption(ring: .block, produced: produced, consumed: requestsConsumed)
            }
            let count = Int(produced &- requestsConsumed)
            if count > 0 {
                for k in 0..<count {
                    let slot = page + Self.entriesOffset + Int((requestsConsumed &+ UInt32(k)) % Self.entries) * Self.entryBytes
                    withUnsafeMutableBytes(of: &batch.requests[k].bytes) {
                        $0.copyMemory(from: UnsafeRawBufferPointer(start: slot, count: Self.entryBytes))
                    }
                }
                requestsConsumed &+= UInt32(count)
                perform(count)
                // Each response overwrites a slot its request was copied out of
                // (ring slots are shared by request and response).
                let start = responsesProduced
                for k in 0..<count {
                    let request = batch.requests[k]
                    let out = page + Self.entriesOffset + Int(responsesProduced % Self.entries) * Self.entryBytes
                    out.storeBytes(of: request.id, as: UInt64.self)
                    out.storeBytes(of: request.responseOperation, toByteOffset: 8, as: UInt8.self)
                    out.storeBytes(of: batch.statuses[k], toByteOffset: 10, as: Int16.self)
                    responsesProduced &+= 1
                }
                ckvm_store_release32(rspProd, responsesProduced)
                ckvm_fence()
                let event = rspEvent.load(as: UInt32.self)
                if responsesProduced &- event < responsesProduced &- start { notify() }
            }
            // Ask for an event at the next request, then look once more
            // (RING_FINAL_CHECK_FOR_REQUESTS): a request that raced in is
            // taken now rather than left until the next notification.
            reqEvent.storeBytes(of: requestsConsumed &+ 1, as: UInt32.self)
            ckvm_fence()
            more = ckvm_load_acquire32(reqProd) != requestsConsumed
        }
        return nil
    }
}

/// A copy of one `blkif_request` (112 bytes), taken out of the shared ring
/// before anything in it is looked at.
public struct BlockRequest {
    public var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                       UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    public init() {}

    private func load<T>(_ offset: Int, as type: T.Type) -> T {
        withUnsafeBytes(of: bytes) { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    public var operation: UInt8 { load(0, as: UInt8.self) }
    public var segmentCount: Int { Int(load(1, as: UInt8.self)) }
    public var id: UInt64 { load(8, as: UInt64.self) }
    public var sector: UInt64 { load(16, as: UInt64.self) }
    /// A discard's length in sectors (its layout differs from read/write).
    public var discardSectors: UInt64 { load(24, as: UInt64.self) }

    /// `blkif_request_segment`: grant, first and last sector within the page.
    public func segment(_ i: Int) -> BlockSegment {
        let o = 24 + i * 8
        return BlockSegment(grant: load(o, as: UInt32.self), first: load(o + 4, as: UInt8.self), last: load(o + 5, as: UInt8.self))
    }

    // `blkif_request_indirect` (BLKIF_OP_INDIRECT): the read or write it
    // carries, a 16-bit segment count, and up to 8 grants of pages that
    // hold the segment descriptors.
    public var indirectOperation: UInt8 { load(1, as: UInt8.self) }
    public var indirectSegmentCount: Int { Int(load(2, as: UInt16.self)) }
    public func indirectPage(_ i: Int) -> UInt32 { load(28 + i * 4, as: UInt32.self) }

    /// The operation a response names: an indirect request is answered as
    /// the read or write it carried (Linux's blkfront checks this).
    public var responseOperation: UInt8 {
        operation == BlockRequests.indirect ? indirectOperation : operation
    }
}

/// One `blkif_request_segment`: a granted page and the run of 512-byte
/// sectors in it (first and last, inclusive) that the request moves.
public struct BlockSegment: Equatable, Sendable {
    public var grant: UInt32
    public var first: UInt8
    public var last: UInt8

    public init(grant: UInt32, first: UInt8, last: UInt8) {
        self.grant = grant
        self.first = first
        self.last = last
    }
}

/// Why blkback failed a request (its status is BLKIF_RSP_ERROR, or
/// BLKIF_RSP_EOPNOTSUPP for `.notSupported`).
public enum BlockRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    case notSupported(operation: UInt8)
    /// A read or write with no segments or more than BLKIF_MAX_SEGMENTS_PER_REQUEST.
    case segmentCount(Int)
    /// An indirect request with no segments or more than feature-max-indirect-segments.
    case indirectSegmentCount(Int)
    /// An indirect request that carries neither a read nor a write.
    case indirectOperation(UInt8)
    /// An indirect request's page of segment descriptors could not be read.
    case indirectPage(page: Int, GrantRefusal)
    /// first_sect > last_sect, or last_sect past the page's 8 sectors.
    case sectorsOutsidePage(segment: Int, first: UInt8, last: UInt8)
    case grant(segment: Int, GrantRefusal)
    /// A write, flush-with-data or discard on a read-only disk.
    case readOnlyDisk
    /// The request runs past the end of the disk (or its byte offset overflows).
    case beyondDisk(sector: UInt64)
    case disk(DiskError)

    public var description: String {
        switch self {
        case .notSupported(let op): "operation \(op) is not supported"
        case .segmentCount(let n): "\(n) segments (1 to \(BlockRing.maxSegments) allowed)"
        case .indirectSegmentCount(let n): "indirect request of \(n) segments (1 to \(BlockRing.maxIndirectSegments) allowed)"
        case .indirectOperation(let op): "indirect request carries operation \(op), not a read or write"
        case .indirectPage(let i, let why): "indirect page \(i): \(why)"
        case .sectorsOutsidePage(let i, let f, let l): "segment \(i): sectors \(f) to \(l) are not within one page"
        case .grant(let i, let why): "segment \(i): \(why)"
        case .readOnlyDisk: "the disk is read-only"
        case .beyondDisk(let s): "sector \(s): beyond the end of the disk"
        case .disk(let e): e.description
        }
    }
}

/// What blkback has done, for the toolstack's metrics.
public struct BlockCounters: Equatable, Sendable {
    public var readRequests = 0, writeRequests = 0, bytesRead = 0, bytesWritten = 0, failedRequests = 0
    public init() {}
}

/// Carries out one blkif request against a disk, through the guest's grants.
public enum BlockRequests {
    /// BLKIF_OP_* and BLKIF_RSP_*.
    public static let read: UInt8 = 0, write: UInt8 = 1, flush: UInt8 = 3, discard: UInt8 = 5, indirect: UInt8 = 6
    public static let okay: Int16 = 0, error: Int16 = -1, notSupported: Int16 = -2

    /// The response status for `request`.
    public static func perform<G: GrantMapper, S: BlockStore>(_ request: BlockRequest, grants: G, store: S,
                                                              counters: inout BlockCounters) -> Int16 {
        switch execute(request, grants: grants, store: store, counters: &counters) {
        case .success: return okay
        case .failure(.notSupported): return notSupported
        case .failure:
            counters.failedRequests += 1
            return error
        }
    }

    /// Does `request`, or says why not.
    public static func execute<G: GrantMapper, S: BlockStore>(_ request: BlockRequest, grants: G, store: S,
                                                              counters: inout BlockCounters) -> Result<Void, BlockRefusal> {
        switch request.operation {
        case read: return transfer(request, toGuest: true, grants: grants, store: store, counters: &counters)
        case write: return transfer(request, toGuest: false, grants: grants, store: store, counters: &counters)
        case indirect: return transferIndirect(request, grants: grants, store: store, counters: &counters)
        case flush:     // flush the disk cache; a write may ride along (a pre-flushed write)
            if case .failure(let e) = store.flush() { return .failure(.disk(e)) }
            return request.segmentCount == 0 ? .success(())
                : transfer(request, toGuest: false, grants: grants, store: store, counters: &counters)
        case discard:       // never offered on a read-only disk: refused here, not left to the disk
            if store.isReadOnly { return .failure(.readOnlyDisk) }
            let (bytes, overflow) = request.discardSectors.multipliedReportingOverflow(by: FlatFileDisk.sectorSize)
            let (offset, overflow2) = request.sector.multipliedReportingOverflow(by: FlatFileDisk.sectorSize)
            if overflow || overflow2 { return .failure(.beyondDisk(sector: request.sector)) }
            if case .failure(let e) = store.discard(offset: offset, count: bytes) { return .failure(.disk(e)) }
            return .success(())
        default:        // barriers were not offered
            return .failure(.notSupported(operation: request.operation))
        }
    }

    /// A read (`toGuest`) or write of up to 11 segments held in the request.
    static func transfer<G: GrantMapper, S: BlockStore>(_ request: BlockRequest, toGuest: Bool, grants: G, store: S,
                                                        counters: inout BlockCounters) -> Result<Void, BlockRefusal> {
        let count = request.segmentCount
        guard count >= 1 && count <= BlockRing.maxSegments else { return .failure(.segmentCount(count)) }
        return withUnsafeTemporaryAllocation(of: BlockSegment.self, capacity: BlockRing.maxSegments) { segments in
            for i in 0..<count { segments[i] = request.segment(i) }
            return move(UnsafeBufferPointer(rebasing: segments[0..<count]), sector: request.sector, toGuest: toGuest,
                        grants: grants, store: store, counters: &counters)
        }
    }

    /// BLKIF_OP_INDIRECT: the segment descriptors are copied out of their
    /// granted pages (the guest may change them under us) and the pages let
    /// go before any data moves; then it is a read or write like any other.
    static func transferIndirect<G: GrantMapper, S: BlockStore>(_ request: BlockRequest, grants: G, store: S,
                                                                counters: inout BlockCounters) -> Result<Void, BlockRefusal> {
        let op = request.indirectOperation
        guard op == read || op == write else { return .failure(.indirectOperation(op)) }
        let count = request.indirectSegmentCount
        guard count >= 1 && count <= BlockRing.maxIndirectSegments else { return .failure(.indirectSegmentCount(count)) }
        return withUnsafeTemporaryAllocation(of: BlockSegment.self, capacity: BlockRing.maxIndirectSegments) { segments in
            if let why = copyIndirectSegments(request, count: count, into: segments.baseAddress!, grants: grants) {
                return .failure(why)
            }
            return move(UnsafeBufferPointer(rebasing: segments[0..<count]), sector: request.sector, toGuest: op == read,
                        grants: grants, store: store, counters: &counters)
        }
    }

    /// Copies an indirect request's `count` segment descriptors out of its
    /// granted pages into `segments`, claiming each page only while it is
    /// read; or says why not.
    static func copyIndirectSegments<G: GrantMapper>(_ request: BlockRequest, count: Int, into segments: UnsafeMutablePointer<BlockSegment>,
                                                     grants: G) -> BlockRefusal? {
        let perPage = BlockRing.segmentsPerIndirectPage
        var copied = 0, page = 0
        while copied < count {
            let ref = request.indirectPage(page)
            let base: UnsafeMutableRawPointer
            switch grants.claim(grant: ref, writable: false) {
            case .success(let p): base = p
            case .failure(let why): return .indirectPage(page: page, why)
            }
            let n = min(perPage, count - copied)
            for i in 0..<n {
                let o = i * 8
                segments[copied + i] = BlockSegment(grant: base.loadUnaligned(fromByteOffset: o, as: UInt32.self),
                                                    first: base.load(fromByteOffset: o + 4, as: UInt8.self),
                                                    last: base.load(fromByteOffset: o + 5, as: UInt8.self))
            }
            grants.release(grant: ref, writable: false)
            copied += n
            page += 1
        }
        return nil
    }

    /// Moves `segments` (granted pages, each a run of 512-byte sectors
    /// inside its page, contiguous on the disk from `sector`) to or from the
    /// disk. All grants are claimed first, then one vectored system call
    /// moves the data.
    static func move<G: GrantMapper, S: BlockStore>(_ segments: UnsafeBufferPointer<BlockSegment>, sector: UInt64, toGuest: Bool,
                                                    grants: G, store: S,
                                                    counters: inout BlockCounters) -> Result<Void, BlockRefusal> {
        if !toGuest && store.isReadOnly { return .failure(.readOnlyDisk) }
        let count = segments.count
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { vectors -> Result<Void, BlockRefusal> in
            var claimed = 0
            defer { for i in 0..<claimed { grants.release(grant: segments[i].grant, writable: toGuest) } }
            var total = 0
            for i in 0..<count {
                let s = segments[i]
                guard s.first <= s.last && s.last < 8 else {
                    return .failure(.sectorsOutsidePage(segment: i, first: s.first, last: s.last))
                }
                let page: UnsafeMutableRawPointer
                switch grants.claim(grant: s.grant, writable: toGuest) {
                case .success(let p): page = p
                case .failure(let why): return .failure(.grant(segment: i, why))
                }
                claimed += 1
                let length = (Int(s.last) - Int(s.first) + 1) * 512
                vectors[i] = iovec(iov_base: page + Int(s.first) * 512, iov_len: length)
                total += length
            }
            let (offset, overflow) = sector.multipliedReportingOverflow(by: FlatFileDisk.sectorSize)
            guard !overflow, store.contains(offset: offset, count: UInt64(total)) else {
                return .failure(.beyondDisk(sector: sector))
            }
            let done = UnsafeBufferPointer(rebasing: vectors[0..<count])
            let result = toGuest ? store.read(vectors: done, at: offset) : store.write(vectors: done, at: offset)
            if case .failure(let e) = result { return .failure(.disk(e)) }
            if toGuest { counters.readRequests += 1; counters.bytesRead += total }
            else { counters.writeRequests += 1; counters.bytesWritten += total }
            return .success(())
        }
    }
}
