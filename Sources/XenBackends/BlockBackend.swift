import BlockStorage
import CKVM
import Glibc
import Synchronization
import XenPV
import XenRings
import XenStore

/// blkback: serves a PV guest's blkfront from a flat-file disk, over the
/// shared ring and grants of Xen's `io/blkif.h` (x86-64 layout, one ring page).
///
/// Everything on the ring is the guest's and may change under us: the ring
/// and the requests are handled by `BlockRing` and `BlockRequests` (module
/// XenRings, fuzzed by scripts/fuzz-xen-rings.sh), every grant is checked by
/// `PVDomain.claim(grant:writable:)`, and a bad request fails alone with an
/// error status. A ring whose producer index runs ahead by more than the
/// ring size is corrupt: the backend disconnects, as Xen's does.
///
/// One thread per disk does the xenstore handshake and the I/O, woken by the
/// frontend's event channel or a xenstore watch.
public final class BlockBackend: PVDeviceBackend, @unchecked Sendable {
    /// Linux's device number for xvdX (major 202, 16 minors per disk).
    public static func deviceNumber(disk index: Int) -> Int { 202 << 8 | index << 4 }

    let domain: PVDomain
    let disk: FlatFileDisk
    let device: XenBusDevice
    let wake: WakeSignal
    private var index = 0
    private var watcher: XenStoreConnection!
    private let stopping = Atomic<Bool>(false)

    /// The connection to the frontend, while there is one.
    private var ring: BlockRing?
    private var ringRef: UInt32 = 0
    private var port = 0

    /// Counters for the toolstack's metrics (read from any thread).
    public let readRequests = Atomic<Int>(0), writeRequests = Atomic<Int>(0)
    public let bytesRead = Atomic<Int>(0), bytesWritten = Atomic<Int>(0)
    public let failedRequests = Atomic<Int>(0)

    /// Sets up xvda, xvdb, ... (`diskIndex` 0, 1, ...) for `domain`; the
    /// frontend finds it when the guest boots.
    public init(domain: PVDomain, disk: FlatFileDisk, diskIndex: Int) throws {
        self.domain = domain
        self.disk = disk
        wake = try WakeSignal()
        let vdev = Self.deviceNumber(disk: diskIndex)
        var features: [(String, String)] = [
            ("type", "file"), ("params", disk.path), ("mode", disk.isReadOnly ? "r" : "w"),
            ("feature-flush-cache", "1"), ("serial", disk.serial),
        ]
        if !disk.isReadOnly {
            features += [("feature-discard", "1"), ("discard-granularity", "4096"),
                         ("discard-alignment", "0"), ("discard-secure", "0")]
        }
        device = try XenBusDevice(store: domain.store, frontendDomain: PVDomain.domainID, kind: "vbd", deviceID: vdev,
                                  frontendNodes: [("virtual-device", String(vdev)), ("device-type", "disk")],
                                  backendNodes: features)
        index = domain.register(self)
        let wake = self.wake
        watcher = XenStoreConnection(tree: domain.store, domainID: 0, onOutput: { wake.signal() })
        watcher.handle(XenStoreMessage(type: .watch, strings: [device.frontendStatePath, "frontend-state"]))
        device.setBackendState(.initWait)   // features are all written: the frontend may begin
    }

    public func frontendNotified() { wake.signal() }

    /// Starts the backend's thread.
    public func start() {
        startBackendThread { self.threadMain() }
    }

    /// Ends the thread (the domain is gone).
    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
    }

    private func threadMain() {
        while !stopping.load(ordering: .acquiring) {
            wake.wait()
            if watcher.hasOutput {
                _ = watcher.drainMessages()     // replies and events: the state node says what changed
                frontendStateChanged()
            }
            if ring != nil { serviceRing() }
        }
        disconnect()
        watcher.close()
    }

    // MARK: Handshake

    /// The state this backend last published.
    private var state = XenBusState.initWait

    private func publish(_ s: XenBusState) {
        state = s
        device.setBackendState(s)
    }

    /// Follows the frontend through the handshake (`XenBusStep`).
    private func frontendStateChanged() {
        switch XenBusStep.next(frontend: device.frontendState, backend: state, connected: ring != nil) {
        case .connect: connect()
        case .disconnect(let then):
            disconnect()
            if let then { publish(then) }
        case .nothing: break
        }
    }

    private func connect() {
        func refuse(_ why: String) {
            report("disk \(disk.path): frontend refused: \(why)")
            publish(.closing)
        }
        if let p = device.frontend("protocol"), p != "x86_64-abi" { return refuse("ring protocol \(p) is not x86_64-abi") }
        if let order = device.frontend("ring-page-order"), order != "0" { return refuse("ring-page-order \(order) was not offered") }
        guard let refText = device.frontend("ring-ref"), let ref = UInt32(refText) else { return refuse("no ring-ref") }
        guard let portText = device.frontend("event-channel"), let port = Int(portText) else { return refuse("no event-channel") }
        guard let page = domain.claimGrant(ref, writable: true) else { return refuse("ring-ref \(ref) is not a page granted to the backend") }
        guard domain.bindBackend(port: port, device: index) else {
            domain.releaseGrant(ref, writable: true)
            return refuse("event channel \(port) is not an unbound port for domain 0")
        }
        ring = BlockRing(page: page); ringRef = ref; self.port = port
        device.writeBackend("sectors", String(disk.sectors))
        device.writeBackend("info", disk.isReadOnly ? "4" : "0")         // VDISK_READONLY
        device.writeBackend("sector-size", "512")
        device.writeBackend("physical-sector-size", "512")
        publish(.connected)
        serviceRing()       // requests queued before we connected
    }

    private func disconnect() {
        guard ring != nil else { return }
        domain.unbindBackend(port: port, device: index)
        domain.releaseGrant(ringRef, writable: true)
        ring = nil
    }

    private func report(_ line: String) {
        let text = "xeno: " + line + "\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
    }

    // MARK: The ring

    private func serviceRing() {
        guard var r = ring else { return }
        let corrupt = r.service(perform: { self.perform($0) }, notify: { domain.notifyFrontend(port: port, device: index) })
        ring = r
        if let corrupt {
            report("disk \(disk.path): \(corrupt): disconnecting")
            disconnect()
            publish(.closing)
        }
    }

    private func perform(_ request: BlockRequest) -> Int16 {
        var counters = BlockCounters()
        let status = BlockRequests.perform(request, grants: domain, store: disk, counters: &counters)
        if counters.readRequests != 0 {
            readRequests.add(counters.readRequests, ordering: .relaxed)
            bytesRead.add(counters.bytesRead, ordering: .relaxed)
        }
        if counters.writeRequests != 0 {
            writeRequests.add(counters.writeRequests, ordering: .relaxed)
            bytesWritten.add(counters.bytesWritten, ordering: .relaxed)
        }
        if counters.failedRequests != 0 { failedRequests.add(counters.failedRequests, ordering: .relaxed) }
        return status
    }
}
