import Synchronization

/// A registered watch. `path` is canonical (absolute, or a special `@` name);
/// `relative` means the client gave a relative path, so the events it gets
/// carry paths relative to its domain, as xenstored reports them.
struct Watch: Sendable {
    var path: String
    var token: [UInt8]
    var relative: Bool
}

/// What the store keeps per connection: its watches and open transactions.
/// The connection object itself is held weakly; a record whose connection
/// has gone is purged on the next pass over the records.
struct ConnectionRecord {
    weak var connection: XenStoreConnection?
    var domain: UInt16
    var watches: [Watch] = []
    var transactions: [UInt32: NodeStore] = [:]
    var nextTransactionID: UInt32 = 1
}

struct TreeState {
    var store = NodeStore()
    var connections: [UInt64: ConnectionRecord] = [:]
    var nextConnectionID: UInt64 = 1
    var introduced: Set<UInt16> = []
    /// XS_SET_TARGET: domain → the domain it may act for (a device model's stub domain).
    var targets: [UInt16: UInt16] = [:]
    var limits: XenStoreLimits

    init(limits: XenStoreLimits) { self.limits = limits }

    func requester(_ domain: UInt16) -> Requester {
        Requester(domain: domain, target: targets[domain])
    }

    // MARK: Running operations on the store or a transaction

    /// Runs a modifying operation on the live store (`txID` 0) or on the
    /// connection's transaction. Live changes fire watches now; a
    /// transaction's are kept for its commit.
    mutating func mutate(connection cid: UInt64, txID: UInt32, _ body: (inout NodeStore) throws(XenStoreError) -> ChangeEvent?) throws(XenStoreError) {
        if txID == 0 {
            if let e = try body(&store) { fire(e) }
            return
        }
        guard var t = connections[cid]?.transactions.removeValue(forKey: txID) else { throw .ENOENT }
        defer { connections[cid]?.transactions[txID] = t }
        if let e = try body(&t) { t.log?.events.append(e) }
    }

    /// Runs a reading operation on the live store or the transaction's view.
    mutating func inspect<R>(connection cid: UInt64, txID: UInt32, _ body: (inout NodeStore) throws(XenStoreError) -> R) throws(XenStoreError) -> R {
        if txID == 0 { return try body(&store) }
        guard var t = connections[cid]?.transactions.removeValue(forKey: txID) else { throw .ENOENT }
        defer { connections[cid]?.transactions[txID] = t }
        return try body(&t)
    }

    /// Applies a transaction if nothing it read or wrote changed since it
    /// started (per-node generations), then fires its watch events.
    mutating func commit(_ tx: NodeStore, domain: UInt16) throws(XenStoreError) {
        guard let log = tx.log else { return }
        for (path, generation) in log.firstSeen where (store.nodes[path]?.generation ?? 0) != generation {
            throw .EAGAIN
        }
        if domain != 0 {
            var delta = 0
            for p in log.written {
                if store.nodes[p]?.owner == domain { delta -= 1 }
                if tx.nodes[p]?.owner == domain { delta += 1 }
            }
            if delta > 0 && store.owned[domain, default: 0] + delta > limits.nodesPerDomain { throw .ENOSPC }
        }
        for p in log.written { store.put(p, tx.nodes[p]) }
        for e in log.events { fire(e) }
    }

    // MARK: Watches

    /// Queues a watch event to every connection with a watch at or above the
    /// changed path (or, for a removal, below it) that may read the node.
    mutating func fire(_ e: ChangeEvent) {
        var dead: [UInt64] = []
        for (cid, record) in connections {
            guard let conn = record.connection else {
                dead.append(cid)
                continue
            }
            guard !record.watches.isEmpty else { continue }
            let who = requester(record.domain)
            let readable = e.permSets.contains { who.rights($0).contains(.read) }
            guard readable else { continue }
            for w in record.watches where w.path.utf8.first != UInt8(ascii: "@") {
                let reported: String
                if XenStorePath.isAtOrBelow(e.path, w.path) {
                    reported = e.path
                } else if e.removed && XenStorePath.isAtOrBelow(w.path, e.path) {
                    reported = w.path
                } else {
                    continue
                }
                conn.enqueueEvent(path: w.relative ? XenStorePath.relativize(reported, domain: record.domain) : reported, token: w.token)
            }
        }
        for cid in dead { connections[cid] = nil }
    }

