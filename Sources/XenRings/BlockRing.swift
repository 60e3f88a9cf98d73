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

    public let page: UnsafeMutableRawPointer
    public private(set) var requestsConsumed: UInt32 = 0
    public private(set) var responsesProduced: UInt32 = 0

    /// `page` is the granted ring page (4 KiB), fresh from the frontend.
    public init(page: UnsafeMutableRawPointer) {
        self.page = page
    }

    /// Serves every request the frontend has published: `perform` gives each
    /// one's status, responses are published in order, `notify` is called
    /// when the frontend asked for an event. Returns the corruption that
    /// must close the device, or nil.
    public mutating func service(perform: (BlockRequest) -> Int16, notify: () -> Void) -> RingCorruption? {
        let reqProd = page, reqEvent = page + 4, rspProd = page + 8, rspEvent = page + 12
        var more = true
        while more {
            let produced = ckvm_load_acquire32(reqProd)
            if produced &- requestsConsumed > Self.entries {
                return RingCorruption(ring: .block, produced: produced, consumed: requestsConsumed)
            }
            let start = responsesProduced
            while requestsConsumed != produced {
                let slot = page + Self.entriesOffset + Int(requestsConsumed % Self.entries) * Self.entryBytes
                requestsConsumed &+= 1
                var request = BlockRequest()
                withUnsafeMutableBytes(of: &request.bytes) { $0.copyMemory(from: UnsafeRawBufferPointer(start: slot, count: Self.entryBytes)) }
                let status = perform(request)
                // The response overwrites its own slot (ring slots are shared by request and response).
                let out = page + Self.entriesOffset + Int(responsesProduced % Self.entries) * Self.entryBytes
                out.storeBytes(of: request.id, as: UInt64.self)
                out.storeBytes(of: request.operation, toByteOffset: 8, as: UInt8.self)
                out.storeBytes(of: status, toByteOffset: 10, as: Int16.self)
                responsesProduced &+= 1
            }
            if responsesProduced != start {
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
    public func segment(_ i: Int) -> (grant: UInt32, first: UInt8, last: UInt8) {
        let o = 24 + i * 8
        return (load(o, as: UInt32.self), load(o + 4, as: UInt8.self), load(o + 5, as: UInt8.self))
    }
}

/// Why blkback failed a request (its status is BLKIF_RSP_ERROR, or
/// BLKIF_RSP_EOPNOTSUPP for `.notSupported`).
public enum BlockRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    case notSupported(operation: UInt8)
    /// A read or write with no segments or more than BLKIF_MAX_SEGMENTS_PER_REQUEST.
    case segmentCount(Int)
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
    public static let read: UInt8 = 0, write: UInt8 = 1, flush: UInt8 = 3, discard: UInt8 = 5
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
        default:        // barriers and indirect segments were not offered
            return .failure(.notSupported(operation: request.operation))
        }
    }

    /// A read (`toGuest`) or write: up to 11 granted pages, each a run of
    /// 512-byte sectors inside its page, contiguous on the disk. All grants
    /// are claimed first, then one vectored system call moves the data.
    static func transfer<G: GrantMapper, S: BlockStore>(_ request: BlockRequest, toGuest: Bool, grants: G, store: S,
                                                        counters: inout BlockCounters) -> Result<Void, BlockRefusal> {
        let count = request.segmentCount
        guard count >= 1 && count <= BlockRing.maxSegments else { return .failure(.segmentCount(count)) }
        if !toGuest && store.isReadOnly { return .failure(.readOnlyDisk) }
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: BlockRing.maxSegments) { vectors -> Result<Void, BlockRefusal> in
            var claimed = 0
            defer { for i in 0..<claimed { grants.release(grant: request.segment(i).grant, writable: toGuest) } }
            var total = 0
            for i in 0..<count {
                let s = request.segment(i)
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
            let (offset, overflow) = request.sector.multipliedReportingOverflow(by: FlatFileDisk.sectorSize)
            guard !overflow, store.contains(offset: offset, count: UInt64(total)) else {
                return .failure(.beyondDisk(sector: request.sector))
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
