// libFuzzer entry for the Xen ring and grant handling (Sources/XenRings). Not
// a SwiftPM target (SwiftPM ignores this directory): scripts/fuzz-xen-rings.sh
// compiles it together with Sources/XenRings as one module, with
// -sanitize=fuzzer,address, so `swift build` never needs the fuzzer
// runtime. That is also why there is no `import XenRings` here.
//
// The input plays a PV guest: a short header, then a program of steps that
// write grant entries, blkif and netif requests and ring indexes, poke guest
// memory, and let the backends' ring code run (layout in docs/FUZZING.md).
// Whatever the bytes, the ring code must not trap, must not touch memory
// outside the granted pages (AddressSanitizer watches each 4 KiB frame, an
// allocation of its own), and the invariants checked below must hold; a
// violation traps, which libFuzzer reports as a crash.

import BlockStorage
import Glibc

/// Reads the input front to back; past the end it yields zeros.
private struct InputReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    var isAtEnd: Bool { offset >= bytes.count }

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }
    mutating func uint32() -> UInt32 { UInt32(uint16()) | UInt32(uint16()) << 16 }
    mutating func uint64() -> UInt64 { UInt64(uint32()) | UInt64(uint32()) << 32 }
}

/// Stops the run with a message: an invariant was broken.
private func violated(_ message: String) -> Never {
    fatalError("xen ring invariant violated: \(message)")
}

/// Guest frames: 0 is the blkif ring, 1 and 2 the netif transmit and receive
/// rings, the rest data pages.
private let frameCount = 12, blockRingFrame = 0, txRingFrame = 1, rxRingFrame = 2
private let pageSize = 4096

/// A disk in memory that checks what blkback asks of it: data moves only
/// between the disk and pages the backend holds a claim on (a writable claim
/// when the disk writes into the guest), and nothing changes a read-only disk.
private final class MemoryDisk: BlockStore {
    let isReadOnly: Bool
    let size: UInt64
    let bytes: UnsafeMutableRawPointer
    unowned let domain: HeapGrantDomain
    var failIO = false

    init(size: Int, readOnly: Bool, domain: HeapGrantDomain) {
        self.size = UInt64(size)
        isReadOnly = readOnly
        self.domain = domain
        bytes = .allocate(byteCount: size, alignment: 64)
        for i in 0..<size { bytes.storeBytes(of: UInt8(truncatingIfNeeded: i &* 7 &+ i >> 9), toByteOffset: i, as: UInt8.self) }
    }

    deinit { bytes.deallocate() }

    func contains(offset: UInt64, count: UInt64) -> Bool { offset <= size && count <= size - offset }

    private func check(_ vectors: UnsafeBufferPointer<iovec>, at offset: UInt64, intoGuest: Bool) {
        var total = 0
        for v in vectors {
            guard let base = v.iov_base else { violated("a null vector") }
            guard domain.isClaimed(base, count: v.iov_len, writable: intoGuest) else {
                violated("disk \(intoGuest ? "read into" : "write from") \(v.iov_len) bytes outside the pages claimed\(intoGuest ? " writable" : "")")
            }
            total += v.iov_len
        }
        guard contains(offset: offset, count: UInt64(total)) else { violated("disk access at \(offset) + \(total) beyond \(size)") }
    }

    func read(vectors: UnsafeBufferPointer<iovec>, at offset: UInt64) -> Result<Void, DiskError> {
        check(vectors, at: offset, intoGuest: true)
        if failIO { return .failure(.io(errno: EIO)) }
        var at = Int(offset)
        for v in vectors {
            v.iov_base!.copyMemory(from: bytes + at, byteCount: v.iov_len)
            at += v.iov_len
        }
        return .success(())
    }

    func write(vectors: UnsafeBufferPointer<iovec>, at offset: UInt64) -> Result<Void, DiskError> {
        guard !isReadOnly else { violated("a write reached a read-only disk") }
        check(vectors, at: offset, intoGuest: false)
        if failIO { return .failure(.io(errno: EIO)) }
        var at = Int(offset)
        for v in vectors {
            (bytes + at).copyMemory(from: v.iov_base!, byteCount: v.iov_len)
            at += v.iov_len
        }
        return .success(())
    }

