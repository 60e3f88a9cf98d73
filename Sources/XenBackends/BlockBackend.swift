import BlockStorage
import CKVM
import Glibc
import Synchronization
import XenPV
import XenStore

/// blkback: serves a PV guest's blkfront from a flat-file disk, over the
/// shared ring and grants of Xen's `io/blkif.h` (x86-64 layout, one ring page).
///
/// Everything on the ring is the guest's and may change under us: each
/// request is copied out before it is checked, every grant is checked by
/// `PVDomain.claimGrant`, and a bad request fails alone with an error
/// status. A ring whose producer index runs ahead by more than the ring size
/// is corrupt: the backend disconnects, as Xen's does.
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
    private var ring: UnsafeMutableRawPointer?
    private var ringRef: UInt32 = 0
    private var port = 0
    private var requestsConsumed: UInt32 = 0
    private var responsesProduced: UInt32 = 0

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
        var thread = pthread_t()
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { arg in
            let backend = Unmanaged<BlockBackend>.fromOpaque(arg!).takeRetainedValue()
            backend.threadMain()
            return nil
        }, box)
        pthread_detach(thread)
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
            domain.releaseGrant(ref)
            return refuse("event channel \(port) is not an unbound port for domain 0")
        }
        ring = page; ringRef = ref; self.port = port
        requestsConsumed = 0; responsesProduced = 0
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
        domain.releaseGrant(ringRef)
        ring = nil
    }

    private func report(_ line: String) {
        let text = "xeno: " + line + "\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
    }

    // MARK: The ring

    /// `blkif_sring`: four indexes, 48 bytes of padding, then the entries.
    static let ringEntries: UInt32 = 32, entryBytes = 112, entriesOffset = 64
    static let maxSegments = 11

    private func serviceRing() {
        guard let ring else { return }
        let reqProd = ring, reqEvent = ring + 4, rspProd = ring + 8, rspEvent = ring + 12
        var more = true
        while more {
            let produced = ckvm_load_acquire32(reqProd)
            if produced &- requestsConsumed > Self.ringEntries {
                report("disk \(disk.path): the frontend's ring is corrupt (request index \(produced), \(requestsConsumed) consumed): disconnecting")
                disconnect()
                publish(.closing)
                return
            }
            let start = responsesProduced
            while requestsConsumed != produced {
                let slot = ring + Self.entriesOffset + Int(requestsConsumed % Self.ringEntries) * Self.entryBytes
                requestsConsumed &+= 1
                var request = BlockRequest()
                withUnsafeMutableBytes(of: &request.bytes) { $0.copyMemory(from: UnsafeRawBufferPointer(start: slot, count: Self.entryBytes)) }
                let status = perform(request)
                // The response overwrites its own slot (ring slots are shared by request and response).
                let out = ring + Self.entriesOffset + Int(responsesProduced % Self.ringEntries) * Self.entryBytes
                out.storeBytes(of: request.id, as: UInt64.self)
                out.storeBytes(of: request.operation, toByteOffset: 8, as: UInt8.self)
                out.storeBytes(of: status, toByteOffset: 10, as: Int16.self)
                responsesProduced &+= 1
            }
            if responsesProduced != start {
                ckvm_store_release32(rspProd, responsesProduced)
                ckvm_fence()
                let event = rspEvent.load(as: UInt32.self)
                if responsesProduced &- event < responsesProduced &- start {
                    domain.notifyFrontend(port: port, device: index)
                }
            }
            // Ask for an event at the next request, then look once more
            // (RING_FINAL_CHECK_FOR_REQUESTS): a request that raced in is
            // taken now rather than left until the next notification.
            reqEvent.storeBytes(of: requestsConsumed &+ 1, as: UInt32.self)
            ckvm_fence()
            more = ckvm_load_acquire32(reqProd) != requestsConsumed
        }
    }

    /// BLKIF_RSP_*.
    static let okay: Int16 = 0, error: Int16 = -1, notSupported: Int16 = -2

    private func perform(_ request: BlockRequest) -> Int16 {
        let status: Int16
        switch request.operation {
        case 0: status = transfer(request, toGuest: true)
        case 1: status = transfer(request, toGuest: false)
        case 3:     // flush the disk cache; a write may ride along (a pre-flushed write)
            if case .failure = disk.flush() { status = Self.error }
            else { status = request.segmentCount == 0 ? Self.okay : transfer(request, toGuest: false) }
        case 5:     // discard
            let sectors = request.discardSectors
            let (bytes, overflow) = sectors.multipliedReportingOverflow(by: FlatFileDisk.sectorSize)
            let (offset, overflow2) = request.sector.multipliedReportingOverflow(by: FlatFileDisk.sectorSize)
            if overflow || overflow2 { status = Self.error }
            else if case .failure = disk.discard(offset: offset, count: bytes) { status = Self.error }
            else { status = Self.okay }
        default:    // barriers and indirect segments were not offered
            status = Self.notSupported
        }
        if status == Self.error { failedRequests.add(1, ordering: .relaxed) }
        return status
    }

    /// A read (`toGuest`) or write: up to 11 granted pages, each a run of
    /// 512-byte sectors inside its page, contiguous on the disk. All grants
    /// are claimed first, then one vectored system call moves the data.
    private func transfer(_ request: BlockRequest, toGuest: Bool) -> Int16 {
        let count = request.segmentCount
        guard count >= 1 && count <= Self.maxSegments else { return Self.error }
        if !toGuest && disk.isReadOnly { return Self.error }
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: Self.maxSegments) { vectors -> Int16 in
            var claimed = 0
            defer { for i in 0..<claimed { domain.releaseGrant(request.segment(i).grant) } }
            var total = 0
            for i in 0..<count {
                let s = request.segment(i)
                guard s.first <= s.last && s.last < 8,
                      let page = domain.claimGrant(s.grant, writable: toGuest) else { return Self.error }
                claimed += 1
                let length = (Int(s.last) - Int(s.first) + 1) * 512
                vectors[i] = iovec(iov_base: page + Int(s.first) * 512, iov_len: length)
                total += length
            }
            let (offset, overflow) = request.sector.multipliedReportingOverflow(by: FlatFileDisk.sectorSize)
            guard !overflow, disk.contains(offset: offset, count: UInt64(total)) else { return Self.error }
            let result = toGuest ? disk.read(vectors: UnsafeBufferPointer(rebasing: vectors[0..<count]), at: offset)
                                 : disk.write(vectors: UnsafeBufferPointer(rebasing: vectors[0..<count]), at: offset)
            guard case .success = result else { return Self.error }
            if toGuest { readRequests.add(1, ordering: .relaxed); bytesRead.add(total, ordering: .relaxed) }
            else { writeRequests.add(1, ordering: .relaxed); bytesWritten.add(total, ordering: .relaxed) }
            return Self.okay
        }
    }
}

/// A copy of one `blkif_request` (112 bytes), taken out of the shared ring
/// before anything in it is looked at.
struct BlockRequest {
    var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    private func load<T>(_ offset: Int, as type: T.Type) -> T {
        withUnsafeBytes(of: bytes) { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    var operation: UInt8 { load(0, as: UInt8.self) }
    var segmentCount: Int { Int(load(1, as: UInt8.self)) }
    var id: UInt64 { load(8, as: UInt64.self) }
    var sector: UInt64 { load(16, as: UInt64.self) }
    /// A discard's length in sectors (its layout differs from read/write).
    var discardSectors: UInt64 { load(24, as: UInt64.self) }

    /// `blkif_request_segment`: grant, first and last sector within the page.
    func segment(_ i: Int) -> (grant: UInt32, first: UInt8, last: UInt8) {
        let o = 24 + i * 8
        return (load(o, as: UInt32.self), load(o + 4, as: UInt8.self), load(o + 5, as: UInt8.self))
    }
}
