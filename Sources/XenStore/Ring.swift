import Glibc
import Synchronization

/// The xenstore shared page as the server sees it: `struct
/// xenstore_domain_interface` (xen/io/xs_wire.h) in guest memory.
///
/// | offset | field |
/// | --- | --- |
/// | 0 | `req[1024]`: requests, guest → store |
/// | 1024 | `rsp[1024]`: replies and watch events, store → guest |
/// | 2048 / 2052 | `req_cons` (ours) / `req_prod` (guest's) |
/// | 2056 / 2060 | `rsp_cons` (guest's) / `rsp_prod` (ours) |
/// | 2064 / 2068 / 2072 | `server_features`, `connection`, `error` |
///
/// Indices are free-running u32s, masked with `size - 1` to index. The
/// guest's indices (`req_prod`, `rsp_cons`) are untrusted: each is read once
/// per pass with an acquiring atomic load and checked, and a ring whose
/// producer runs more than 1024 bytes ahead of its consumer is corrupt. Our
/// own indices are kept in this struct and only ever written to the page, so
/// a guest scribbling on them confuses only itself.
///
/// Ordering follows the usual ring discipline (Linux's xenbus_comms does the
/// mirror image): load the producer index (acquire) before reading data;
/// finish reading or writing data before publishing our index (release).
///
/// One owner: a ring may move between threads (hence `Sendable`), but only
/// one thread may service it at a time, and it must not be copied and
/// serviced through two copies (each would keep its own indices).
public struct XenStoreRing: @unchecked Sendable {
    public enum Failure: Equatable, Sendable, CustomStringConvertible {
        /// An index pair more than `size` apart (`XENSTORE_ERROR_RINGIDX`).
        case ringIndex(producer: UInt32, consumer: UInt32)
        /// A request header announcing more than 4096 payload bytes (`XENSTORE_ERROR_PROTO`).
        case payloadTooLarge(length: UInt32)

        public var description: String {
            switch self {
            case .ringIndex(let p, let c): "xenstore ring corrupt: producer \(p), consumer \(c)"
            case .payloadTooLarge(let n): "xenstore request announces \(n) payload bytes (max \(XenStoreMessage.maxPayload))"
            }
        }
    }

    /// `XENSTORE_RING_SIZE`.
    public static let size = 1024
    /// `sizeof(struct xenstore_domain_interface)`.
    public static let interfaceSize = 2076

    // Field offsets, checked against offsetof on xs_wire.h.
    static let requestOffset = 0
    static let responseOffset = 1024
    static let reqConsOffset = 2048
    static let reqProdOffset = 2052
    static let rspConsOffset = 2056
    static let rspProdOffset = 2060
    static let serverFeaturesOffset = 2064
    static let connectionOffset = 2068
    static let errorOffset = 2072

    /// `XENSTORE_CONNECTED`, `XENSTORE_RECONNECT`.
    public static let connected: UInt32 = 0
    public static let reconnect: UInt32 = 1
    /// `XENSTORE_ERROR_*`.
    public static let errorNone: UInt32 = 0
    public static let errorComm: UInt32 = 1
    public static let errorRingIndex: UInt32 = 2
    public static let errorProtocol: UInt32 = 3

    /// While the connection has this much output queued, requests stay in
    /// the ring: a guest that does not read its replies stops being served
    /// instead of growing our memory.
    public static let outputHighWater = 64 * 1024

    /// The shared page (at least `interfaceSize` bytes, 4-byte aligned).
    public let page: UnsafeMutableRawPointer
    /// Set once the guest broke the protocol; the ring is then left alone.
    public private(set) var failure: Failure?

    private var reqCons: UInt32
    private var rspProd: UInt32
    /// The request being assembled: every byte the guest has produced is
    /// taken at once, even part of a header. Linux's writer notifies only
    /// when it writes into a ring we had drained, and writes a message that
    /// straddles the end of the ring in two pieces, so bytes left in the ring
    /// may never be followed by another notification.
    private var staged: [UInt8] = []

    /// Prepares a fresh page for the guest: indices 0, `server_features` 0
    /// (no reconnection, no error field promised), `connection` CONNECTED,
    /// `error` NONE. Rings are zeroed too.
    public static func initialize(page: UnsafeMutableRawPointer) {
        memset(page, 0, 2 * size)
        for off in [reqConsOffset, reqProdOffset, rspConsOffset, rspProdOffset] {
            atomic(page, off).pointee.store(0, ordering: .relaxed)
        }
        atomic(page, serverFeaturesOffset).pointee.store(0, ordering: .relaxed)
        atomic(page, connectionOffset).pointee.store(connected, ordering: .relaxed)
        atomic(page, errorOffset).pointee.store(errorNone, ordering: .releasing)
    }

    /// Adopts a page as it stands (after `initialize`, or a restored one):
    /// our indices start from the values found there.
    public init(page: UnsafeMutableRawPointer) {
        precondition(Int(bitPattern: page) % 4 == 0, "xenstore page must be 4-byte aligned")
        self.page = page
        self.reqCons = Self.atomic(page, Self.reqConsOffset).pointee.load(ordering: .acquiring)
        self.rspProd = Self.atomic(page, Self.rspProdOffset).pointee.load(ordering: .acquiring)
    }

