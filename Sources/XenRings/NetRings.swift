import CKVM

/// The backend end of a netif's two shared rings (`io/netif.h`: copying
/// receive path, one queue): a 64-byte header of indexes, then 256 entries,
/// 12 bytes on the transmit ring and 8 on the receive ring.
///
/// As with blkif, each entry is copied out before it is checked, every
/// grant goes through the `GrantMapper`, a bad packet is dropped and answered
/// with an error, and a ring whose framing is broken is corruption.
public struct NetRings {
    public static let entries: UInt32 = 256, txEntryBytes = 12, rxEntryBytes = 8, entriesOffset = 64
    /// Xen's limit on slots per transmitted packet (XEN_NETBK_LEGACY_SLOTS_MAX).
    public static let maxSlots = 18
    /// NETTXF_* and NETIF_RSP_*.
    public static let csumBlank: UInt16 = 1, moreData: UInt16 = 4, extraInfo: UInt16 = 8
    public static let okay: Int16 = 0, error: Int16 = -1, null: Int16 = 1
    /// How many receive responses are gathered before they are published.
    static let receiveBatch: UInt32 = 64

    /// The granted ring pages (4 KiB each).
    public let tx: UnsafeMutableRawPointer, rx: UnsafeMutableRawPointer
    public private(set) var txConsumed: UInt32 = 0, txProduced: UInt32 = 0
    public private(set) var rxConsumed: UInt32 = 0, rxProduced: UInt32 = 0

    public init(tx: UnsafeMutableRawPointer, rx: UnsafeMutableRawPointer) {
        self.tx = tx
        self.rx = rx
    }

    /// Publishes responses up to `produced` and notifies if the frontend asked.
    private func push(_ ring: UnsafeMutableRawPointer, from start: UInt32, to produced: UInt32, notify: () -> Void) {
        guard produced != start else { return }
        ckvm_store_release32(ring + 8, produced)
        ckvm_fence()
        let event = (ring + 12).load(as: UInt32.self)
        if produced &- event < produced &- start { notify() }
    }

    private func txSlot(_ i: UInt32) -> UnsafeMutableRawPointer {
        tx + Self.entriesOffset + Int(i % Self.entries) * Self.txEntryBytes
    }

    private mutating func respondTransmit(id: UInt16, status: Int16) {
        let out = txSlot(txProduced)
        out.storeBytes(of: id, as: UInt16.self)
        out.storeBytes(of: status, toByteOffset: 2, as: Int16.self)
        txProduced &+= 1
    }

    /// Guest → host: gathers each packet's slots into `frame` and hands it
    /// to `send` (false: the host dropped it), after completing a checksum
    /// the guest left to us. Returns the corruption that must close the
    /// device, or nil.
    public mutating func serviceTransmit<G: GrantMapper>(grants: G, frame: UnsafeMutableRawBufferPointer,
                                                         counters: inout NetCounters,
                                                         send: (UnsafeRawBufferPointer) -> Bool,
                                                         notify: () -> Void) -> RingCorruption? {
        var more = true
        while more {
            let produced = ckvm_load_acquire32(tx)
            if produced &- txConsumed > Self.entries {
                return RingCorruption(ring: .transmit, produced: produced, consumed: txConsumed)
            }
            let start = txProduced
            while txConsumed != produced {
                if let corrupt = transmitOne(produced: produced, grants: grants, frame: frame, counters: &counters, send: send) {
                    return corrupt
                }
            }
            push(tx, from: start, to: txProduced, notify: notify)
            (tx + 4).storeBytes(of: txConsumed &+ 1, as: UInt32.self)      // req_event
            ckvm_fence()
            more = ckvm_load_acquire32(tx) != txConsumed
        }
        return nil
    }

    /// One transmit ring slot as the guest wrote it.
    private struct TransmitSlot {
        var gref: UInt32 = 0, offset = 0, size = 0, id: UInt16 = 0, isExtra = false
    }

