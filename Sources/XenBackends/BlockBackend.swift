import BlockStorage
import CKVM
import Glibc
import Synchronization
import XenPV
import XenRings
import XenStore

/// blkback: serves a PV guest's blkfront from a flat-file disk, over the
/// shared rings and grants of Xen's `io/blkif.h` (x86-64 layout, one page
/// per ring).
///
/// Everything on a ring is the guest's and may change under us: the rings
/// and the requests are handled by `BlockRing` and `BlockRequests` (module
/// XenRings, fuzzed by scripts/fuzz-xen-rings.sh), every grant is checked by
/// `PVDomain.claim(grant:writable:)`, and a bad request fails alone with an
/// error status. A ring whose producer index runs ahead by more than the
/// ring size is corrupt: the backend disconnects, as Xen's does.
///
/// The backend offers what makes a guest's I/O cheap where every
/// notification is a VM exit: indirect requests (`feature-max-indirect-
/// segments`, up to 1 MiB per ring slot, where a plain request carries at
/// most 44 KiB) and one ring per guest vCPU (`multi-queue-max-queues`), each
/// served by a thread of its own. With more than one ring Linux's blk-mq
/// also runs the disk without an I/O scheduler, whose deferred dispatch
/// otherwise costs the guest two context switches per request.
///
/// One thread per disk follows the xenstore handshake; one more per ring
/// does the I/O, woken by that ring's event channel.
public final class BlockBackend: @unchecked Sendable {
    /// Linux's device number for xvdX (major 202, 16 minors per disk).
    public static func deviceNumber(disk index: Int) -> Int { 202 << 8 | index << 4 }
    /// The most rings a frontend may set up (Linux's blkfront asks for at
    /// most 4, and no more than its vCPUs).
    public static let maxQueues = 4

    let domain: PVDomain
    let disk: FlatFileDisk
    let device: XenBusDevice
    private let handshake: XenBusHandshake
    let wake: WakeSignal
    private var watcher: XenStoreConnection!
    private let stopping = Atomic<Bool>(false)
    /// The rings' servers, made once: a frontend that reconnects (a guest
    /// reboot) gets the same ones back.
    private let queues: [BlockQueue]
    /// How many of `queues` the frontend has connected (0: not connected).
    private var connectedQueues = 0
    /// Set by a ring's thread that found its ring corrupt.
    private let ringFailed = SharedFlag()

    /// Counters for the toolstack's metrics (read from any thread).
    public let counters = BlockCountersShared()

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
            ("feature-max-indirect-segments", String(BlockRing.maxIndirectSegments)),
            ("multi-queue-max-queues", String(Self.maxQueues)),
        ]
        if !disk.isReadOnly {
            features += [("feature-discard", "1"), ("discard-granularity", "4096"),
                         ("discard-alignment", "0"), ("discard-secure", "0")]
        }
        device = try XenBusDevice(store: domain.store, frontendDomain: PVDomain.domainID, kind: "vbd", deviceID: vdev,
                                  frontendNodes: [("virtual-device", String(vdev)), ("device-type", "disk")],
                                  backendNodes: features)
        handshake = XenBusHandshake(device: device)
        let counters = counters, wake = self.wake, ringFailed = ringFailed
        queues = try (0..<Self.maxQueues).map { _ in
            try BlockQueue(domain: domain, disk: disk, counters: counters, failed: {
                ringFailed.value.store(true, ordering: .releasing)
                wake.signal()
            })
        }
        watcher = XenStoreConnection(tree: domain.store, domainID: 0, onOutput: { wake.signal() })
        watcher.handle(XenStoreMessage(type: .watch, strings: [device.frontendStatePath, "frontend-state"]))
        handshake.publish(.initWait)   // features are all written: the frontend may begin
    }

    /// Starts the handshake's thread; each ring's thread starts when the
    /// frontend first connects that ring (most guests use one or two).
    public func start() {
        startBackendThread { self.threadMain() }
    }

    /// Ends the threads (the domain is gone).
    public func stop() {
        stopping.store(true, ordering: .releasing)
        for q in queues { q.stop() }
        wake.signal()
    }

    private func threadMain() {
        while !stopping.load(ordering: .acquiring) {
            wake.wait()
            if watcher.hasOutput {
                _ = watcher.drainMessages()     // replies and events: the state node says what changed
                frontendStateChanged()
            }
            if ringFailed.value.exchange(false, ordering: .acquiringAndReleasing) && connectedQueues != 0 {
                disconnect()
                handshake.publish(.closing)
            }
        }
        disconnect()
        watcher.close()
    }

    // MARK: Handshake

    /// Follows the frontend through the handshake (`XenBusStep`).
    private func frontendStateChanged() {
        let connected = connectedQueues != 0
        handshake.follow({ XenBusStep.next(frontend: $0, backend: $1, connected: connected) },
                         connect: connect, disconnect: disconnect)
    }

    /// Connects every ring the frontend set up: one at the device's own
    /// nodes, or several under queue-N/ when it asked for more than one.
    private func connect() {
        func refuse(_ why: String) {
            reportLine("disk \(disk.path): frontend refused: \(why)")
            disconnect()
            handshake.publish(.closing)
        }
        if let p = device.frontend("protocol"), p != "x86_64-abi" { return refuse("ring protocol \(p) is not x86_64-abi") }
        if let order = device.frontend("ring-page-order"), order != "0" { return refuse("ring-page-order \(order) was not offered") }
        var count = 1
        if let text = device.frontend("multi-queue-num-queues") {
            guard let n = Int(text), n >= 1, n <= Self.maxQueues else {
                return refuse("multi-queue-num-queues \(text): 1 to \(Self.maxQueues) were offered")
            }
            count = n
        }
        for i in 0..<count {
            let prefix = count == 1 ? "" : "queue-\(i)/"
            guard let refText = device.frontend(prefix + "ring-ref"), let ref = UInt32(refText) else { return refuse("no \(prefix)ring-ref") }
            guard let portText = device.frontend(prefix + "event-channel"), let port = Int(portText) else {
                return refuse("no \(prefix)event-channel")
            }
            if let why = queues[i].connect(ringRef: ref, port: port) { return refuse(prefix + why) }
            queues[i].startOnce()
            connectedQueues = i + 1
        }
        device.writeBackend("sectors", String(disk.sectors))
        device.writeBackend("info", disk.isReadOnly ? "4" : "0")         // VDISK_READONLY
        device.writeBackend("sector-size", "512")
        device.writeBackend("physical-sector-size", "512")
        handshake.publish(.connected)
        for q in queues.prefix(count) { q.wake.signal() }    // requests queued before we connected
    }

    private func disconnect() {
        for q in queues.prefix(connectedQueues) { q.disconnect() }
        connectedQueues = 0
    }
}

