import CKVM
import Glibc
import Synchronization
import XenPV
import XenStore

/// What a secondary console carries: someone in the VMM reading the
/// guest's bytes and writing to it (the guest agent). Called on the
/// backend's thread.
public protocol ConsoleChannelClient: AnyObject, Sendable {
    /// The frontend connected: the ring is live (the guest end may not be open yet).
    func channelConnected()
    /// The connection is gone (the frontend closed, the ring was corrupt, the domain ended).
    func channelDisconnected()
    /// Bytes from the guest; returns how many were taken. Bytes not taken
    /// stay in the guest's ring (the guest waits) until `kick()`.
    func channelOutput(_ bytes: UnsafeRawBufferPointer) -> Int
}

/// A secondary Xen PV console, the way Xen offers them: xenbus device
/// `console/N` (N ≥ 1), which Linux's hvc_xen frontend shows as `/dev/hvcN`.
/// The frontend allocates a page holding `struct xencons_interface`, grants
/// it to domain 0, allocates an event channel and writes `ring-ref` and
/// `port` into its directory; this backend claims the grant, binds the port
/// and moves bytes both ways (`ConsoleRing`).
///
/// Same shape as blkback and netback: one thread, woken by the frontend's
/// event channel, a xenstore watch or the VMM, does the handshake and the
/// I/O; anything wrong in the guest's ring closes the device.
public final class ConsoleChannelBackend: PVDeviceBackend, @unchecked Sendable {
    let domain: PVDomain
    let device: XenBusDevice
    let wake: WakeSignal
    let client: any ConsoleChannelClient
    public let deviceID: Int
    private var index = 0
    private var watcher: XenStoreConnection!
    private let stopping = Atomic<Bool>(false)
    private let handshake: XenBusHandshake

    /// The connection, while there is one (backend thread only).
    private var ring: ConsoleRing?
    private var ringRef: UInt32 = 0
    private var port = 0
    public let isConnected = Atomic<Bool>(false)

