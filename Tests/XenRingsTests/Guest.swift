import BlockStorage
import Glibc
@testable import XenRings

/// A disk in memory that counts what reached it. Like `FlatFileDisk`, it
/// refuses writes and discards when read-only (the backend must refuse first).
final class MemoryStore: BlockStore {
    let isReadOnly: Bool
    var bytes: [UInt8]
    var reads = 0, writes = 0, discards = 0, flushes = 0
    /// Reads with more vectors than this fail with EIO (a merged transfer
    /// that meets an error).
    var failReadsOfMoreVectorsThan = Int.max

    /// Sector n holds the byte n + 1 throughout.
    init(sectors: Int = 64, readOnly: Bool = false) {
        isReadOnly = readOnly
        bytes = (0..<sectors * 512).map { UInt8(truncatingIfNeeded: $0 / 512 + 1) }
    }

    func contains(offset: UInt64, count: UInt64) -> Bool {
        offset <= UInt64(bytes.count) && count <= UInt64(bytes.count) - offset
    }

    func read(vectors: UnsafeBufferPointer<iovec>, at offset: UInt64) -> Result<Void, DiskError> {
        reads += 1
        if vectors.count > failReadsOfMoreVectorsThan { return .failure(.io(errno: EIO)) }
        var at = Int(offset)
        for v in vectors {
            bytes.withUnsafeBytes { v.iov_base!.copyMemory(from: $0.baseAddress! + at, byteCount: v.iov_len) }
            at += v.iov_len
        }
        return .success(())
    }

    func write(vectors: UnsafeBufferPointer<iovec>, at offset: UInt64) -> Result<Void, DiskError> {
        writes += 1
        guard !isReadOnly else { return .failure(.readOnly) }
        var at = Int(offset)
        for v in vectors {
            bytes.withUnsafeMutableBytes { ($0.baseAddress! + at).copyMemory(from: v.iov_base!, byteCount: v.iov_len) }
            at += v.iov_len
        }
        return .success(())
    }

    func flush() -> Result<Void, DiskError> { flushes += 1; return .success(()) }

    func discard(offset: UInt64, count: UInt64) -> Result<Void, DiskError> {
        discards += 1
        guard !isReadOnly else { return .failure(.readOnly) }
        guard contains(offset: offset, count: count) else { return .failure(.outOfRange) }
        for i in 0..<Int(count) { bytes[Int(offset) + i] = 0 }
        return .success(())
    }
}

/// A blkif segment as a frontend writes it.
struct Segment {
    var ref: UInt32
    var first: UInt8 = 0
    var last: UInt8 = 7
}

/// A `blkif_request` as a frontend writes it.
func blockRequest(_ operation: UInt8, id: UInt64 = 7, sector: UInt64 = 0, segments: [Segment] = [],
                  count: Int? = nil) -> BlockRequest {
    var r = BlockRequest()
    withUnsafeMutableBytes(of: &r.bytes) { b in
        b.storeBytes(of: operation, as: UInt8.self)
        b.storeBytes(of: UInt8(count ?? segments.count), toByteOffset: 1, as: UInt8.self)
        b.storeBytes(of: id, toByteOffset: 8, as: UInt64.self)
        b.storeBytes(of: sector, toByteOffset: 16, as: UInt64.self)
        for (i, s) in segments.prefix(BlockRing.maxSegments).enumerated() {
            b.storeBytes(of: s.ref, toByteOffset: 24 + i * 8, as: UInt32.self)
            b.storeBytes(of: s.first, toByteOffset: 28 + i * 8, as: UInt8.self)
            b.storeBytes(of: s.last, toByteOffset: 29 + i * 8, as: UInt8.self)
        }
    }
    return r
}

/// A PV guest in heap memory as the fuzzer sets it up: frame 0 is the blkif
/// ring, 1 and 2 the netif transmit and receive rings (grants 0, 1, 2, all
/// claimed by the backends), frames 3...11 data pages granted writable by
/// grants 3...11 and read-only by grants 12...20.
final class Guest {
    static let frames = 12
    let domain = HeapGrantDomain(frames: Guest.frames, tableFrames: 1)
    var block: BlockRing
    var net: NetRings
    var counters = BlockCounters()

    init() {
        domain.grant(0, frame: 0)
        domain.grant(1, frame: 1)
        domain.grant(2, frame: 2)
        for f in 3..<Self.frames {
            domain.grant(UInt32(f), frame: UInt32(f))
            domain.grant(UInt32(f + 9), frame: UInt32(f), flags: GrantEntries.permitAccess | GrantEntries.readOnly)
        }
        block = BlockRing(page: domain.claimGrant(0, writable: true)!)
        net = NetRings(tx: domain.claimGrant(1, writable: true)!, rx: domain.claimGrant(2, writable: true)!)
    }

    /// Ref of a writable and of a read-only grant of data frame `f` (3...11).
    static func writable(_ f: Int) -> UInt32 { UInt32(f) }
    static func readOnly(_ f: Int) -> UInt32 { UInt32(f + 9) }

    func execute(_ r: BlockRequest, on store: MemoryStore) -> Result<Void, BlockRefusal> {
        BlockRequests.execute(r, grants: domain, store: store, counters: &counters)
    }

    func succeeds(_ r: BlockRequest, on store: MemoryStore) -> Bool {
        if case .success = execute(r, on: store) { return true }
        return false
    }

