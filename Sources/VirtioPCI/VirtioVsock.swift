import CKVM
import Glibc
import Synchronization
import Virtio

/// virtio-vsock (virtio 1.2 §5.10): stream sockets between the guest (its
/// CID in the configuration) and the host (CID 2), whose host ends are Unix
/// sockets: the "hybrid vsock" scheme of Firecracker and Cloud Hypervisor.
///
/// - A host program connects to the listening socket and writes
///   `CONNECT <port>\n`; the device sends the guest a REQUEST for that port
///   from a fresh host port and, once the guest accepts, answers
///   `OK <hostport>\n` (on RST it closes the Unix connection).
/// - A guest connecting to host port P reaches the Unix socket `<path>_P`
///   if something listens there, and gets RST otherwise.
/// - Then bytes flow both ways, each way under the peer's credit
///   (buf_alloc, fwd_cnt).
///
/// Flow control bounds what the VMM holds: host → guest bytes are read from
/// the Unix socket straight into the guest's receive buffers, and only as
/// many as the guest's credit allows (a guest that stops reading stops the
/// host writer through its socket buffer); guest → host bytes go straight to
/// the Unix socket, and what it does not take waits in a per-connection
/// buffer of `bufferSize` bytes, which is the credit we give the guest. So
/// the VMM holds at most `maxConnections × bufferSize` bytes for guests.
///
/// Every packet the guest sends is untrusted: a header cut short, a length
/// beyond the chain or above 64 KiB, a type or op we do not know, or credit
/// overrun are refused (RST when they name a connection); packets from a
/// CID that is not the guest's or to one that is not the host's are dropped
/// unanswered. Popping a chain never allocates; per packet the device does
/// only the socket I/O.
public final class VirtioVsock: VirtioDevice, @unchecked Sendable {
    public let guestCID: UInt64
    public var type: VirtioDeviceType { .socket }
    /// rx, tx, event.
    public let queueMaxSizes: [UInt16] = [256, 256, 16]
    static let receiveQueue = 0, transmitQueue = 1, eventQueue = 2
    static let hostCID: UInt64 = 2
    /// The largest payload either way (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
    static let maxPayload = 64 * 1024
    /// VIRTIO_VSOCK_F_STREAM: the only socket type offered.
    static let streamFeature: UInt64 = 1 << 0
    /// Host ports for host-initiated connections start here, clear of the
    /// low ports guests connect to.
    static let firstLocalPort: UInt32 = 1 << 30

    public struct Limits: Sendable {
        /// Connections at once; more are refused (RST, or the Unix connection closed).
        public var maxConnections: Int
        /// Each connection's receive buffer: the credit the guest gets, and
        /// the most the VMM holds for it when the host end does not read.
        public var bufferSize: UInt32

        public init(maxConnections: Int = 64, bufferSize: UInt32 = 256 * 1024) {
            self.maxConnections = min(max(maxConnections, 1), 250)
            self.bufferSize = max(bufferSize, 4096)
        }
    }
    public let limits: Limits

    /// The listening Unix socket (owned by the caller, which removes it).
    let listener: Int32
    /// Guest connections to host port P go to `<socketPath>_P`.
    let socketPath: String
    /// Every host fd the device waits on: the listener and each connection.
    let epoll: Int32

    var connections: [VsockConnection?]
    var connectionCount = 0
    var nextConnectionID: UInt64 = 1
    var nextLocalPort = VirtioVsock.firstLocalPort

    /// RSTs owed for connections that no longer exist (host port, guest port).
    var resets: [(UInt32, UInt32)] = []
    /// Room kept in `resets` for the connections' own RSTs, so a guest
    /// flooding packets for unknown connections cannot crowd them out.
    var maxResets: Int { limits.maxConnections * 2 + 64 }
    var controlPending = false

    /// A receive chain taken from the queue but not yet used (a read found
    /// nothing after all). Never pop while holding it: its segments live in
    /// the queue's storage until the next pop.
    var heldReceive: DescriptorChain?
    /// The last receive pass ran out of guest buffers: wait for the driver's kick.
    var receiveStarved = false
    /// The transmit pass stopped at its budget with chains left.
    var transmitBacklog = false