/// Writes one diagnostic line to the VMM's stderr.
private func reportLine(_ line: String) {
    let text = "xeno: " + line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}

/// A flag two threads share.
final class SharedFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// The metrics of one disk, summed over its rings (read from any thread).
public final class BlockCountersShared: Sendable {
    public let readRequests = Atomic<Int>(0), writeRequests = Atomic<Int>(0)
    public let bytesRead = Atomic<Int>(0), bytesWritten = Atomic<Int>(0)
    public let failedRequests = Atomic<Int>(0)

    func add(_ c: BlockCounters) {
        if c.readRequests != 0 {
            readRequests.add(c.readRequests, ordering: .relaxed)
            bytesRead.add(c.bytesRead, ordering: .relaxed)
        }
        if c.writeRequests != 0 {
            writeRequests.add(c.writeRequests, ordering: .relaxed)
            bytesWritten.add(c.bytesWritten, ordering: .relaxed)
        }
        if c.failedRequests != 0 { failedRequests.add(c.failedRequests, ordering: .relaxed) }
    }
}

/// One blkif ring of a disk and the thread that serves it. The handshake
/// thread connects and disconnects it; the ring itself is only touched
/// under `ring`'s lock, by whichever of the two holds it.
final class BlockQueue: PVDeviceBackend, @unchecked Sendable {
    let domain: PVDomain
    let disk: FlatFileDisk
    let counters: BlockCountersShared
    let wake: WakeSignal
    /// Tells the handshake thread the ring was corrupt and is closed.
    let failed: @Sendable () -> Void
    private let stopping = Atomic<Bool>(false)
    /// This ring's index among the domain's device backends (its event
    /// channel names it).
    private var index = 0

    /// The ring page is the guest's memory, shared with every thread by nature.
    private struct Connection: @unchecked Sendable {
        var ring: BlockRing
        let ringRef: UInt32
        let port: Int
    }
    private let connection = Mutex<Connection?>(nil)
    private var started = false

    init(domain: PVDomain, disk: FlatFileDisk, counters: BlockCountersShared, failed: @escaping @Sendable () -> Void) throws {
        self.domain = domain
        self.disk = disk
        self.counters = counters
        self.failed = failed
        wake = try WakeSignal()
        index = domain.register(self)
    }

    func frontendNotified() { wake.signal() }

    /// Starts the ring's thread the first time (called by the handshake thread only).
    func startOnce() {
        guard !started else { return }
        started = true
        startBackendThread { self.threadMain() }
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
    }

    /// Takes the ring page and binds the event channel; says why not.
    func connect(ringRef ref: UInt32, port: Int) -> String? {
        guard let page = domain.claimGrant(ref, writable: true) else { return "ring-ref \(ref) is not a page granted to the backend" }
        guard domain.bindBackend(port: port, device: index) else {
            domain.releaseGrant(ref, writable: true)
            return "event channel \(port) is not an unbound port for domain 0"
        }
        connection.withLock { $0 = Connection(ring: BlockRing(page: page), ringRef: ref, port: port) }
        return nil
    }

    func disconnect() {
        connection.withLock { c in
            guard let conn = c else { return }
            domain.unbindBackend(port: conn.port, device: index)
            domain.releaseGrant(conn.ringRef, writable: true)
            c = nil
        }
    }

    private func threadMain() {
        let batch = BlockBatch()      // scratch for serving the ring, this thread's alone
        while !stopping.load(ordering: .acquiring) {
            wake.wait()
            serviceRing(batch)
        }
        disconnect()
    }

    private func serviceRing(_ batch: BlockBatch) {
        let corrupt: RingCorruption? = connection.withLock { c in
            guard var conn = c else { return nil }
            let domain = domain, index = index, port = conn.port, disk = disk
            var counters = BlockCounters()
            let found = conn.ring.service(batch: batch, perform: { n in
                BlockRequests.perform(batch: batch, count: n, grants: domain, store: disk, counters: &counters)
            }, notify: { domain.notifyFrontend(port: port, device: index) })
            self.counters.add(counters)
            c = conn
            return found
        }
        if let corrupt {
            // The handshake thread owns the device's state: it closes the
            // device, and the frontend sees it go away.
            reportLine("disk \(disk.path): \(corrupt): disconnecting")
            disconnect()
            failed()
        }
    }
}
