import CKVM
import Glibc
import HostNetwork
import Synchronization
import XenPV
import XenRings
import XenStore

/// netback: connects a PV guest's netfront to a TAP device, over the two
/// shared rings of Xen's `io/netif.h` (copying receive path, one queue, one
/// event channel). Offered features are the minimum: no scatter-gather or
/// GSO from the backend, so every received frame fits one granted page.
///
/// As in blkback, the rings are handled in module XenRings (`NetRings`,
/// fuzzed by scripts/fuzz-xen-rings.sh): each ring entry is copied out
/// before it is checked, every grant goes through
/// `PVDomain.claim(grant:writable:)`, a bad packet is dropped and answered
/// with an error, and a corrupt ring disconnects the device.
public final class NetBackend: PVDeviceBackend, @unchecked Sendable {
    let domain: PVDomain
    let tap: TapDevice
    public let mac: MACAddress
    let device: XenBusDevice
    let wake: WakeSignal
    private var index = 0
    private var watcher: XenStoreConnection!
    private let stopping = Atomic<Bool>(false)
    private let handshake: XenBusHandshake

    /// The connection, while there is one.
    private var rings: NetRings?
    private var txRef: UInt32 = 0, rxRef: UInt32 = 0
    private var port = 0

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
        handshake = XenBusHandshake(device: device)
        index = domain.register(self)
        let wake = self.wake
        watcher = XenStoreConnection(tree: domain.store, domainID: 0, onOutput: { wake.signal() })
        watcher.handle(XenStoreMessage(type: .watch, strings: [device.frontendStatePath, "frontend-state"]))
        handshake.publish(.initWait)
    }

    deinit { frame.deallocate() }

    public func frontendNotified() { wake.signal() }

    public func start() {
        startBackendThread { self.threadMain() }
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
            let watchTap = rings?.receiveBuffersPosted ?? false
            let n = poll(&fds, watchTap ? 2 : 1, -1)
            if n < 0 { if errno == EINTR { continue }; break }
            if fds[0].revents != 0 { wake.drain() }
            if watcher.hasOutput {
                _ = watcher.drainMessages()
                frontendStateChanged()
            }
            if rings != nil { serviceTransmit() }
            if rings != nil { serviceReceive() }
        }
        disconnect()
        watcher.close()
    }

    // MARK: Handshake

    /// Follows the frontend through the handshake (`XenBusStep`).
    private func frontendStateChanged() {
        let connected = rings != nil
        handshake.follow({ XenBusStep.next(frontend: $0, backend: $1, connected: connected) },
                         connect: connect, disconnect: disconnect)
    }

    private func connect() {
        func refuse(_ why: String) {
            report("vif \(tap.name): frontend refused: \(why)")
            handshake.publish(.closing)
        }
        if let n = device.frontend("multi-queue-num-queues"), n != "1" { return refuse("\(n) queues were not offered") }
        guard device.frontend("request-rx-copy") == "1" else { return refuse("the frontend does not use the copying receive path") }
        guard let tx = device.frontend("tx-ring-ref").flatMap({ UInt32($0) }),
              let rx = device.frontend("rx-ring-ref").flatMap({ UInt32($0) }) else { return refuse("no tx-ring-ref or rx-ring-ref") }
        guard let port = device.frontend("event-channel").flatMap({ Int($0) }) else { return refuse("no event-channel") }
        guard let txPage = domain.claimGrant(tx, writable: true) else { return refuse("tx-ring-ref \(tx) is not granted") }
        guard let rxPage = domain.claimGrant(rx, writable: true) else {
            domain.releaseGrant(tx, writable: true)
            return refuse("rx-ring-ref \(rx) is not granted")
        }
        guard domain.bindBackend(port: port, device: index) else {
            domain.releaseGrant(tx, writable: true); domain.releaseGrant(rx, writable: true)
            return refuse("event channel \(port) is not an unbound port for domain 0")
        }
        rings = NetRings(tx: txPage, rx: rxPage); txRef = tx; rxRef = rx; self.port = port
        handshake.publish(.connected)
        serviceTransmit()
    }

    private func disconnect() {
        guard rings != nil else { return }
        domain.unbindBackend(port: port, device: index)
        domain.releaseGrant(txRef, writable: true); domain.releaseGrant(rxRef, writable: true)
        rings = nil
    }

    private func report(_ line: String) {
        let text = "xeno: " + line + "\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
    }

    private func corrupt(_ corruption: RingCorruption) {
        report("vif \(tap.name): \(corruption): disconnecting")
        disconnect()
        handshake.publish(.closing)
    }

    private func count(_ c: NetCounters) {
        if c.packetsSent != 0 { packetsSent.add(c.packetsSent, ordering: .relaxed); bytesSent.add(c.bytesSent, ordering: .relaxed) }
        if c.packetsReceived != 0 {
            packetsReceived.add(c.packetsReceived, ordering: .relaxed); bytesReceived.add(c.bytesReceived, ordering: .relaxed)
        }
        if c.droppedPackets != 0 { droppedPackets.add(c.droppedPackets, ordering: .relaxed) }
    }

    // MARK: Rings

    /// Guest → TAP (`NetRings.serviceTransmit`).
    private func serviceTransmit() {
        guard var r = rings else { return }
        var counters = NetCounters()
        let corruption = r.serviceTransmit(grants: domain, frame: frame, counters: &counters,
                                           send: { tap.send($0) },
                                           notify: { domain.notifyFrontend(port: port, device: index) })
        rings = r
        count(counters)
        if let corruption { corrupt(corruption) }
    }

    /// TAP → guest (`NetRings.serviceReceive`): one frame per posted buffer.
    private func serviceReceive() {
        guard var r = rings else { return }
        var counters = NetCounters()
        let corruption = r.serviceReceive(grants: domain, frame: frame, counters: &counters,
                                          receive: { tap.receive(into: $0) },
                                          notify: { domain.notifyFrontend(port: port, device: index) })
        rings = r
        count(counters)
        if let corruption { corrupt(corruption) }
    }
}
