/// One node: a value, an ordered list of child names and a permission list
/// (never empty: the first entry is the owner and default access).
struct Node: Sendable {
    var value: [UInt8]
    var perms: [XenStorePermission]
    var children: [String]
    /// Changes whenever the node does (value, perms, children). 0 is never a
    /// node's generation: transactions use it for "absent".
    var generation: UInt64

    var owner: UInt16 { perms.first?.domainID ?? 0 }
}

/// A change that watches may report: `path` changed (or, with `removed`,
/// `path` and everything below it went away). A watcher hears of it only if
/// one of `permSets` lets it read the node, as in xenstored.
struct ChangeEvent: Sendable {
    var path: String
    var removed: Bool
    var permSets: [[XenStorePermission]]
}

/// What a transaction has touched, for the conflict check at commit.
struct AccessLog: Sendable {
    /// Every path read or written, with its generation in the snapshot
    /// (0: it did not exist).
    var firstSeen: [String: UInt64] = [:]
    /// Paths whose node the transaction replaced or removed.
    var written: Set<String> = []
    /// Changes to report to watches once the transaction commits.
    var events: [ChangeEvent] = []
}

/// A set of nodes that operations run against: the live store, or a
/// transaction's copy (a snapshot that shares storage with the store until
/// either side writes, plus the transaction's own writes).
struct NodeStore: Sendable {
    var nodes: [String: Node]
    /// Nodes owned per domain, for the quota.
    var owned: [UInt16: Int]
    var generation: UInt64
    /// Non-nil inside a transaction.
    var log: AccessLog?

    init() {
        nodes = ["/": Node(value: [], perms: [XenStorePermission(domain: 0, access: .none)], children: [], generation: 1)]
        owned = [0: 1]
        generation = 1
        log = nil
    }

    // MARK: Access primitives (all node access goes through these, so a transaction records it)

    mutating func lookup(_ path: String) -> Node? {
        let n = nodes[path]
        if log != nil && log!.firstSeen[path] == nil {
            log!.firstSeen[path] = n?.generation ?? 0
        }
        return n
    }

    mutating func put(_ path: String, _ node: Node?) {
        let old = lookup(path)
        if let old { owned[old.owner, default: 0] -= 1 }
        if var node {
            generation &+= 1
            if generation == 0 { generation = 1 }
            node.generation = generation
            owned[node.owner, default: 0] += 1
            nodes[path] = node
        } else {
            nodes[path] = nil
        }
        log?.written.insert(path)
    }

    /// xenstored hides whether a node exists from a domain that could not
    /// see it: a missing node is EACCES unless the nearest existing ancestor
    /// grants `needed`.
    mutating func missingError(_ path: String, needed: XenStoreRights, who: Requester) -> XenStoreError {
        var p = XenStorePath.parent(path)
        while let a = p {
            if let n = lookup(a) {
                return who.rights(n.perms).isSuperset(of: needed) ? .ENOENT : .EACCES
            }
            p = XenStorePath.parent(a)
        }
        return .ENOENT
    }

    /// The node at `path` if `who` holds `needed` on it.
    mutating func node(_ path: String, needing needed: XenStoreRights, who: Requester) throws(XenStoreError) -> Node {
        guard let n = lookup(path) else { throw missingError(path, needed: needed, who: who) }
        guard who.rights(n.perms).isSuperset(of: needed) else { throw .EACCES }
        return n
    }

    // MARK: Operations

    mutating func read(_ path: String, who: Requester) throws(XenStoreError) -> [UInt8] {
        try node(path, needing: .read, who: who).value
    }

    mutating func directory(_ path: String, who: Requester) throws(XenStoreError) -> Node {
        try node(path, needing: .read, who: who)
    }

    mutating func permissions(_ path: String, who: Requester) throws(XenStoreError) -> [XenStorePermission] {
        try node(path, needing: .read, who: who).perms
    }