    func flush() -> Result<Void, DiskError> { failIO ? .failure(.io(errno: EIO)) : .success(()) }

    func discard(offset: UInt64, count: UInt64) -> Result<Void, DiskError> {
        guard !isReadOnly else { violated("a discard reached a read-only disk") }
        guard contains(offset: offset, count: count) else { return .failure(.outOfRange) }
        (bytes + Int(offset)).initializeMemory(as: UInt8.self, repeating: 0, count: Int(count))
        return .success(())
    }
}

/// The guest, the backends' ring state and the checks.
private final class FuzzRun {
    let domain: HeapGrantDomain
    let disk: MemoryDisk
    /// One frame buffer of netback's size, exact, so overruns show.
    let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536 + 4096, alignment: 64)
    var block: BlockRing?
    var net: NetRings?
    var blockCounters = BlockCounters()
    let blockBatch = BlockBatch()
    var previousBlockRequests = [BlockRequest](repeating: BlockRequest(), count: Int(BlockRing.entries))
    var netCounters = NetCounters()
    /// Ring grants the backends hold (ref, frame), as connect claimed them.
    var blockRef: UInt32 = 0, txRef: UInt32 = 1, rxRef: UInt32 = 2
    /// The frames behind them (the guest may have granted others than 0, 1, 2).
    var blockFrame = blockRingFrame, txFrame = txRingFrame, rxFrame = rxRingFrame
    /// Grants the guest rewrote while the backend held them (the guest broke
    /// the protocol): their flags are no longer ours to check.
    var tampered: Set<UInt32> = []
    /// The guest's private producer indexes (RING_PUSH_REQUESTS publishes them).
    var blockPrivate: UInt32 = 0, txPrivate: UInt32 = 0, rxPrivate: UInt32 = 0
    /// Frames waiting on the "TAP" for the receive path.
    var pendingFrames: [Int] = []
    var sendVerdicts: UInt8 = 0xff
    var checksum: UInt64 = 0

    init(readOnlyDisk: Bool) {
        domain = HeapGrantDomain(frames: frameCount, tableFrames: 2, framesInUse: 1)
        disk = MemoryDisk(size: 64 * 1024, readOnly: readOnlyDisk, domain: domain)
        // The rings, as the frontends grant them, and every data page
        // granted writable (refs 3...11) and read-only (refs 12...20).
        domain.grant(0, frame: UInt32(blockRingFrame))
        domain.grant(1, frame: UInt32(txRingFrame))
        domain.grant(2, frame: UInt32(rxRingFrame))
        for f in 3..<frameCount {
            domain.grant(UInt32(f), frame: UInt32(f))
            domain.grant(UInt32(f + 9), frame: UInt32(f), flags: GrantEntries.permitAccess | GrantEntries.readOnly)
        }
        // Frames 5, 6 and 7 start with packet headers, so that transmitted
        // packets reach the checksum code: Ethernet + IPv4 + TCP, Ethernet +
        // VLAN + IPv4 + UDP, Ethernet + IPv6 + UDP (lengths 1500 / 1500 / 1460).
        func put(_ f: Int, _ offset: Int, _ bytes: [UInt8]) {
            for (i, b) in bytes.enumerated() { domain.page(f).storeBytes(of: b, toByteOffset: offset + i, as: UInt8.self) }
        }
        put(5, 12, [0x08, 0x00, 0x45, 0x00, 0x05, 0xdc, 0, 0, 0x40, 0, 0x40, 6])
        put(6, 12, [0x81, 0x00, 0x00, 0x05, 0x08, 0x00, 0x45, 0x00, 0x05, 0xdc, 0, 0, 0x40, 0, 0x40, 17])
        put(7, 12, [0x86, 0xdd, 0x60, 0, 0, 0, 0x05, 0xb4, 17, 64])
    }

    deinit { frame.deallocate() }

    // MARK: Connecting, as the backends' handshakes do

    func connectBlock() {
        guard block == nil else { return }
        if let page = domain.claimGrant(blockRef, writable: true) {
            block = BlockRing(page: page)
            blockFrame = domain.claims.last!.frame
            tampered.remove(blockRef)
            blockPrivate = page.load(as: UInt32.self)
        }
    }

    func disconnectBlock() {
        guard block != nil else { return }
        domain.releaseGrant(blockRef, writable: true)
        block = nil
    }

    func connectNet() {
        guard net == nil else { return }
        guard let tx = domain.claimGrant(txRef, writable: true) else { return }
        txFrame = domain.claims.last!.frame
        guard let rx = domain.claimGrant(rxRef, writable: true) else { domain.releaseGrant(txRef, writable: true); return }
        rxFrame = domain.claims.last!.frame
        net = NetRings(tx: tx, rx: rx)
        tampered.remove(txRef); tampered.remove(rxRef)
        txPrivate = tx.load(as: UInt32.self)
        rxPrivate = rx.load(as: UInt32.self)
    }

    func disconnectNet() {
        guard net != nil else { return }
        domain.releaseGrant(txRef, writable: true); domain.releaseGrant(rxRef, writable: true)
        net = nil
    }

    /// Claims the backends hold between services: their ring pages only.
    var ringClaims: Int { (block == nil ? 0 : 1) + (net == nil ? 0 : 2) }

    // MARK: Snapshots and checks

    /// Guest memory and the grant table as they were before a service.
    struct Snapshot {
        var frames: [UInt8]
        var table: [UInt8]
        var writableClaimFrames: [Int]
    }

    func snapshot() -> Snapshot {
        var frames = [UInt8](repeating: 0, count: frameCount * pageSize)
        frames.withUnsafeMutableBytes { out in
            for f in 0..<frameCount { (out.baseAddress! + f * pageSize).copyMemory(from: domain.page(f), byteCount: pageSize) }
        }
        let tableBytes = domain.tableFrames * pageSize
        let table = Array(UnsafeRawBufferPointer(start: domain.table, count: tableBytes))
        return Snapshot(frames: frames, table: table,
                        writableClaimFrames: domain.claims.filter(\.writable).map(\.frame))
    }

    /// The backends wrote only into frames the guest granted to domain 0
    /// writable (at the start of the service), or that they held writable.
    func checkWrites(since s: Snapshot, entryCount: Int) {
        for f in 0..<frameCount {
            let changed = s.frames.withUnsafeBytes { memcmp($0.baseAddress! + f * pageSize, domain.page(f), pageSize) != 0 }
            guard changed else { continue }
            if s.writableClaimFrames.contains(f) { continue }
            var granted = false
            for ref in 0..<entryCount {
                let flags = UInt16(s.table[ref * 8]) | UInt16(s.table[ref * 8 + 1]) << 8
                let domid = UInt16(s.table[ref * 8 + 2]) | UInt16(s.table[ref * 8 + 3]) << 8
                let frameLow = s.table[ref * 8 + 4...ref * 8 + 7].reversed().reduce(0) { $0 << 8 | Int($1) }
                if flags & GrantEntries.typeMask == GrantEntries.permitAccess, flags & GrantEntries.readOnly == 0,
                   domid == 0, frameLow == f {
                    granted = true
                    break
                }
            }
            guard granted else { violated("frame \(f) changed but the guest never granted it writable") }
        }
    }

    /// After a service: no claim is left open but the rings', and the rings'
    /// grants still show in use to the guest.
    func checkClaims() {
        guard domain.claims.count == ringClaims else {
            violated("\(domain.claims.count) claims open after a service, \(ringClaims) ring pages held")
        }
        func inUse(_ ref: UInt32) {
            guard !tampered.contains(ref) else { return }
            let flags = domain.flags(ref)
            guard flags & GrantEntries.reading != 0, flags & GrantEntries.writing != 0 else {
                violated("ring grant \(ref) held by the backend lost its in-use flags (\(flags))")
            }
        }
        if block != nil { inUse(blockRef) }
        if net != nil { inUse(txRef); inUse(rxRef) }
    }

    private func slotID16(_ s: Snapshot, frame: Int, offset: Int) -> UInt16 {
        UInt16(s.frames[frame * pageSize + offset]) | UInt16(s.frames[frame * pageSize + offset + 1]) << 8
    }

    // MARK: Services

    /// Response `k` on the block ring answers `request`: checked as soon as
    /// it is written, since a later read may overwrite it (a guest can name
    /// its own ring page as a read's buffer).
    func checkBlockResponses(_ page: UnsafeMutableRawPointer, from: UInt32, count: Int, requests: [BlockRequest]) {
        for i in 0..<count { checkBlockResponse(page, from &+ UInt32(i), requests[i]) }
    }

    func checkBlockResponse(_ page: UnsafeMutableRawPointer, _ k: UInt32, _ request: BlockRequest) {
        let o = BlockRing.entriesOffset + Int(k % BlockRing.entries) * BlockRing.entryBytes
        guard page.load(fromByteOffset: o, as: UInt64.self) == request.id,
              page.load(fromByteOffset: o + 8, as: UInt8.self) == request.responseOperation else {
            violated("block response \(k) does not answer request \(k) (id \(request.id))")
        }
        let status = page.load(fromByteOffset: o + 10, as: Int16.self)
        guard status == 0 || status == -1 || status == -2 else { violated("block status \(status)") }
    }

    func serviceBlock() {
        guard var ring = block else { return }
        let before = snapshot()
        let entries = domain.entryCount
        let consumed = ring.requestsConsumed, produced = ring.responsesProduced
        let disk = self.disk, domain = self.domain, page = ring.page
        var counters = blockCounters
        let batch = blockBatch
        var previous = previousBlockRequests
        var lastPass: (from: UInt32, count: Int)?
        var k = produced
        let corruption = ring.service(batch: batch, perform: { n in
            // A pass's responses are written after `perform` returns: check
            // them before the next pass's I/O (which may land in the ring
            // page itself) can overwrite them, and after the last pass.
            if let (from, count) = lastPass { self.checkBlockResponses(page, from: from, count: count, requests: previous) }
            BlockRequests.perform(batch: batch, count: n, grants: domain, store: disk, counters: &counters)
            for i in 0..<n { previous[i] = batch.requests[i] }
            lastPass = (k, n)
            k &+= UInt32(n)
        }, notify: {})
        if let (from, count) = lastPass { checkBlockResponses(page, from: from, count: count, requests: previous) }
        previousBlockRequests = previous
        blockCounters = counters
        block = ring
        checkWrites(since: before, entryCount: entries)
        if let corruption {
            guard !corruption.description.isEmpty else { violated("a corruption without a description") }
            guard corruption.produced &- corruption.consumed > BlockRing.entries else { violated("block corruption without cause: \(corruption)") }
            disconnectBlock()
        }
        // One pass takes at most a ring's worth; there may be more passes if
        // a read into the ring page itself moved req_prod (as a racing guest would).
        let answered = ring.responsesProduced &- produced
        guard answered == ring.requestsConsumed &- consumed, answered == k &- produced else {
            violated("\(answered) block responses for \(ring.requestsConsumed &- consumed) requests")
        }
        if answered > 0 && corruption == nil {
            guard page.load(fromByteOffset: 8, as: UInt32.self) == ring.responsesProduced else { violated("rsp_prod not published") }
        }
        checkClaims()
    }

    func serviceTransmit() {
        guard var rings = net else { return }
        let before = snapshot()
        let entries = domain.entryCount
        let consumed = rings.txConsumed, produced = rings.txProduced
        var counters = netCounters
        let capacity = frame.count
        var verdicts = sendVerdicts
        var sum = checksum
        let corruption = rings.serviceTransmit(grants: domain, frame: frame, counters: &counters, send: { packet in
            guard packet.count >= 14, packet.count <= capacity else { violated("sent a frame of \(packet.count) bytes") }
            for b in packet { sum = sum &* 31 &+ UInt64(b) }
            verdicts = verdicts >> 1 | verdicts << 7
            return verdicts & 1 != 0
        }, notify: {})
        checksum = sum
        netCounters = counters
        net = rings
        checkWrites(since: before, entryCount: entries)
        if let corruption {
            guard corruption.ring == .transmit, !corruption.description.isEmpty else { violated("transmit service reported \(corruption)") }
            disconnectNet()
            checkClaims()
            return
        }
        let answered = rings.txProduced &- produced
        guard answered == rings.txConsumed &- consumed, answered <= NetRings.entries else {
            violated("\(answered) transmit responses for \(rings.txConsumed &- consumed) slots")
        }
        let page = rings.tx
        var k = produced
        while k != rings.txProduced {
            let o = NetRings.entriesOffset + Int(k % NetRings.entries) * NetRings.txEntryBytes
            let status = page.load(fromByteOffset: o + 2, as: Int16.self)
            let id = page.load(fromByteOffset: o, as: UInt16.self)
            switch status {
            case NetRings.null: break        // an extra-info slot's answer
            case NetRings.okay, NetRings.error:
                guard id == slotID16(before, frame: txFrame, offset: o + 8) else {
                    violated("transmit response \(k) has id \(id), the request had another")
                }
            default: violated("transmit status \(status)")
            }
            k &+= 1
        }
        checkClaims()
    }

    /// Response `k` on the receive ring answers the buffer (`id`, `ref`)
    /// that frame of `length` bytes went to; checked before the next frame
    /// is copied, which may land on the ring page itself.
    func checkReceive(_ page: UnsafeMutableRawPointer, _ k: UInt32, id: UInt16, ref: UInt32, length: Int) {
        let o = NetRings.entriesOffset + Int(k % NetRings.entries) * NetRings.rxEntryBytes
        guard page.load(fromByteOffset: o, as: UInt16.self) == id else {
            violated("receive response \(k) does not carry its request's id \(id)")
        }
        let status = page.load(fromByteOffset: o + 6, as: Int16.self)
        if status >= 0 {
            guard Int(status) == length, length <= pageSize else { violated("receive status \(status) for \(length) bytes") }
            // The frame is at offset 0 of the page the buffer's grant names.
            guard Int(ref) < domain.entryCount else { violated("receive delivered through grant \(ref) beyond \(domain.entryCount)") }
            // A grant the backend still holds (a ring's) keeps the frame it was claimed with.
            let target = domain.claims.first { $0.ref == ref }.map { UInt32($0.frame) }
                ?? domain.table.load(fromByteOffset: Int(ref) * 8 + 4, as: UInt32.self)
            guard Int(target) < frameCount else { violated("receive delivered into frame \(target)") }
            // On the receive ring's own page, the responses since then overwrote part of it.
            if Int(target) == rxFrame { return }
            let bytes = UnsafeRawBufferPointer(start: domain.page(Int(target)), count: length)
            for i in 0..<length where bytes[i] != UInt8(truncatingIfNeeded: i &+ length) {
                violated("receive frame \(k) is not at offset 0 of frame \(target)")
            }
        } else if status != NetRings.error {
            violated("receive status \(status)")
        }
    }

    func serviceReceive() {
        guard var rings = net else { return }
        guard rings.receiveBuffersPosted == (rings.rx.load(as: UInt32.self) != rings.rxConsumed) else {
            violated("receiveBuffersPosted disagrees with the ring")
        }
        let before = snapshot()
        let entries = domain.entryCount
        let consumed = rings.rxConsumed, produced = rings.rxProduced
        var counters = netCounters
        var queue = pendingFrames[...]
        let page = rings.rx
        var last: (k: UInt32, id: UInt16, ref: UInt32, length: Int)?
        var k = produced
        let corruption = rings.serviceReceive(grants: domain, frame: frame, counters: &counters, receive: { buffer in
            if let l = last { self.checkReceive(page, l.k, id: l.id, ref: l.ref, length: l.length) }
            guard let n = queue.popFirst() else { last = nil; return nil }
            let length = min(n, buffer.count)
            for i in 0..<length { buffer[i] = UInt8(truncatingIfNeeded: i &+ length) }
            // The buffer the backend takes next, as it is now.
            let o = NetRings.entriesOffset + Int(k % NetRings.entries) * NetRings.rxEntryBytes
            last = (k, page.load(fromByteOffset: o, as: UInt16.self), page.load(fromByteOffset: o + 4, as: UInt32.self), length)
            k &+= 1
            return length
        }, notify: {})
        if let l = last { checkReceive(page, l.k, id: l.id, ref: l.ref, length: l.length) }
        pendingFrames = Array(queue)
        netCounters = counters
        net = rings
        checkWrites(since: before, entryCount: entries)
        if let corruption {
            guard corruption.ring == .receive, !corruption.description.isEmpty else { violated("receive service reported \(corruption)") }
            disconnectNet()
            checkClaims()
            return
        }
        let answered = rings.rxProduced &- produced
        guard answered == rings.rxConsumed &- consumed, answered == k &- produced else {
            violated("\(answered) receive responses for \(k &- produced) frames")
        }
        checkClaims()
    }

    // MARK: The guest

    func ringIndex(_ frame: Int, _ offset: Int) -> UInt32 { domain.page(frame).load(fromByteOffset: offset, as: UInt32.self) }
    func setRingIndex(_ frame: Int, _ offset: Int, _ value: UInt32) { domain.page(frame).storeBytes(of: value, toByteOffset: offset, as: UInt32.self) }

    /// Runs one step of the program.
    func step(_ r: inout InputReader) {
        let op = r.byte() % 16
        switch op {
        case 0:     // a blkif request at the guest's private producer index
            let kind = r.byte()
            let operations: [UInt8] = [0, 1, 3, 5, 0, 1, 2, 6]
            let operation = kind & 7 == 7 && kind & 0x80 != 0 ? r.byte() : operations[Int(kind & 7)]
            let segments = r.byte()
            let id = UInt64(r.uint16())
            let sector = kind & 8 != 0 ? r.uint64() : UInt64(r.byte())
            let slot = domain.page(blockFrame) + BlockRing.entriesOffset + Int(blockPrivate % BlockRing.entries) * BlockRing.entryBytes
            slot.storeBytes(of: operation, as: UInt8.self)
            slot.storeBytes(of: segments, toByteOffset: 1, as: UInt8.self)
            slot.storeBytes(of: id, toByteOffset: 8, as: UInt64.self)
            slot.storeBytes(of: sector, toByteOffset: 16, as: UInt64.self)
            if operation == BlockRequests.discard {
                slot.storeBytes(of: kind & 16 != 0 ? r.uint64() : UInt64(r.byte()), toByteOffset: 24, as: UInt64.self)
            } else if operation == BlockRequests.indirect {
                // blkif_request_indirect: the carried operation is `segments`,
                // a 16-bit count, and up to 8 grants of descriptor pages
                // (whose contents the guest writes with the other steps).
                slot.storeBytes(of: kind & 16 != 0 ? r.uint16() : UInt16(r.byte()), toByteOffset: 2, as: UInt16.self)
                for i in 0..<BlockRing.maxIndirectPages {
                    slot.storeBytes(of: kind & 32 != 0 ? r.uint32() : UInt32(r.byte()), toByteOffset: 28 + i * 4, as: UInt32.self)
                }
            } else {
                for i in 0..<min(Int(segments), BlockRing.maxSegments) {
                    let ref = kind & 32 != 0 ? r.uint32() : UInt32(r.byte())
                    let first = r.byte(), last = r.byte()
                    slot.storeBytes(of: ref, toByteOffset: 24 + i * 8, as: UInt32.self)
                    slot.storeBytes(of: first, toByteOffset: 28 + i * 8, as: UInt8.self)
                    slot.storeBytes(of: last, toByteOffset: 29 + i * 8, as: UInt8.self)
                }
            }
            blockPrivate &+= 1
        case 1:     // RING_PUSH_REQUESTS on the block ring
            setRingIndex(blockFrame, 0, blockPrivate)
        case 2:     // any request index: the guest lies
            let v = r.byte()
            let index = v & 0x80 != 0 ? r.uint32() : (block?.requestsConsumed ?? 0) &+ UInt32(v)
            setRingIndex(blockFrame, 0, index)
            blockPrivate = index
        case 3:
            disk.failIO = r.byte() & 0xf0 == 0xf0
            serviceBlock()
        case 4:     // a transmit slot
            let ref = UInt32(r.byte())
            let offset = r.uint16(), flags = UInt16(r.byte()), id = UInt16(r.byte()), size = r.uint16()
            let slot = domain.page(txFrame) + NetRings.entriesOffset + Int(txPrivate % NetRings.entries) * NetRings.txEntryBytes
            slot.storeBytes(of: ref, as: UInt32.self)
            slot.storeBytes(of: offset, toByteOffset: 4, as: UInt16.self)
            slot.storeBytes(of: flags, toByteOffset: 6, as: UInt16.self)
            slot.storeBytes(of: id, toByteOffset: 8, as: UInt16.self)
            slot.storeBytes(of: size, toByteOffset: 10, as: UInt16.self)
            txPrivate &+= 1
        case 5:
            setRingIndex(txFrame, 0, txPrivate)
        case 6:
            sendVerdicts = r.byte()
            serviceTransmit()
        case 7:     // receive buffers: one, or (top bit) up to 127 on one grant
            let count = r.byte()
            let id = r.uint16(), ref = UInt32(r.byte())
            for i in 0..<(count & 0x80 != 0 ? Int(count & 0x7f) : 1) {
                let slot = domain.page(rxFrame) + NetRings.entriesOffset + Int(rxPrivate % NetRings.entries) * NetRings.rxEntryBytes
                slot.storeBytes(of: id &+ UInt16(i), as: UInt16.self)
                slot.storeBytes(of: ref, toByteOffset: 4, as: UInt32.self)
                rxPrivate &+= 1
            }
        case 8:
            setRingIndex(rxFrame, 0, rxPrivate)
        case 9:     // frames arrive on the host side, then the receive path runs
            let count = r.byte()
            if count & 0x80 != 0 {      // many frames of one length
                let length = Int(r.uint16() % 8192)
                for _ in 0..<Int(count & 0x7f) where pendingFrames.count < 1024 { pendingFrames.append(length) }
            } else {
                for _ in 0..<Int(count % 4) { pendingFrames.append(Int(r.uint16() % 8192)) }
            }
            serviceReceive()
        case 10:    // the guest writes a grant entry
            let ref = UInt32(r.byte()) | (r.byte() & 0x80 != 0 ? 512 : 0)
            let flags = UInt16(r.byte())
            let domid = UInt16(r.byte() % 4)
            let frame = UInt32(r.byte() % UInt8(frameCount + 4))
            if ref == blockRef && block != nil || (ref == txRef || ref == rxRef) && net != nil { tampered.insert(ref) }
            domain.grant(ref, frame: frame, domain: domid, flags: flags)
        case 11:    // the guest pokes its memory, rings included
            let f = Int(r.byte()) % frameCount
            let offset = Int(r.uint16()) % pageSize
            let n = Int(r.byte() % 8)
            for i in 0..<n where offset + i < pageSize {
                domain.page(f).storeBytes(of: r.byte(), toByteOffset: offset + i, as: UInt8.self)
            }
        case 12:    // GNTTABOP_setup_table: more frames (never fewer)
            domain.framesInUse = max(domain.framesInUse, Int(r.byte() % 3))
        case 13:    // the frontend reconnects one device (to other ring grants, perhaps)
            let which = r.byte()
            if which & 1 == 0 {
                disconnectBlock()
                blockRef = UInt32(which >> 1 & 31)
                connectBlock()
            } else {
                disconnectNet()
                txRef = UInt32(which >> 1 & 15); rxRef = UInt32(which >> 5 & 7)
                connectNet()
            }
            checkClaims()
        case 14:    // the balloon takes a frame, or gives it back
            let f = Int(r.byte()) % frameCount
            domain.ballooned[f].toggle()
        default:    // an event index
            let ring = [blockFrame, txFrame, rxFrame][Int(r.byte() % 3)]
            setRingIndex(ring, 12, r.uint32())
        }
    }
}

private func run(_ input: UnsafeRawBufferPointer) {
    var reader = InputReader(bytes: input)
    let header = reader.byte()
    let run = FuzzRun(readOnlyDisk: header & 1 != 0)
    run.domain.framesInUse = header & 2 != 0 ? 2 : 1
    run.connectBlock()
    run.connectNet()
    var steps = 0
    while !reader.isAtEnd && steps < 4096 {
        run.step(&reader)
        steps += 1
    }
    // Whatever is left on the rings is served once more.
    run.serviceBlock()
    run.serviceTransmit()
    run.serviceReceive()
    run.disconnectBlock()
    run.disconnectNet()
    guard run.domain.claims.isEmpty else { violated("claims left after disconnecting: \(run.domain.claims)") }
    blackHole(run.checksum)
}

@inline(never)
private func blackHole(_ value: UInt64) {
    if value == 0x5eed_5eed_5eed_5eed { print("") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