    /// Moves complete requests from `req` to the connection, and queued
    /// replies and events from the connection into `rsp` as space allows,
    /// until neither makes progress. Returns true if it consumed or produced
    /// anything (or just recorded a failure): the caller then notifies the
    /// guest's event channel.
    public mutating func service(connection: XenStoreConnection) -> Bool {
        guard failure == nil else { return false }
        var progress = false
        while true {
            let consumed = takeRequests(connection)
            if failure != nil { return true }
            let produced = putReplies(connection)
            if failure != nil { return true }
            guard consumed || produced else { break }
            progress = true
        }
        return progress
    }

    // MARK: Requests

    private mutating func takeRequests(_ connection: XenStoreConnection) -> Bool {
        var progress = false
        let headerSize = XenStoreMessage.headerSize
        while connection.pendingOutputBytes < Self.outputHighWater {
            let prod = atomic(Self.reqProdOffset).pointee.load(ordering: .acquiring)
            let available = prod &- reqCons
            guard available <= UInt32(Self.size) else {
                fail(.ringIndex(producer: prod, consumer: reqCons))
                return progress
            }
            guard available > 0 else { break }

            // Take up to the end of the header, or of the message once its
            // header is known; never past one message.
            var wanted = headerSize - staged.count
            if staged.count >= headerSize {
                let length = staged.withUnsafeBytes { Int(XenStoreMessage.le32($0, 12)) }
                wanted = headerSize + length - staged.count
            }
            let n = min(Int(available), wanted)
            if staged.isEmpty { staged.reserveCapacity(headerSize + XenStoreMessage.maxPayload) }
            Self.copy(page, from: Self.requestOffset, index: reqCons, count: n, into: &staged)
            reqCons &+= UInt32(n)
            publishRequestConsumer()
            progress = true

            guard staged.count >= headerSize else { continue }
            let fields = staged.withUnsafeBytes {
                (type: XenStoreMessage.le32($0, 0), reqID: XenStoreMessage.le32($0, 4),
                 txID: XenStoreMessage.le32($0, 8), length: XenStoreMessage.le32($0, 12))
            }
            guard fields.length <= UInt32(XenStoreMessage.maxPayload) else {
                fail(.payloadTooLarge(length: fields.length))
                return progress
            }
            guard staged.count == headerSize + Int(fields.length) else { continue }
            let payload = Array(staged[headerSize...])
            staged.removeAll(keepingCapacity: true)
            connection.handle(XenStoreMessage(type: XenStoreMessageType(rawValue: fields.type),
                                              reqID: fields.reqID, txID: fields.txID, payload: payload))
        }
        return progress
    }

    private func publishRequestConsumer() {
        atomic(Self.reqConsOffset).pointee.store(reqCons, ordering: .releasing)
    }

    // MARK: Replies

    private mutating func putReplies(_ connection: XenStoreConnection) -> Bool {
        guard connection.hasOutput else { return false }
        let cons = atomic(Self.rspConsOffset).pointee.load(ordering: .acquiring)
        let used = rspProd &- cons
        guard used <= UInt32(Self.size) else {
            fail(.ringIndex(producer: rspProd, consumer: cons))
            return false
        }
        let free = Self.size - Int(used)
        guard free > 0 else { return false }
        let bytes = connection.readOutput(maxBytes: free)
        guard !bytes.isEmpty else { return false }
        var written = 0
        var index = Int(rspProd & UInt32(Self.size - 1))
        bytes.withUnsafeBytes { src in
            while written < src.count {
                let chunk = min(src.count - written, Self.size - index)
                (page + Self.responseOffset + index).copyMemory(from: src.baseAddress! + written, byteCount: chunk)
                written += chunk
                index = 0
            }
        }
        rspProd &+= UInt32(bytes.count)
        atomic(Self.rspProdOffset).pointee.store(rspProd, ordering: .releasing)
        return true
    }

    // MARK: Helpers

    private mutating func fail(_ f: Failure) {
        failure = f
        let code = switch f {
        case .ringIndex: Self.errorRingIndex
        case .payloadTooLarge: Self.errorProtocol
        }
        atomic(Self.errorOffset).pointee.store(code, ordering: .releasing)
    }

    private static func copy(_ page: UnsafeMutableRawPointer, from base: Int, index: UInt32, count: Int, into out: inout [UInt8]) {
        var i = Int(index & UInt32(Self.size - 1))
        var remaining = count
        while remaining > 0 {
            let chunk = min(remaining, Self.size - i)
            out.append(contentsOf: UnsafeRawBufferPointer(start: page + base + i, count: chunk))
            remaining -= chunk
            i = 0
        }
    }

    private func atomic(_ offset: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        Self.atomic(page, offset)
    }

    private static func atomic(_ page: UnsafeMutableRawPointer, _ offset: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        (page + offset).assumingMemoryBound(to: Atomic<UInt32>.self)
    }
}