    /// `@introduceDomain` / `@releaseDomain`: told to privileged watchers only
    /// (a guest's watch on them fires once, when it is set).
    mutating func fireSpecial(_ name: String) {
        for (_, record) in connections where record.domain == 0 {
            guard let conn = record.connection else { continue }
            for w in record.watches where w.path == name {
                conn.enqueueEvent(path: name, token: w.token)
            }
        }
    }
}

/// The xenstore: a tree of nodes (path → value, children, permissions),
/// watches and transactions, shared by every connection of one host process.
///
/// Thread-safe: all state sits behind one `Mutex`; watch events for other
/// connections are queued while it is held (lock order: tree, then a
/// connection's output queue).
///
/// The host-side methods act as domain 0 unless `as:` names another domain,
/// with that domain's permissions and relative paths.
public final class XenStoreTree: Sendable {
    public let limits: XenStoreLimits
    let state: Mutex<TreeState>

    /// A store holding `/`, `/local`, `/local/domain`, `/tool/xenstored`
    /// and dom0's `/local/domain/0` (`name` = Domain-0, `domid` = 0), all
    /// owned by dom0 and unreadable to guests (`n0`).
    public init(limits: XenStoreLimits = XenStoreLimits()) {
        self.limits = limits
        var s = TreeState(limits: limits)
        for p in ["/local/domain/0", "/tool/xenstored"] {
            _ = try? s.store.mkdir(p, who: .dom0, limits: limits)
        }
        _ = try? s.store.write("/local/domain/0/name", Array("Domain-0".utf8), who: .dom0, limits: limits)
        _ = try? s.store.write("/local/domain/0/domid", Array("0".utf8), who: .dom0, limits: limits)
        s.introduced.insert(0)
        state = Mutex(s)
    }

    /// `/local/domain/<id>`.
    public static func domainPath(_ id: Int) -> String { "/local/domain/\(id)" }

    // MARK: Host-side operations

    public func read(_ path: String, as domain: Int = 0) throws(XenStoreError) -> [UInt8] {
        let d = try Self.domainID(domain)
        let p = try XenStorePath.canonical(path, domain: d)
        return try state.withLock { s throws(XenStoreError) in
            try s.store.read(p, who: s.requester(d))
        }
    }

    /// The value as UTF-8 text (invalid sequences repaired).
    public func readString(_ path: String, as domain: Int = 0) throws(XenStoreError) -> String {
        String(decoding: try read(path, as: domain), as: UTF8.self)
    }

    public func write(_ path: String, _ value: [UInt8], as domain: Int = 0) throws(XenStoreError) {
        guard value.count <= XenStoreMessage.maxPayload else { throw .E2BIG }
        let d = try Self.domainID(domain)
        let p = try XenStorePath.canonical(path, domain: d)
        try state.withLock { s throws(XenStoreError) in
            let who = s.requester(d)
            let limits = s.limits
            try s.mutate(connection: 0, txID: 0) { store throws(XenStoreError) in
                try store.write(p, value, who: who, limits: limits)
            }
        }
    }

    public func write(_ path: String, _ value: String, as domain: Int = 0) throws(XenStoreError) {
        try write(path, Array(value.utf8), as: domain)
    }

    /// Creates the node (and missing ancestors) with an empty value; no-op if it exists.
    public func mkdir(_ path: String, as domain: Int = 0) throws(XenStoreError) {
        let d = try Self.domainID(domain)
        let p = try XenStorePath.canonical(path, domain: d)
        try state.withLock { s throws(XenStoreError) in
            let who = s.requester(d)
            let limits = s.limits
            try s.mutate(connection: 0, txID: 0) { store throws(XenStoreError) in
                try store.mkdir(p, who: who, limits: limits)
            }
        }
    }

    /// Removes the node and everything below it (XS_RM).
    public func remove(_ path: String, as domain: Int = 0) throws(XenStoreError) {
        let d = try Self.domainID(domain)
        let p = try XenStorePath.canonical(path, domain: d)
        try state.withLock { s throws(XenStoreError) in
            let who = s.requester(d)
            try s.mutate(connection: 0, txID: 0) { store throws(XenStoreError) in
                try store.remove(p, who: who)
            }
        }
    }

