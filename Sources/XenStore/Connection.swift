import Synchronization

/// Bytes waiting to go to the client: encoded replies and watch events, in order.
struct OutputQueue {
    var bytes: [UInt8] = []
    var head = 0
    var droppedEvents = 0

    var pending: Int { bytes.count - head }

    mutating func compact() {
        if head == bytes.count {
            bytes.removeAll(keepingCapacity: bytes.capacity <= 64 * 1024)
            head = 0
        } else if head >= 16 * 1024 && head * 2 >= bytes.count {
            bytes.removeSubrange(0..<head)
            head = 0
        }
    }
}

/// One xenstore client: a domain's ring (or a host socket). It owns what the
/// client has asked for (watches, transactions: kept by the tree under this
/// connection's id) and an outgoing queue of replies and watch events.
///
/// `handle` answers a request into the queue; any connection's change to the
/// tree may queue watch events here too. Drain the queue with `readOutput`
/// (byte stream, partial messages allowed: what `XenStoreRing` does) or
/// `nextMessage` (whole messages); do not mix the two mid-message.
///
/// Call `close()` when the client goes away: it drops the connection's
/// watches and transactions at once. (Dropping the last reference without
/// `close()` also works; the tree then purges the record lazily.)
public final class XenStoreConnection: Sendable {
    public let tree: XenStoreTree
    /// The client's domain: 0 is privileged (the host), any other is a guest.
    public let domainID: Int
    let domid: UInt16
    let id: UInt64
    let output: Mutex<OutputQueue>
    let onOutput: (@Sendable () -> Void)?

    /// A connection for domain `domainID` (0...65535; anything else is a host bug and traps).
    ///
    /// `onOutput`, if given, runs each time a reply or watch event is queued,
    /// including events caused by other connections or by host writes: the
    /// cue to service the ring. It runs with the store's lock held, so it must
    /// only signal (write an eventfd, wake a thread); calling back into the
    /// store or servicing the ring from it deadlocks.
    public init(tree: XenStoreTree, domainID: Int, onOutput: (@Sendable () -> Void)? = nil) {
        guard let d = UInt16(exactly: domainID) else {
            preconditionFailure("xenstore domain id \(domainID) out of range")
        }
        self.tree = tree
        self.domainID = domainID
        self.domid = d
        self.id = tree.allocateConnectionID()
        self.output = Mutex(OutputQueue())
        self.onOutput = onOutput
        tree.attach(self)
    }

    /// Answers one request: the reply (or XS_ERROR) and any watch events it
    /// causes go to the output queues.
    public func handle(_ request: XenStoreMessage) {
        tree.process(request, from: self)
    }

    /// Forgets this connection's watches and open transactions. Later
    /// requests get no reply.
    public func close() {
        tree.detach(id)
    }

    /// Bytes queued for the client.
    public var pendingOutputBytes: Int { output.withLock { $0.pending } }

    public var hasOutput: Bool { pendingOutputBytes > 0 }

    /// Watch events dropped because the queue was over `limits.maxQueuedOutputBytes`.
    public var droppedWatchEvents: Int { output.withLock { $0.droppedEvents } }

    /// Number of watches this connection holds.
    public var watchCount: Int { tree.watchCount(id) }

    /// Number of transactions this connection has open.
    public var transactionCount: Int { tree.transactionCount(id) }

    /// Takes up to `maxBytes` queued bytes (message boundaries not respected).
    public func readOutput(maxBytes: Int) -> [UInt8] {
        output.withLock { q in
            let n = min(max(maxBytes, 0), q.pending)
            guard n > 0 else { return [] }
            let out = Array(q.bytes[q.head..<(q.head + n)])
            q.head += n
            q.compact()
            return out
        }
    }

    /// Copies up to `buffer.count` queued bytes into `buffer`; returns how many.
    public func readOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        output.withLock { q in
            let n = min(buffer.count, q.pending)
            guard n > 0, let dst = buffer.baseAddress else { return 0 }
            q.bytes.withUnsafeBytes { src in
                dst.copyMemory(from: src.baseAddress! + q.head, byteCount: n)
            }
            q.head += n
            q.compact()
            return n
        }
    }

    /// The next whole queued message, or nil if none (or if `readOutput`
    /// left the queue mid-message).
    public func nextMessage() -> XenStoreMessage? {
        output.withLock { q -> XenStoreMessage? in
            guard q.pending >= XenStoreMessage.headerSize else { return nil }
            let parsed = q.bytes.withUnsafeBytes { all in
                try? XenStoreMessage.parse(UnsafeRawBufferPointer(rebasing: all[q.head...]))
            }
            guard let p = parsed else { return nil }
            q.head += p.length
            q.compact()
            return p.message
        }
    }

    /// Every whole queued message.
    public func drainMessages() -> [XenStoreMessage] {
        var out: [XenStoreMessage] = []
        while let m = nextMessage() { out.append(m) }
        return out
    }

    // MARK: Queueing (called with the tree's lock held)

    func enqueueReply(_ m: XenStoreMessage) {
        output.withLock { q in m.encode(into: &q.bytes) }
        onOutput?()
    }

    func enqueueEvent(path: String, token: [UInt8]) {
        var payload = Array(path.utf8)
        payload.append(0)
        payload.append(contentsOf: token)
        payload.append(0)
        let limit = tree.limits.maxQueuedOutputBytes
        let queued = output.withLock { q in
            guard payload.count <= XenStoreMessage.maxPayload,
                  q.pending + XenStoreMessage.headerSize + payload.count <= limit
            else {
                q.droppedEvents += 1
                return false
            }
            XenStoreMessage(type: .watchEvent, payload: payload).encode(into: &q.bytes)
            return true
        }
        if queued { onOutput?() }
    }
}