    func refusal(_ r: BlockRequest, on store: MemoryStore) -> BlockRefusal? {
        if case .failure(let why) = execute(r, on: store) { return why }
        return nil
    }

    func byte(_ frame: Int, _ offset: Int) -> UInt8 { domain.page(frame).load(fromByteOffset: offset, as: UInt8.self) }

    /// The ring index at `offset` of ring frame `frame` (0 req_prod, 4
    /// req_event, 8 rsp_prod, 12 rsp_event).
    func index(_ frame: Int, _ offset: Int) -> UInt32 { domain.page(frame).load(fromByteOffset: offset, as: UInt32.self) }
    func setIndex(_ frame: Int, _ offset: Int, _ value: UInt32) {
        domain.page(frame).storeBytes(of: value, toByteOffset: offset, as: UInt32.self)
    }

    /// Writes `request` into block ring slot `index % 32`.
    func post(_ request: BlockRequest, at index: UInt32) {
        let slot = domain.page(0) + BlockRing.entriesOffset + Int(index % BlockRing.entries) * BlockRing.entryBytes
        withUnsafeBytes(of: request.bytes) { slot.copyMemory(from: $0.baseAddress!, byteCount: BlockRing.entryBytes) }
    }

    /// Block response `k`: id, operation, status.
    func blockResponse(_ k: UInt32) -> (id: UInt64, operation: UInt8, status: Int16) {
        let o = domain.page(0) + BlockRing.entriesOffset + Int(k % BlockRing.entries) * BlockRing.entryBytes
        return (o.load(as: UInt64.self), o.load(fromByteOffset: 8, as: UInt8.self), o.load(fromByteOffset: 10, as: Int16.self))
    }

    let batch = BlockBatch()

    func serveBlock(_ store: MemoryStore) -> (corruption: RingCorruption?, performed: Int) {
        var performed = 0
        let domain = self.domain, batch = self.batch
        var counters = self.counters
        let corruption = block.service(batch: batch, perform: { n in
            performed += n
            BlockRequests.perform(batch: batch, count: n, grants: domain, store: store, counters: &counters)
        }, notify: {})
        self.counters = counters
        return (corruption, performed)
    }

    /// Writes a transmit slot at index `i`.
    func postTransmit(at i: UInt32, ref: UInt32, offset: UInt16 = 0, flags: UInt16 = 0, id: UInt16, size: UInt16) {
        let s = domain.page(1) + NetRings.entriesOffset + Int(i % NetRings.entries) * NetRings.txEntryBytes
        s.storeBytes(of: ref, as: UInt32.self)
        s.storeBytes(of: offset, toByteOffset: 4, as: UInt16.self)
        s.storeBytes(of: flags, toByteOffset: 6, as: UInt16.self)
        s.storeBytes(of: id, toByteOffset: 8, as: UInt16.self)
        s.storeBytes(of: size, toByteOffset: 10, as: UInt16.self)
    }

    func transmitResponse(_ k: UInt32) -> (id: UInt16, status: Int16) {
        let s = domain.page(1) + NetRings.entriesOffset + Int(k % NetRings.entries) * NetRings.txEntryBytes
        return (s.load(as: UInt16.self), s.load(fromByteOffset: 2, as: Int16.self))
    }

    /// Sends what the transmit ring holds; returns the corruption (if any) and the packets sent.
    func serveTransmit() -> (corruption: RingCorruption?, sent: [[UInt8]]) {
        let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536 + 4096, alignment: 64)
        defer { frame.deallocate() }
        var sent: [[UInt8]] = []
        var counters = NetCounters()
        let corruption = net.serviceTransmit(grants: domain, frame: frame, counters: &counters,
                                             send: { sent.append(Array($0)); return true }, notify: {})
        return (corruption, sent)
    }

    /// Posts a receive buffer at index `i`.
    func postReceive(at i: UInt32, id: UInt16, ref: UInt32) {
        let s = domain.page(2) + NetRings.entriesOffset + Int(i % NetRings.entries) * NetRings.rxEntryBytes
        s.storeBytes(of: id, as: UInt16.self)
        s.storeBytes(of: ref, toByteOffset: 4, as: UInt32.self)
    }

    func receiveResponse(_ k: UInt32) -> (id: UInt16, status: Int16) {
        let s = domain.page(2) + NetRings.entriesOffset + Int(k % NetRings.entries) * NetRings.rxEntryBytes
        return (s.load(as: UInt16.self), s.load(fromByteOffset: 6, as: Int16.self))
    }

    /// Delivers `frames` (their lengths; the bytes are 0xAB) through the receive ring.
    func serveReceive(_ frames: [Int]) -> RingCorruption? {
        let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536 + 4096, alignment: 64)
        defer { frame.deallocate() }
        var queue = frames[...]
        var counters = NetCounters()
        return net.serviceReceive(grants: domain, frame: frame, counters: &counters, receive: { buffer in
            guard let n = queue.popFirst() else { return nil }
            buffer.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0xAB, count: n)
            return n
        }, notify: {})
    }

    /// Whether grant `ref` shows in use (reading, and writing if `writing`) to the guest.
    func inUse(_ ref: UInt32, writing: Bool = true) -> Bool {
        let f = domain.flags(ref)
        return f & GrantEntries.reading != 0 && (!writing || f & GrantEntries.writing != 0)
    }

    /// Whether grant `ref` shows neither in-use flag.
    func idle(_ ref: UInt32) -> Bool { domain.flags(ref) & (GrantEntries.reading | GrantEntries.writing) == 0 }
}