    /// Child names, in creation order.
    public func directory(_ path: String, as domain: Int = 0) throws(XenStoreError) -> [String] {
        let d = try Self.domainID(domain)
        let p = try XenStorePath.canonical(path, domain: d)
        return try state.withLock { s throws(XenStoreError) in
            try s.store.directory(p, who: s.requester(d)).children
        }
    }

    public func permissions(_ path: String, as domain: Int = 0) throws(XenStoreError) -> [XenStorePermission] {
        let d = try Self.domainID(domain)
        let p = try XenStorePath.canonical(path, domain: d)
        return try state.withLock { s throws(XenStoreError) in
            try s.store.permissions(p, who: s.requester(d))
        }
    }

    public func setPermissions(_ path: String, _ perms: [XenStorePermission], as domain: Int = 0) throws(XenStoreError) {
        let d = try Self.domainID(domain)
        let p = try XenStorePath.canonical(path, domain: d)
        guard !perms.isEmpty, perms.allSatisfy({ (0...0xffff).contains($0.domain) }) else { throw .EINVAL }
        try state.withLock { s throws(XenStoreError) in
            let who = s.requester(d)
            let limits = s.limits
            try s.mutate(connection: 0, txID: 0) { store throws(XenStoreError) in
                try store.setPermissions(p, perms, who: who, limits: limits)
            }
        }
    }

    /// Whether a node exists (no permission check: host use).
    public func exists(_ path: String) -> Bool {
        guard let p = try? XenStorePath.canonical(path, domain: 0) else { return false }
        return state.withLock { $0.store.nodes[p] != nil }
    }

    /// Nodes in the store, the root included.
    public var nodeCount: Int { state.withLock { $0.store.nodes.count } }

    /// Nodes owned by `domain` (what the quota counts).
    public func nodesOwned(by domain: Int) -> Int {
        guard let d = try? Self.domainID(domain) else { return 0 }
        return state.withLock { $0.store.owned[d, default: 0] }
    }

    // MARK: Domains

    /// Marks the domain as introduced and fires `@introduceDomain`.
    public func introduceDomain(_ id: Int) {
        guard let d = try? Self.domainID(id) else { return }
        state.withLock { s in
            s.introduced.insert(d)
            s.fireSpecial(XenStorePath.introduceDomain)
        }
    }

    /// Forgets the domain and fires `@releaseDomain` (its nodes stay: the
    /// toolstack removes them, as with xenstored).
    public func releaseDomain(_ id: Int) {
        guard let d = try? Self.domainID(id) else { return }
        state.withLock { s in
            guard s.introduced.remove(d) != nil else { return }
            s.targets[d] = nil
            s.fireSpecial(XenStorePath.releaseDomain)
        }
    }

    public func isDomainIntroduced(_ id: Int) -> Bool {
        guard let d = try? Self.domainID(id) else { return false }
        return state.withLock { $0.introduced.contains(d) }
    }

    // MARK: Connections

    func allocateConnectionID() -> UInt64 {
        state.withLock { s in
            defer { s.nextConnectionID += 1 }
            return s.nextConnectionID
        }
    }

    func attach(_ c: XenStoreConnection) {
        state.withLock { s in
            s.connections[c.id] = ConnectionRecord(connection: c, domain: c.domid)
        }
    }

    func detach(_ id: UInt64) {
        state.withLock { s in s.connections[id] = nil }
    }

    func process(_ request: XenStoreMessage, from c: XenStoreConnection) {
        state.withLock { s in s.process(request, from: c) }
    }

    /// Watches registered by a connection (tests, diagnostics).
    func watchCount(_ id: UInt64) -> Int { state.withLock { $0.connections[id]?.watches.count ?? 0 } }
    func transactionCount(_ id: UInt64) -> Int { state.withLock { $0.connections[id]?.transactions.count ?? 0 } }

    static func domainID(_ id: Int) throws(XenStoreError) -> UInt16 {
        guard let d = UInt16(exactly: id) else { throw .EINVAL }
        return d
    }
}
