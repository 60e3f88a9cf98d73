import CKVM
import Glibc
import HostNetwork
import Synchronization
import XenPV
import XenStore

/// netback: connects a PV guest's netfront to a TAP device, over the two
/// shared rings of Xen's `io/netif.h` (copying receive path, one queue, one
/// event channel). Offered features are the minimum: no scatter-gather or
/// GSO from the backend, so every received frame fits one granted page.
///
/// As in blkback, each ring entry is copied out before it is checked, every
/// grant goes through `PVDomain.claimGrant`, a bad packet is dropped and
/// answered with an error, and a corrupt ring disconnects the device.
public final class NetBackend: PVDeviceBackend, @unchecked Sendable {
    let domain: PVDomain
    let tap: TapDevice
    public let mac: MACAddress
    let device: XenBusDevice
    let wake: WakeSignal
    private var index = 0
    private var watcher: XenStoreConnection!
    private let stopping = Atomic<Bool>(false)
    private var state = XenBusState.initWait

    /// The connection, while there is one.
    private var txRing: UnsafeMutableRawPointer?, rxRing: UnsafeMutableRawPointer?
    private var txRef: UInt32 = 0, rxRef: UInt32 = 0
    private var port = 0
    private var txConsumed: UInt32 = 0, txProduced: UInt32 = 0
    private var rxConsumed: UInt32 = 0, rxProduced: UInt32 = 0