    /// One packet: its first slot, any extra-info slots, then its fragments,
    /// all below `produced` (the index checked by the caller). A packet that
    /// is malformed in its own bytes or grants is dropped and answered with
    /// errors; one that breaks the ring's framing (more slots than Xen
    /// allows, or slots not yet published) is corruption.
    private mutating func transmitOne<G: GrantMapper>(produced: UInt32, grants: G, frame: UnsafeMutableRawBufferPointer,
                                                      counters: inout NetCounters,
                                                      send: (UnsafeRawBufferPointer) -> Bool) -> RingCorruption? {
        withUnsafeTemporaryAllocation(of: TransmitSlot.self, capacity: Self.maxSlots) { slots -> RingCorruption? in
            var count = 0
            var flags: UInt16 = 0, firstFlags: UInt16 = 0
            func take() -> UnsafeMutableRawPointer? {
                guard txConsumed != produced, count < Self.maxSlots else { return nil }
                defer { txConsumed &+= 1 }
                return txSlot(txConsumed)
            }
            repeat {
                guard let s = take() else { return RingCorruption(ring: .transmit, produced: produced, consumed: txConsumed) }
                flags = s.load(fromByteOffset: 6, as: UInt16.self)
                slots[count] = TransmitSlot(gref: s.load(as: UInt32.self), offset: Int(s.load(fromByteOffset: 4, as: UInt16.self)),
                                            size: Int(s.load(fromByteOffset: 10, as: UInt16.self)),
                                            id: s.load(fromByteOffset: 8, as: UInt16.self))
                count += 1
                if count == 1 {
                    firstFlags = flags
                    var extraMore = flags & Self.extraInfo != 0
                    while extraMore {      // GSO and the like (never offered): skipped
                        guard let e = take() else { return RingCorruption(ring: .transmit, produced: produced, consumed: txConsumed) }
                        extraMore = e.load(fromByteOffset: 1, as: UInt8.self) & 1 != 0
                        slots[count] = TransmitSlot(isExtra: true)
                        count += 1
                    }
                }
            } while flags & Self.moreData != 0

            // The first slot's size is the packet's; its own bytes are that less the fragments'.
            var good = true
            var firstBytes = slots[0].size
            for i in 1..<count where !slots[i].isExtra { firstBytes -= slots[i].size }
            var at = 0
            if firstBytes < 0 { good = false }
            for i in 0..<count where good && !slots[i].isExtra {
                let length = i == 0 ? firstBytes : slots[i].size
                let offset = slots[i].offset
                guard offset + length <= 4096, at + length <= frame.count,
                      let page = grants.claimGrant(slots[i].gref, writable: false) else { good = false; break }
                (frame.baseAddress! + at).copyMemory(from: page + offset, byteCount: length)
                grants.releaseGrant(slots[i].gref, writable: false)
                at += length
            }
            if good && at >= 14 {
                let packet = UnsafeMutableRawBufferPointer(rebasing: frame[0..<at])
                if firstFlags & Self.csumBlank != 0 { Checksum.complete(packet) }
                if send(UnsafeRawBufferPointer(packet)) {
                    counters.packetsSent += 1; counters.bytesSent += at
                } else {
                    counters.droppedPackets += 1
                }
            } else {
                good = false
                counters.droppedPackets += 1
            }
            for i in 0..<count {
                respondTransmit(id: slots[i].id, status: slots[i].isExtra ? Self.null : good ? Self.okay : Self.error)
            }
            return nil
        }
    }

    /// Whether the guest has posted a receive buffer we have not used.
    public var receiveBuffersPosted: Bool {
        ckvm_load_acquire32(rx) != rxConsumed
    }