    /// Writes `value`, creating the node and missing ancestors.
    mutating func write(_ path: String, _ value: [UInt8], who: Requester, limits: XenStoreLimits) throws(XenStoreError) -> ChangeEvent {
        if !who.isPrivileged && value.count > limits.maxGuestValueSize { throw .ENOSPC }
        if var n = lookup(path) {
            guard who.rights(n.perms).contains(.write) else { throw .EACCES }
            n.value = value
            put(path, n)
            return ChangeEvent(path: path, removed: false, permSets: [n.perms])
        }
        let perms = try create(path, value: value, who: who, limits: limits)
        return ChangeEvent(path: path, removed: false, permSets: [perms])
    }

    /// Creates the node if missing; nil (nothing changed) if it exists and
    /// `who` may write it.
    mutating func mkdir(_ path: String, who: Requester, limits: XenStoreLimits) throws(XenStoreError) -> ChangeEvent? {
        if let n = lookup(path) {
            guard who.rights(n.perms).contains(.write) else { throw .EACCES }
            return nil
        }
        let perms = try create(path, value: [], who: who, limits: limits)
        return ChangeEvent(path: path, removed: false, permSets: [perms])
    }

    /// Creates `path` and every missing ancestor. New nodes inherit their
    /// parent's permissions; a guest becomes the owner of what it creates.
    /// Needs write access on the nearest existing ancestor.
    private mutating func create(_ path: String, value: [UInt8], who: Requester, limits: XenStoreLimits) throws(XenStoreError) -> [XenStorePermission] {
        var missing = [path]
        var cursor = XenStorePath.parent(path)
        var anchor: Node? = nil
        while let a = cursor {
            if let n = lookup(a) {
                anchor = n
                break
            }
            missing.append(a)
            cursor = XenStorePath.parent(a)
        }
        guard let anchorPath = cursor, var parent = anchor else { throw .ENOENT }  // the root always exists
        guard who.rights(parent.perms).contains(.write) else { throw .EACCES }
        if !who.isPrivileged && owned[who.domain, default: 0] + missing.count > limits.nodesPerDomain {
            throw .ENOSPC
        }
        var parentPath = anchorPath
        var perms = parent.perms
        for p in missing.reversed() {
            perms = parent.perms
            if !who.isPrivileged { perms[0].domain = Int(who.domain) }
            parent.children.append(XenStorePath.name(p))
            put(parentPath, parent)
            let child = Node(value: p == path ? value : [], perms: perms, children: [], generation: 0)
            put(p, child)
            parentPath = p
            parent = child
        }
        return perms
    }

    /// Removes `path` and everything below it. Removing a missing node whose
    /// parent exists succeeds (nil: nothing changed), as in xenstored.
    mutating func remove(_ path: String, who: Requester) throws(XenStoreError) -> ChangeEvent? {
        guard let parentPath = XenStorePath.parent(path) else { throw .EINVAL }  // not the root
        guard let n = lookup(path) else {
            let e = missingError(path, needed: .write, who: who)
            if e == .ENOENT, lookup(parentPath) != nil { return nil }
            throw e
        }
        guard who.rights(n.perms).contains(.write) else { throw .EACCES }
        // Depth-first with an explicit stack: a path may be ~1500 levels deep.
        var stack = [path]
        while let p = stack.popLast() {
            if let node = lookup(p) {
                for c in node.children { stack.append(XenStorePath.join(p, c)) }
            }
            put(p, nil)
        }
        if var parent = lookup(parentPath) {
            let name = XenStorePath.name(path)
            if let i = parent.children.firstIndex(of: name) { parent.children.remove(at: i) }
            put(parentPath, parent)
        }
        return ChangeEvent(path: path, removed: true, permSets: [n.perms])
    }

    /// Replaces the permission list. Needs ownership; a guest may not give
    /// a node away (EPERM), as in xenstored.
    mutating func setPermissions(_ path: String, _ perms: [XenStorePermission], who: Requester, limits: XenStoreLimits) throws(XenStoreError) -> ChangeEvent {
        guard let first = perms.first else { throw .EINVAL }
        var n = try node(path, needing: [.write, .owner], who: who)
        if !who.isPrivileged && first.domainID != n.owner { throw .EPERM }
        let old = n.perms
        n.perms = perms
        put(path, n)
        return ChangeEvent(path: path, removed: false, permSets: [old, perms])
    }
}