    /// Host → guest bytes not yet in the ring (bounded: `send` refuses more).
    private let pendingInput = Mutex<[UInt8]>([])
    public static let inputLimit = 256 << 10
    /// Guest bytes copied out of the ring before the client sees them.
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(ConsoleRing.outSize), alignment: 64)
    /// Input waiting to be written, copied under the lock, written outside it.
    private let staging = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(ConsoleRing.inSize), alignment: 64)

    /// Offers `console/<deviceID>` to the guest, for `client`.
    public init(domain: PVDomain, deviceID: Int, name: String, client: any ConsoleChannelClient) throws {
        precondition(deviceID >= 1 && deviceID <= 9, "hvc_xen takes the device number from the last digit")
        self.domain = domain
        self.client = client
        self.deviceID = deviceID
        wake = try WakeSignal()
        pendingInput.withLock { $0.reserveCapacity(Self.inputLimit) }
        device = try XenBusDevice(store: domain.store, frontendDomain: PVDomain.domainID, kind: "console", deviceID: deviceID,
                                  frontendNodes: [("name", name), ("type", "xenolith"), ("limit", "1048576")],
                                  backendNodes: [("name", name), ("type", "xenolith"), ("protocol", "vt100")])
        handshake = XenBusHandshake(device: device)
        index = domain.register(self)
        let wake = self.wake
        watcher = XenStoreConnection(tree: domain.store, domainID: 0, onOutput: { wake.signal() })
        // The whole directory: hvc_xen publishes ring-ref and port, and
        // (depending on the kernel) stays Initialising while it does.
        watcher.handle(XenStoreMessage(type: .watch, strings: [device.frontendPath, "frontend"]))
        handshake.publish(.initWait)
    }

    deinit {
        scratch.deallocate()
        staging.deallocate()
    }

    public func frontendNotified() { wake.signal() }

    /// The client has room again, or queued input: look at the ring now.
    public func kick() { wake.signal() }

    /// Queues bytes for the guest; false if the queue would exceed `inputLimit`
    /// or there is no connection.
    public func send(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard isConnected.load(ordering: .acquiring) else { return false }
        let queued = pendingInput.withLock { q -> Bool in
            guard q.count + bytes.count <= Self.inputLimit else { return false }
            q.append(contentsOf: bytes)
            return true
        }
        if queued { wake.signal() }
        return queued
    }

    public func start() {
        startBackendThread { self.threadMain() }
    }

    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
    }

    private func threadMain() {
        while !stopping.load(ordering: .acquiring) {
            wake.wait()
            if stopping.load(ordering: .acquiring) { break }
            if watcher.hasOutput {
                _ = watcher.drainMessages()
                frontendStateChanged()
            }
            if ring != nil { serviceRing() }
        }
        // The domain is gone; its client was told by the VMM (and may
        // already serve the next boot's channel): no callback now.
        disconnect(notify: false)
        watcher.close()
    }

    // MARK: Handshake

    private func frontendStateChanged() {
        let published = device.frontend("ring-ref") != nil && device.frontend("port") != nil
        let connected = ring != nil
        handshake.follow({ XenBusStep.nextForConsole(frontend: $0, backend: $1, connected: connected, ringPublished: published) },
                         connect: connect, disconnect: { disconnect() })
    }

    private func connect() {
        func refuse(_ why: String) {
            report("console \(deviceID): frontend refused: \(why)")
            handshake.publish(.closing)
        }
        guard let ref = device.frontend("ring-ref").flatMap({ UInt32($0) }) else { return refuse("ring-ref is not a grant reference") }
        guard let port = device.frontend("port").flatMap({ Int($0) }) else { return refuse("port is not an event channel") }
        guard let page = domain.claimGrant(ref, writable: true) else { return refuse("ring-ref \(ref) is not a page granted to the backend") }
        guard domain.bindBackend(port: port, device: index) else {
            domain.releaseGrant(ref, writable: true)
            return refuse("event channel \(port) is not an unbound port for domain 0")
        }
        ring = ConsoleRing(page: page)
        ringRef = ref
        self.port = port
        pendingInput.withLock { $0.removeAll(keepingCapacity: true) }
        isConnected.store(true, ordering: .releasing)
        handshake.publish(.connected)
        client.channelConnected()
        serviceRing()       // output the frontend wrote before we came
    }

    private func disconnect(notify: Bool = true) {
        guard ring != nil else { return }
        isConnected.store(false, ordering: .releasing)
        domain.unbindBackend(port: port, device: index)
        domain.releaseGrant(ringRef, writable: true)
        ring = nil
        pendingInput.withLock { $0.removeAll(keepingCapacity: true) }
        if notify { client.channelDisconnected() }
    }

    /// A corrupt ring: close the device, as Xen's backends do.
    private func fail(_ failure: ConsoleRing.Failure) {
        report("console \(deviceID): the frontend's ring is corrupt (\(failure)): closing the device")
        disconnect()
        handshake.publish(.closing)
    }

    private func report(_ line: String) {
        let text = "xeno: " + line + "\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
    }

    // MARK: The ring

    private func serviceRing() {
        guard var r = ring else { return }
        defer { if ring != nil { ring = r } }
        var notify = false
        // Output: until the ring is empty or the client takes no more.
        drain: while true {
            switch r.drainOutput(into: scratch, { client.channelOutput($0) }) {
            case .failure(let f): return fail(f)
            case .success(let n): if n == 0 { break drain }
            }
        }
        // Input: as much as the guest has room for.
        while true {
            let room: Int
            switch r.inputRoom() {
            case .failure(let f): return fail(f)
            case .success(let n): room = n
            }
            let count = pendingInput.withLock { q -> Int in
                let n = min(room, q.count)
                if n > 0 {
                    q.withUnsafeBytes { staging.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
                    q.removeFirst(n)
                }
                return n
            }
            guard count > 0 else { break }
            switch r.fillInput(UnsafeRawBufferPointer(rebasing: staging[0..<count])) {
            case .failure(let f): return fail(f)
            case .success: notify = true
            }
        }
        if notify { domain.notifyFrontend(port: port, device: index) }
    }
}

extension XenBusStep {
    /// A console's handshake (QEMU's and xenconsoled's way): hvc_xen writes
    /// `ring-ref` and `port` and, depending on the kernel, switches to
    /// Initialised or stays Initialising until the backend is Connected.
    /// So the backend connects once both nodes are there in any of those
    /// states; closing works as for every device.
    static func nextForConsole(frontend: XenBusState, backend: XenBusState, connected: Bool, ringPublished: Bool) -> XenBusStep {
        switch frontend {
        case .initialising, .initialised, .connected:
            if connected { return .nothing }
            if backend == .initWait { return ringPublished ? .connect : .nothing }
            // A frontend starting over after a close.
            return frontend == .initialising && (backend == .closed || backend == .closing) ? .disconnect(then: .initWait) : .nothing
        default:
            return next(frontend: frontend, backend: backend, connected: connected)
        }
    }
}