    /// One packet's bytes on their way from the guest to the TAP, or back.
    private let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536 + 4096, alignment: 64)

    public let packetsSent = Atomic<Int>(0), packetsReceived = Atomic<Int>(0)
    public let bytesSent = Atomic<Int>(0), bytesReceived = Atomic<Int>(0)
    public let droppedPackets = Atomic<Int>(0)

    public init(domain: PVDomain, tap: TapDevice, mac: MACAddress, nicIndex: Int) throws {
        self.domain = domain
        self.tap = tap
        self.mac = mac
        wake = try WakeSignal()
        device = try XenBusDevice(store: domain.store, frontendDomain: PVDomain.domainID, kind: "vif", deviceID: nicIndex,
                                  frontendNodes: [("handle", String(nicIndex)), ("mac", mac.description)],
                                  backendNodes: [("handle", String(nicIndex)), ("mac", mac.description), ("type", "vif"),
                                                 ("script", ""), ("bridge", ""), ("tap", tap.name),
                                                 ("feature-rx-copy", "1"), ("feature-rx-flip", "0")])
        index = domain.register(self)
        let wake = self.wake
        watcher = XenStoreConnection(tree: domain.store, domainID: 0, onOutput: { wake.signal() })
        watcher.handle(XenStoreMessage(type: .watch, strings: [device.frontendStatePath, "frontend-state"]))
        device.setBackendState(.initWait)
    }

    deinit { frame.deallocate() }

    public func frontendNotified() { wake.signal() }

    public func start() {
        var thread = pthread_t()
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { arg in
            Unmanaged<NetBackend>.fromOpaque(arg!).takeRetainedValue().threadMain()
            return nil
        }, box)
        pthread_detach(thread)
    }

    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
    }

    /// Waits for a wake-up or, when the guest has posted receive buffers,
    /// for a frame on the TAP; then does whatever is ready.
    private func threadMain() {
        var fds = [pollfd(fd: wake.fileDescriptor, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: tap.fd, events: Int16(POLLIN), revents: 0)]
        while !stopping.load(ordering: .acquiring) {
            let watchTap = rxRing != nil && rxRequestsWaiting
            let n = poll(&fds, watchTap ? 2 : 1, -1)
            if n < 0 { if errno == EINTR { continue }; break }
            if fds[0].revents != 0 { wake.drain() }
            if watcher.hasOutput {
                _ = watcher.drainMessages()
                frontendStateChanged()
            }
            if txRing != nil { serviceTransmit() }
            if rxRing != nil { serviceReceive() }
        }
        disconnect()
        watcher.close()
    }

    // MARK: Handshake

    private func publish(_ s: XenBusState) {
        state = s
        device.setBackendState(s)
    }

    /// Follows the frontend through the handshake (`XenBusStep`).
    private func frontendStateChanged() {
        switch XenBusStep.next(frontend: device.frontendState, backend: state, connected: txRing != nil) {
        case .connect: connect()
        case .disconnect(let then):
            disconnect()
            if let then { publish(then) }
        case .nothing: break
        }
    }

    private func connect() {
        func refuse(_ why: String) {
            report("vif \(tap.name): frontend refused: \(why)")
            publish(.closing)
        }
        if let n = device.frontend("multi-queue-num-queues"), n != "1" { return refuse("\(n) queues were not offered") }
        guard device.frontend("request-rx-copy") == "1" else { return refuse("the frontend does not use the copying receive path") }
        guard let tx = device.frontend("tx-ring-ref").flatMap({ UInt32($0) }),
              let rx = device.frontend("rx-ring-ref").flatMap({ UInt32($0) }) else { return refuse("no tx-ring-ref or rx-ring-ref") }
        guard let port = device.frontend("event-channel").flatMap({ Int($0) }) else { return refuse("no event-channel") }
        guard let txPage = domain.claimGrant(tx, writable: true) else { return refuse("tx-ring-ref \(tx) is not granted") }
        guard let rxPage = domain.claimGrant(rx, writable: true) else {
            domain.releaseGrant(tx)
            return refuse("rx-ring-ref \(rx) is not granted")
        }
        guard domain.bindBackend(port: port, device: index) else {
            domain.releaseGrant(tx); domain.releaseGrant(rx)
            return refuse("event channel \(port) is not an unbound port for domain 0")
        }
        txRing = txPage; rxRing = rxPage; txRef = tx; rxRef = rx; self.port = port
        txConsumed = 0; txProduced = 0; rxConsumed = 0; rxProduced = 0
        publish(.connected)
        serviceTransmit()
    }

    private func disconnect() {
        guard txRing != nil else { return }
        domain.unbindBackend(port: port, device: index)
        domain.releaseGrant(txRef); domain.releaseGrant(rxRef)
        txRing = nil; rxRing = nil
    }

    private func report(_ line: String) {
        let text = "xeno: " + line + "\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
    }

    private func corrupt(_ which: String, produced: UInt32, consumed: UInt32) {
        report("vif \(tap.name): the frontend's \(which) ring is corrupt (request index \(produced), \(consumed) consumed): disconnecting")
        disconnect()
        publish(.closing)
    }

    // MARK: Rings

    /// Both rings: 64-byte header, then 256 entries (12 bytes on the transmit
    /// ring, 8 on the receive ring).
    static let ringEntries: UInt32 = 256, txEntryBytes = 12, rxEntryBytes = 8, entriesOffset = 64
    /// Xen's limit on slots per transmitted packet (XEN_NETBK_LEGACY_SLOTS_MAX).
    static let maxSlots = 18
    /// NETTXF_* and NETIF_RSP_*.
    static let csumBlank: UInt16 = 1, moreData: UInt16 = 4, extraInfo: UInt16 = 8
    static let okay: Int16 = 0, error: Int16 = -1, null: Int16 = 1

    /// Publishes responses up to `produced` and notifies if the frontend asked.
    private func push(_ ring: UnsafeMutableRawPointer, from start: UInt32, to produced: UInt32) {
        guard produced != start else { return }
        ckvm_store_release32(ring + 8, produced)
        ckvm_fence()
        let event = (ring + 12).load(as: UInt32.self)
        if produced &- event < produced &- start { domain.notifyFrontend(port: port, device: index) }
    }

    private func txSlot(_ i: UInt32) -> UnsafeMutableRawPointer {
        txRing! + Self.entriesOffset + Int(i % Self.ringEntries) * Self.txEntryBytes
    }

    private func respondTransmit(id: UInt16, status: Int16) {
        let out = txSlot(txProduced)
        out.storeBytes(of: id, as: UInt16.self)
        out.storeBytes(of: status, toByteOffset: 2, as: Int16.self)
        txProduced &+= 1
    }

    /// Guest → TAP: gathers each packet's slots into `frame`, completes a
    /// checksum the guest left to us, writes the frame to the TAP.
    private func serviceTransmit() {
        var more = true
        while more, let ring = txRing {
            let produced = ckvm_load_acquire32(ring)
            if produced &- txConsumed > Self.ringEntries { return corrupt("transmit", produced: produced, consumed: txConsumed) }
            let start = txProduced
            while txConsumed != produced {
                transmitOne()
                if txRing == nil { return }
            }
            push(ring, from: start, to: txProduced)
            (ring + 4).storeBytes(of: txConsumed &+ 1, as: UInt32.self)      // req_event
            ckvm_fence()
            more = ckvm_load_acquire32(ring) != txConsumed
        }
    }

    /// One transmit ring slot as the guest wrote it.
    private struct TransmitSlot {
        var gref: UInt32 = 0, offset = 0, size = 0, id: UInt16 = 0, isExtra = false
    }

    /// One packet: its first slot, any extra-info slots, then its fragments.
    /// A packet that is malformed in its own bytes or grants is dropped and
    /// answered with errors; one that breaks the ring's framing (more slots
    /// than Xen allows, or slots not yet published) is a fatal frontend error.
    private func transmitOne() {
        withUnsafeTemporaryAllocation(of: TransmitSlot.self, capacity: Self.maxSlots) { slots in
            var count = 0
            var flags: UInt16 = 0, firstFlags: UInt16 = 0
            let produced = ckvm_load_acquire32(txRing!)
            func take() -> UnsafeMutableRawPointer? {
                guard txConsumed != produced, count < Self.maxSlots else { return nil }
                defer { txConsumed &+= 1 }
                return txSlot(txConsumed)
            }
            repeat {
                guard let s = take() else { return corrupt("transmit", produced: produced, consumed: txConsumed) }
                flags = s.load(fromByteOffset: 6, as: UInt16.self)
                slots[count] = TransmitSlot(gref: s.load(as: UInt32.self), offset: Int(s.load(fromByteOffset: 4, as: UInt16.self)),
                                            size: Int(s.load(fromByteOffset: 10, as: UInt16.self)),
                                            id: s.load(fromByteOffset: 8, as: UInt16.self))
                count += 1
                if count == 1 {
                    firstFlags = flags
                    var extraMore = flags & Self.extraInfo != 0
                    while extraMore {      // GSO and the like (never offered): skipped
                        guard let e = take() else { return corrupt("transmit", produced: produced, consumed: txConsumed) }
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
                      let page = domain.claimGrant(slots[i].gref, writable: false) else { good = false; break }
                (frame.baseAddress! + at).copyMemory(from: page + offset, byteCount: length)
                domain.releaseGrant(slots[i].gref)
                at += length
            }
            if good && at >= 14 {
                let packet = UnsafeMutableRawBufferPointer(rebasing: frame[0..<at])
                if firstFlags & Self.csumBlank != 0 { Checksum.complete(packet) }
                if tap.send(UnsafeRawBufferPointer(packet)) {
                    packetsSent.add(1, ordering: .relaxed); bytesSent.add(at, ordering: .relaxed)
                } else {
                    droppedPackets.add(1, ordering: .relaxed)
                }
            } else {
                good = false
                droppedPackets.add(1, ordering: .relaxed)
            }
            for i in 0..<count {
                respondTransmit(id: slots[i].id, status: slots[i].isExtra ? Self.null : good ? Self.okay : Self.error)
            }
        }
    }

    /// Whether the guest has posted a receive buffer we have not used.
    private var rxRequestsWaiting: Bool {
        guard let ring = rxRing else { return false }
        return ckvm_load_acquire32(ring) != rxConsumed
    }

    /// TAP → guest: one frame per posted buffer, copied to offset 0 of its page.
    private func serviceReceive() {
        guard let ring = rxRing else { return }
        let start = rxProduced
        while true {
            let produced = ckvm_load_acquire32(ring)
            if produced &- rxConsumed > Self.ringEntries { return corrupt("receive", produced: produced, consumed: rxConsumed) }
            if produced == rxConsumed {
                // Ask to be told when buffers come, then look once more.
                (ring + 4).storeBytes(of: rxConsumed &+ 1, as: UInt32.self)
                ckvm_fence()
                if ckvm_load_acquire32(ring) == rxConsumed { break }
                continue
            }
            guard let n = tap.receive(into: frame) else { break }        // nothing on the TAP
            let slot = ring + Self.entriesOffset + Int(rxConsumed % Self.ringEntries) * Self.rxEntryBytes
            let id = slot.load(as: UInt16.self)
            let gref = slot.load(fromByteOffset: 4, as: UInt32.self)
            rxConsumed &+= 1
            var status = Self.error
            if n <= 4096, let page = domain.claimGrant(gref, writable: true) {
                page.copyMemory(from: frame.baseAddress!, byteCount: n)
                domain.releaseGrant(gref)
                status = Int16(n)
                packetsReceived.add(1, ordering: .relaxed); bytesReceived.add(n, ordering: .relaxed)
            } else {
                droppedPackets.add(1, ordering: .relaxed)
            }
            let out = ring + Self.entriesOffset + Int(rxProduced % Self.ringEntries) * Self.rxEntryBytes
            out.storeBytes(of: id, as: UInt16.self)
            out.storeBytes(of: UInt16(0), toByteOffset: 2, as: UInt16.self)     // offset
            out.storeBytes(of: UInt16(0), toByteOffset: 4, as: UInt16.self)     // flags
            out.storeBytes(of: status, toByteOffset: 6, as: Int16.self)
            rxProduced &+= 1
            if rxProduced &- start >= 64 { push(ring, from: start, to: rxProduced); return serviceReceive() }
        }
        push(ring, from: start, to: rxProduced)
    }
}

/// Completes the Internet checksum of a frame whose TCP or UDP checksum the
/// guest left partial (the pseudo-header sum in the field, NETTXF_csum_blank).
enum Checksum {
    static func complete(_ frame: UnsafeMutableRawBufferPointer) {
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