    /// Host → guest: while the guest has posted buffers and `receive` gives a
    /// frame (its length; nil when there is none), copies it to offset 0 of
    /// the buffer's page. Returns the corruption that must close the device,
    /// or nil.
    public mutating func serviceReceive<G: GrantMapper>(grants: G, frame: UnsafeMutableRawBufferPointer,
                                                        counters: inout NetCounters,
                                                        receive: (UnsafeMutableRawBufferPointer) -> Int?,
                                                        notify: () -> Void) -> RingCorruption? {
        var start = rxProduced
        while true {
            let produced = ckvm_load_acquire32(rx)
            if produced &- rxConsumed > Self.entries {
                return RingCorruption(ring: .receive, produced: produced, consumed: rxConsumed)
            }
            if produced == rxConsumed {
                // Ask to be told when buffers come, then look once more.
                (rx + 4).storeBytes(of: rxConsumed &+ 1, as: UInt32.self)
                ckvm_fence()
                if ckvm_load_acquire32(rx) == rxConsumed { break }
                continue
            }
            guard let n = receive(frame) else { break }        // nothing to deliver
            let slot = rx + Self.entriesOffset + Int(rxConsumed % Self.entries) * Self.rxEntryBytes
            let id = slot.load(as: UInt16.self)
            let gref = slot.load(fromByteOffset: 4, as: UInt32.self)
            rxConsumed &+= 1
            var status = Self.error
            if n <= 4096, let page = grants.claimGrant(gref, writable: true) {
                page.copyMemory(from: frame.baseAddress!, byteCount: n)
                grants.releaseGrant(gref, writable: true)
                status = Int16(n)
                counters.packetsReceived += 1; counters.bytesReceived += n
            } else {
                counters.droppedPackets += 1
            }
            let out = rx + Self.entriesOffset + Int(rxProduced % Self.entries) * Self.rxEntryBytes
            out.storeBytes(of: id, as: UInt16.self)
            out.storeBytes(of: UInt16(0), toByteOffset: 2, as: UInt16.self)     // offset
            out.storeBytes(of: UInt16(0), toByteOffset: 4, as: UInt16.self)     // flags
            out.storeBytes(of: status, toByteOffset: 6, as: Int16.self)
            rxProduced &+= 1
            if rxProduced &- start >= Self.receiveBatch {
                push(rx, from: start, to: rxProduced, notify: notify)
                start = rxProduced
            }
        }
        push(rx, from: start, to: rxProduced, notify: notify)
        return nil
    }
}

/// What netback has done, for the toolstack's metrics.
public struct NetCounters: Equatable, Sendable {
    public var packetsSent = 0, packetsReceived = 0, bytesSent = 0, bytesReceived = 0, droppedPackets = 0
    public init() {}
}

/// Completes the Internet checksum of a frame whose TCP or UDP checksum the
/// guest left partial (the pseudo-header sum in the field, NETTXF_csum_blank).
public enum Checksum {
    public static func complete(_ frame: UnsafeMutableRawBufferPointer) {
        func be16(_ o: Int) -> Int { Int(frame[o]) << 8 | Int(frame[o + 1]) }
        guard frame.count >= 14 else { return }
        var l3 = 14, type = be16(12)
        if type == 0x8100, frame.count >= 18 { type = be16(16); l3 = 18 }
        let l4: Int, end: Int, proto: UInt8
        switch type {
        case 0x0800:
            guard frame.count >= l3 + 20 else { return }
            l4 = l3 + Int(frame[l3] & 0x0f) * 4
            end = min(frame.count, l3 + be16(l3 + 2))
            proto = frame[l3 + 9]
        case 0x86dd:
            guard frame.count >= l3 + 40 else { return }
            l4 = l3 + 40
            end = min(frame.count, l4 + be16(l3 + 4))
            proto = frame[l3 + 6]
        default:
            return
        }
        let field: Int
        switch proto {
        case 6: field = l4 + 16
        case 17: field = l4 + 6
        default: return
        }
        guard field + 2 <= end else { return }
        var sum = 0
        var i = l4
        while i + 1 < end { sum += be16(i); i += 2 }
        if i < end { sum += Int(frame[i]) << 8 }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        var result = ~sum & 0xffff
        if proto == 17 && result == 0 { result = 0xffff }
        frame[field] = UInt8(result >> 8)
        frame[field + 1] = UInt8(result & 0xff)
    }
}