    /// A restored device owes the driver a TRANSPORT_RESET event; until it
    /// is posted, nothing goes out on the receive queue.
    var transportResetOwed = false
    /// The event went out in this pass: pass again for the receive queue.
    var receiveAfterTransportReset = false
    /// A receive chain the saved device held (taken, not used): it goes
    /// back to the driver empty once the restored device runs.
    var heldReceiveToReturn: UInt16?

    /// One epoll_wait's events: each one's bits and data (0: the listener;
    /// else a connection's id << 8 | its slot + 1).
    let eventBits: UnsafeMutableBufferPointer<UInt32>
    let eventData: UnsafeMutableBufferPointer<UInt64>
    let vectors: UnsafeMutableBufferPointer<iovec>
    /// A header's bytes, and a payload when a chain has more pieces than `vectors`.
    let headerBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: VsockHeader.size, alignment: 8)
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: VirtioVsock.maxPayload, alignment: 64)

    public let packetsFromGuest = Atomic<Int>(0), packetsToGuest = Atomic<Int>(0)
    /// Receive passes run: a busy count with nothing moving means a spinning service thread.
    public let receivePasses = Atomic<Int>(0)
    /// Guest packets refused (malformed, misaddressed, protocol violations).
    public let refusedPackets = Atomic<Int>(0)
    /// Problems reported on stderr so far; past a few, a hostile guest is not worth more lines.
    var reports = 0

    /// - Parameters:
    ///   - listener: a listening Unix stream socket at `socketPath`; the
    ///     device makes it non-blocking and accepts on it while the driver
    ///     runs the device.
    public init(guestCID: UInt64, listener: Int32, socketPath: String, limits: Limits = Limits()) {
        self.guestCID = guestCID
        self.listener = listener
        self.socketPath = socketPath
        self.limits = limits
        connections = Array(repeating: nil, count: limits.maxConnections)
        resets.reserveCapacity(limits.maxConnections * 2 + 64)
        eventBits = .allocate(capacity: 16)
        eventData = .allocate(capacity: 16)
        vectors = .allocate(capacity: 64)
        epoll = ckvm_epoll_create()
        _ = fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) | O_NONBLOCK)
        _ = ckvm_epoll_ctl(epoll, ckvm_epoll_add(), listener, EpollEvents.input, 0)
    }

    deinit {
        for case let c? in connections { close(c.fd) }
        close(epoll)
        eventBits.deallocate()
        eventData.deallocate()
        vectors.deallocate()
        headerBytes.deallocate()
        scratch.deallocate()
    }

    public var deviceFeatures: UInt64 { Self.streamFeature }

    /// struct virtio_vsock_config: le64 guest_cid.
    public var configSpace: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: guestCID >> (8 * $0)) }
    }

    public var hostInputFD: Int32? { epoll }
    /// Host events all lead to packets for the guest, so they wait while it
    /// has no receive buffers (its kick brings them back).
    public var wantsHostInput: Bool { !receiveStarved && !transportResetOwed }
    public var hasPendingWork: Bool {
        transmitBacklog || receiveAfterTransportReset || (controlPending && !receiveStarved)
    }

    /// The driver reset the device: its connections are gone with it.
    public func reset() {
        for i in connections.indices {
            if let c = connections[i] { close(c.fd) }
            connections[i] = nil
        }
        connectionCount = 0
        resets.removeAll(keepingCapacity: true)
        controlPending = false
        heldReceive = nil
        receiveStarved = false
        transmitBacklog = false
        transportResetOwed = false
        receiveAfterTransportReset = false
        heldReceiveToReturn = nil
    }

    public func service<Memory: GuestMemoryView>(queue index: Int, _ queue: Virtqueue<Memory>) {
        switch index {
        case Self.receiveQueue: receive(queue)
        case Self.transmitQueue: transmit(queue)
        case Self.eventQueue: postTransportReset(queue)
        default: break
        }
    }

    // MARK: Guest → host

    /// Chains per transmit pass; more come on the transport's next pass.
    static let transmitBudget = 128

    private func transmit<Memory: GuestMemoryView>(_ queue: Virtqueue<Memory>) {
        transmitBacklog = false
        for _ in 0..<Self.transmitBudget {
            switch queue.popAvailable() {
            case .empty, .failed:
                return
            case .refused(let head, let error):
                refuse("transmit chain refused: \(error)")
                try? queue.pushUsed(id: head, length: 0)
            case .chain(let chain):
                packetsFromGuest.add(1, ordering: .relaxed)
                handle(chain.readable, length: chain.readableLength)
                try? queue.pushUsed(id: chain.head, length: 0)
            }
        }
        transmitBacklog = true
    }

    /// One packet from the guest: `readable` holds the header and payload.
    private func handle(_ readable: UnsafeBufferPointer<BufferSegment>, length: UInt64) {
        guard length >= UInt64(VsockHeader.size) else { return refuse("packet of \(length) bytes, shorter than its header") }
        // Copied before it is checked: the guest can change its buffers meanwhile.
        _ = readable.copyOut(from: 0, into: headerBytes)
        let h = VsockHeader(UnsafeRawBufferPointer(headerBytes))
        guard h.sourceCID == guestCID, h.destinationCID == Self.hostCID else {
            return refuse("packet from CID \(h.sourceCID) to CID \(h.destinationCID) (the guest is \(guestCID), the host 2)")
        }
        let slot = find(hostPort: h.destinationPort, guestPort: h.sourcePort)
        guard h.type == VsockHeader.stream else {
            refuse("packet of socket type \(h.type)")
            return resetConnection(slot, orAnswer: h)
        }
        guard h.length <= Self.maxPayload, UInt64(h.length) <= length - UInt64(VsockHeader.size) else {
            refuse("packet claims \(h.length) payload bytes in a chain of \(length)")
            return resetConnection(slot, orAnswer: h)
        }
        guard let slot, let c = connections[slot] else {
            switch h.op {
            case VsockHeader.Op.request: connectToHost(h)
            case VsockHeader.Op.reset: break        // never answer an RST
            default: queueReset(hostPort: h.destinationPort, guestPort: h.sourcePort)
            }
            return
        }
        // Every header carries the guest's current credit for this connection.
        c.peerBufferAllocation = h.bufferAllocation
        c.peerForwardCount = h.forwardCount
        if c.credit > 0 { c.creditRequested = false }
        switch h.op {
        case VsockHeader.Op.response where c.state == .connecting:
            c.state = .established
            let ok = Array("OK \(c.hostPort)\n".utf8)
            let sent = ok.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            guard sent == ok.count else { return closeConnection(slot, reset: true) }
        case VsockHeader.Op.reset:
            return closeConnection(slot, reset: false)
        case VsockHeader.Op.shutdown:
            c.guestShutdown |= h.flags & (VsockHeader.shutdownReceive | VsockHeader.shutdownSend)
            if c.guestShutdown & VsockHeader.shutdownSend != 0 {
                if c.guestShutdown & VsockHeader.shutdownReceive != 0 {
                    // Both ways shut: the guest waits for our RST, sent once
                    // the bytes it already sent are on their way to the host.
                    c.state = .closing
                    if c.heldCount == 0 { return closeConnection(slot, reset: true) }
                } else if c.heldCount == 0 {
                    _ = Glibc.shutdown(c.fd, Int32(SHUT_WR))
                }
            }
        case VsockHeader.Op.readWrite where c.state == .established:
            guard c.guestShutdown & VsockHeader.shutdownSend == 0, h.length <= c.receiveSpace(bufferSize: limits.bufferSize) else {
                refuse("connection \(c.guestPort)→\(c.hostPort): data past a shutdown or beyond the credit given")
                return closeConnection(slot, reset: true)
            }
            guard forwardToHost(c, readable, length: Int(h.length)) else { return closeConnection(slot, reset: true) }
        case VsockHeader.Op.creditUpdate:
            break       // the credit is taken above
        case VsockHeader.Op.creditRequest:
            c.owesCreditUpdate = true
            controlPending = true
        default:
            refuse("connection \(c.guestPort)→\(c.hostPort): op \(h.op) in state \(c.state)")
            return closeConnection(slot, reset: true)
        }
        updateEvents(c)
    }

    /// Writes an RW packet's payload to the host socket, keeping what it
    /// does not take; false when the host end is gone.
    private func forwardToHost(_ c: VsockConnection, _ readable: UnsafeBufferPointer<BufferSegment>, length: Int) -> Bool {
        guard length > 0 else { return true }
        c.receivedCount &+= UInt32(length)
        var written = 0
        if c.heldCount == 0 {
            // Straight from guest memory when the pieces fit our vectors.
            if let count = readable.vectors(from: UInt64(VsockHeader.size), length: UInt64(length), into: vectors) {
                var message = msghdr()
                message.msg_iov = vectors.baseAddress
                message.msg_iovlen = count
                let n = sendmsg(c.fd, &message, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR { return false }
                written = max(n, 0)
            } else {
                let got = readable.copyOut(from: UInt64(VsockHeader.size), into: UnsafeMutableRawBufferPointer(rebasing: scratch[..<length]))
                let n = send(c.fd, scratch.baseAddress, got, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR { return false }
                written = max(n, 0)
            }
        }
        if written < length {
            // The rest waits; the credit check guarantees it fits.
            let rest = UnsafeMutableRawBufferPointer(rebasing: scratch[..<(length - written)])
            let got = readable.copyOut(from: UInt64(VsockHeader.size + written), into: rest)
            c.hold(UnsafeRawBufferPointer(rebasing: rest[..<got]), capacity: Int(limits.bufferSize))
        }
        forwarded(c, written)
        return true
    }

    /// `n` more bytes reached the host: tell the guest once enough has
    /// drained that a blocked sender may be waiting for it.
    private func forwarded(_ c: VsockConnection, _ n: Int) {
        guard n > 0 else { return }
        c.forwardCount &+= UInt32(n)
        if c.forwardCount &- c.advertisedForwardCount >= limits.bufferSize / 4 {
            c.owesCreditUpdate = true
            controlPending = true
        }
    }

    /// A guest REQUEST for host port P: connect to `<path>_P`.
    private func connectToHost(_ h: VsockHeader) {
        guard connectionCount < limits.maxConnections, let slot = connections.firstIndex(where: { $0 == nil }) else {
            return queueReset(hostPort: h.destinationPort, guestPort: h.sourcePort)
        }
        let path = socketPath + "_\(h.destinationPort)"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return queueReset(hostPort: h.destinationPort, guestPort: h.sourcePort) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let fits = path.utf8.count < MemoryLayout.size(ofValue: address.sun_path)
        if fits {
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, b) in path.utf8.enumerated() { raw[i] = b }
            }
        }
        // A Unix stream connect completes at once or fails (EAGAIN: a full backlog).
        let connected = fits && withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
        guard connected else {
            close(fd)
            return queueReset(hostPort: h.destinationPort, guestPort: h.sourcePort)
        }
        let c = add(fd: fd, slot: slot, state: .established)
        c.hostPort = h.destinationPort
        c.guestPort = h.sourcePort
        c.peerBufferAllocation = h.bufferAllocation
        c.peerForwardCount = h.forwardCount
        c.owesResponse = true
        controlPending = true
        updateEvents(c)
    }

    // MARK: Host → guest

    /// epoll batches per receive pass; what is left keeps the epoll fd
    /// readable, so the service thread comes straight back.
    static let receiveRounds = 4

    private func receive<Memory: GuestMemoryView>(_ queue: Virtqueue<Memory>) {
        // After a restore the guest hears of the reset before anything new.
        guard !transportResetOwed else { return }
        receiveAfterTransportReset = false
        if let head = heldReceiveToReturn {
            heldReceiveToReturn = nil
            try? queue.pushUsed(id: head, length: 0)
        }
        receivePasses.add(1, ordering: .relaxed)
        receiveStarved = false
        sendControl(queue)
        for _ in 0..<Self.receiveRounds where !receiveStarved {
            let n = ckvm_epoll_wait(epoll, eventBits.baseAddress, eventData.baseAddress, Int32(eventBits.count), 0)
            guard n > 0 else { return }
            for i in 0..<Int(n) where !receiveStarved {
                let data = eventData[i]
                if data == 0 { acceptHost(); continue }
                let slot = Int(data & 0xff) - 1
                guard slot < connections.count, let c = connections[slot], c.id == data >> 8 else { continue }
                hostEvent(c, slot: slot, events: eventBits[i], queue)
            }
            sendControl(queue)
        }
    }

    /// Events on one connection's host socket.
    private func hostEvent<Memory: GuestMemoryView>(_ c: VsockConnection, slot: Int, events: UInt32, _ queue: Virtqueue<Memory>) {
        let trouble = EpollEvents.error | EpollEvents.hangUp
        if c.state == .awaitingConnectLine {
            return readConnectLine(c, slot: slot)
        }
        if c.heldCount > 0, events & (EpollEvents.output | trouble) != 0 {
            guard let n = c.flushHeld() else { return closeConnection(slot, reset: true) }
            forwarded(c, n)
            if c.heldCount == 0 {
                if c.state == .closing { return closeConnection(slot, reset: true) }
                if c.guestShutdown & VsockHeader.shutdownSend != 0 { _ = Glibc.shutdown(c.fd, Int32(SHUT_WR)) }
            }
        }
        if c.canForwardToGuest, events & (EpollEvents.input | trouble) != 0 {
            readHost(c, slot: slot, hungUp: events & EpollEvents.hangUp != 0, queue)
        }
        if connections[slot] === c { updateEvents(c) }
    }

    /// Reads what the host wrote into the next receive buffer, as much as
    /// the buffer and the guest's credit allow: one RW packet.
    private func readHost<Memory: GuestMemoryView>(_ c: VsockConnection, slot: Int, hungUp: Bool, _ queue: Virtqueue<Memory>) {
        guard let chain = nextReceiveChain(queue, payload: true) else { return }
        let room = Int(min(UInt64(chain.writableLength) - UInt64(VsockHeader.size), UInt64(Self.maxPayload), UInt64(c.credit)))
        var n: Int
        if let count = chain.writable.vectors(from: UInt64(VsockHeader.size), length: UInt64(room), into: vectors) {
            n = readv(c.fd, vectors.baseAddress, Int32(count))
        } else {
            n = recv(c.fd, scratch.baseAddress, room, Int32(MSG_DONTWAIT))
            if n > 0 { _ = chain.writable.copyIn(UnsafeRawBufferPointer(rebasing: scratch[..<n]), at: UInt64(VsockHeader.size)) }
        }
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return }
            return closeConnection(slot, reset: true)
        }
        if n == 0 {
            // EOF. Both ways closed (HUP) or only the host's sending side.
            c.hostEOF = true
            c.owesShutdown = VsockHeader.shutdownSend | (hungUp ? VsockHeader.shutdownReceive : 0)
            controlPending = true
            return
        }
        var h = header(for: c, op: VsockHeader.Op.readWrite)
        h.length = UInt32(n)
        c.sentCount &+= UInt32(n)
        complete(chain, h, queue)
        if c.credit == 0, !c.creditRequested {
            c.creditRequested = true
            c.owesCreditRequest = true
            controlPending = true
        }
    }

    /// Control packets owed, connection by connection, then RSTs.
    private func sendControl<Memory: GuestMemoryView>(_ queue: Virtqueue<Memory>) {
        guard controlPending else { return }
        for case let c? in connections where c.owesControl {
            while c.owesControl {
                guard let chain = nextReceiveChain(queue, payload: false) else { return }
                var h = header(for: c, op: 0)
                if c.owesRequest {
                    c.owesRequest = false
                    h.op = VsockHeader.Op.request
                } else if c.owesResponse {
                    c.owesResponse = false
                    h.op = VsockHeader.Op.response
                } else if c.owesShutdown != 0 {
                    h.op = VsockHeader.Op.shutdown
                    h.flags = c.owesShutdown
                    c.owesShutdown = 0
                } else if c.owesCreditUpdate {
                    c.owesCreditUpdate = false
                    h.op = VsockHeader.Op.creditUpdate
                } else {
                    c.owesCreditRequest = false
                    h.op = VsockHeader.Op.creditRequest
                }
                complete(chain, h, queue)
            }
            updateEvents(c)
        }
        while let (hostPort, guestPort) = resets.first {
            guard let chain = nextReceiveChain(queue, payload: false) else { return }
            var h = VsockHeader()
            h.sourceCID = Self.hostCID
            h.destinationCID = guestCID
            h.sourcePort = hostPort
            h.destinationPort = guestPort
            h.op = VsockHeader.Op.reset
            complete(chain, h, queue)
            resets.removeFirst()
        }
        controlPending = false
    }

    /// A header from the host end of `c`, with our current credit.
    private func header(for c: VsockConnection, op: UInt16) -> VsockHeader {
        var h = VsockHeader()
        h.sourceCID = Self.hostCID
        h.destinationCID = guestCID
        h.sourcePort = c.hostPort
        h.destinationPort = c.guestPort
        h.op = op
        h.bufferAllocation = limits.bufferSize
        h.forwardCount = c.forwardCount
        c.advertisedForwardCount = c.forwardCount
        return h
    }

    /// The next usable receive chain (the held one first); nil when the
    /// guest has none, which stops host work until its kick. Chains too
    /// small for a header (or, for data, a byte more) go back empty.
    private func nextReceiveChain<Memory: GuestMemoryView>(_ queue: Virtqueue<Memory>, payload: Bool) -> DescriptorChain? {
        let need = UInt64(VsockHeader.size + (payload ? 1 : 0))
        while true {
            if let held = heldReceive {
                if held.writableLength >= need { return held }
                heldReceive = nil
                refuse("receive buffer of \(held.writableLength) bytes")
                try? queue.pushUsed(id: held.head, length: 0)
                continue
            }
            switch queue.popAvailable() {
            case .empty, .failed:
                receiveStarved = true
                return nil
            case .refused(let head, let error):
                refuse("receive chain refused: \(error)")
                try? queue.pushUsed(id: head, length: 0)
            case .chain(let chain):
                heldReceive = chain
            }
        }
    }

    /// Writes `h` at the start of `chain` (the held receive chain) and hands it to the driver.
    private func complete<Memory: GuestMemoryView>(_ chain: DescriptorChain, _ h: VsockHeader, _ queue: Virtqueue<Memory>) {
        h.store(into: headerBytes)
        _ = chain.writable.copyIn(UnsafeRawBufferPointer(headerBytes), at: 0)
        heldReceive = nil
        packetsToGuest.add(1, ordering: .relaxed)
        try? queue.pushUsed(id: chain.head, length: UInt32(VsockHeader.size) + h.length)
    }

    // MARK: Host-initiated connections

    /// Takes waiting host clients (a few per event); past the connection
    /// limit they are closed at once.
    private func acceptHost() {
        for _ in 0..<8 {
            let fd = ckvm_accept_nonblocking(listener)
            if fd < 0 { if errno == EINTR { continue }; return }
            guard connectionCount < limits.maxConnections, let slot = connections.firstIndex(where: { $0 == nil }) else {
                close(fd)
                continue
            }
            let c = add(fd: fd, slot: slot, state: .awaitingConnectLine)
            c.line.reserveCapacity(Self.maxLine)
            updateEvents(c)
        }
    }

    /// "CONNECT 4294967295" fits; a longer line is not a request.
    static let maxLine = 32

    /// Reads the `CONNECT <port>` line without taking any byte after its
    /// newline (those are data for the guest): peek, then consume.
    private func readConnectLine(_ c: VsockConnection, slot: Int) {
        let want = Self.maxLine - c.line.count
        let n = recv(c.fd, scratch.baseAddress, want, Int32(MSG_PEEK | MSG_DONTWAIT))
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return }
        guard n > 0 else { return closeConnection(slot, reset: false) }
        let newline = scratch[..<n].firstIndex(of: UInt8(ascii: "\n"))
        let take = newline.map { $0 + 1 } ?? n
        _ = recv(c.fd, scratch.baseAddress, take, Int32(MSG_DONTWAIT))
        c.line.append(contentsOf: scratch[..<(newline ?? n)])
        guard newline != nil else {
            if c.line.count >= Self.maxLine { closeConnection(slot, reset: false) }
            return
        }
        guard let port = Self.parseConnect(c.line) else { return closeConnection(slot, reset: false) }
        c.line = []
        c.guestPort = port
        c.hostPort = allocateLocalPort(guestPort: port)
        c.state = .connecting
        c.owesRequest = true
        controlPending = true
        updateEvents(c)
    }

    /// `CONNECT <port>` (a trailing CR tolerated) → the port.
    static func parseConnect(_ line: [UInt8]) -> UInt32? {
        var text = line
        if text.last == UInt8(ascii: "\r") { text.removeLast() }
        let prefix = Array("CONNECT ".utf8)
        guard text.count > prefix.count, text.starts(with: prefix) else { return nil }
        let digits = text[prefix.count...]
        guard digits.count <= 10, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        let value = digits.reduce(UInt64(0)) { $0 * 10 + UInt64($1 - UInt8(ascii: "0")) }
        return value <= UInt64(UInt32.max) ? UInt32(value) : nil
    }

    /// A host port no connection to `guestPort` uses.
    private func allocateLocalPort(guestPort: UInt32) -> UInt32 {
        while true {
            let port = nextLocalPort
            nextLocalPort = nextLocalPort == UInt32.max ? Self.firstLocalPort : nextLocalPort + 1
            if find(hostPort: port, guestPort: guestPort) == nil { return port }
        }
    }

    // MARK: Connections

    private func find(hostPort: UInt32, guestPort: UInt32) -> Int? {
        for (i, c) in connections.enumerated() where c != nil {
            if c!.hostPort == hostPort, c!.guestPort == guestPort, c!.state != .awaitingConnectLine { return i }
        }
        return nil
    }

    private func add(fd: Int32, slot: Int, state: VsockConnection.State) -> VsockConnection {
        let c = VsockConnection(fd: fd, id: nextConnectionID, state: state)
        nextConnectionID += 1
        connections[slot] = c
        connectionCount += 1
        return c
    }

    /// Registers for the events `c` can act on now; not registered at all
    /// when none (EPOLLHUP would be reported even for an empty set).
    private func updateEvents(_ c: VsockConnection) {
        let wanted = c.wantedEvents
        guard wanted != c.registeredEvents, let slot = connections.firstIndex(where: { $0 === c }) else { return }
        let op = wanted == 0 ? ckvm_epoll_del() : c.registeredEvents == 0 ? ckvm_epoll_add() : ckvm_epoll_mod()
        _ = ckvm_epoll_ctl(epoll, op, c.fd, wanted, c.id << 8 | UInt64(slot + 1))
        c.registeredEvents = wanted
    }

    /// Ends a connection: the host socket closes; `reset`: the guest is told (RST).
    private func closeConnection(_ slot: Int, reset: Bool) {
        guard let c = connections[slot] else { return }
        close(c.fd)         // also leaves the epoll set
        connections[slot] = nil
        connectionCount -= 1
        // Bounded too: a guest that opens and breaks connections without
        // ever posting receive buffers only loses RSTs it would never read.
        if reset && c.state != .awaitingConnectLine && resets.count < maxResets {
            resets.append((c.hostPort, c.guestPort))
            controlPending = true
        }
    }

    /// A bad packet: reset its connection if it has one, else answer RST
    /// (never to an RST).
    private func resetConnection(_ slot: Int?, orAnswer h: VsockHeader) {
        if let slot { return closeConnection(slot, reset: true) }
        if h.op != VsockHeader.Op.reset { queueReset(hostPort: h.destinationPort, guestPort: h.sourcePort) }
    }

    /// An RST for a connection we do not have, unless the room left is
    /// kept for real connections' RSTs.
    private func queueReset(hostPort: UInt32, guestPort: UInt32) {
        guard resets.count < maxResets - limits.maxConnections else { return }
        resets.append((hostPort, guestPort))
        controlPending = true
    }

    /// Counts a refusal; the text is built only for the few reported, so a
    /// flood of bad packets costs no allocations.
    func refuse(_ why: @autoclosure () -> String) {
        refusedPackets.add(1, ordering: .relaxed)
        reports += 1
        if reports <= 8 { report("virtio-vsock: \(why())") }
        if reports == 8 { report("virtio-vsock: further refusals are counted, not reported") }
    }
}
