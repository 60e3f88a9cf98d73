/// Request handling: the wire operations of docs/misc/xenstore.txt on top of
/// the node store. Every reply has the request's type, req_id and tx_id; a
/// failure is an XS_ERROR whose payload is the errno name.
extension TreeState {
    static let ok: [UInt8] = Array("OK".utf8) + [0]

    mutating func process(_ m: XenStoreMessage, from conn: XenStoreConnection) {
        let cid = conn.id
        if connections[cid] == nil {
            // Closed (or never attached): nothing to answer for.
            return
        }
        var after: [(path: String, token: [UInt8])] = []
        let reply: XenStoreMessage
        do throws(XenStoreError) {
            let payload = try dispatch(m, cid: cid, domain: conn.domid, after: &after)
            reply = XenStoreMessage(type: m.type, reqID: m.reqID, txID: m.txID, payload: payload)
        } catch {
            reply = XenStoreMessage(type: .error, reqID: m.reqID, txID: m.txID, payload: error.wirePayload)
        }
        conn.enqueueReply(reply)
        for e in after { conn.enqueueEvent(path: e.path, token: e.token) }
    }

    private mutating func dispatch(_ m: XenStoreMessage, cid: UInt64, domain: UInt16,
                                   after: inout [(path: String, token: [UInt8])]) throws(XenStoreError) -> [UInt8] {
        let who = requester(domain)
        let tx = m.txID
        // A tx_id must name an open transaction of this connection, whatever the type.
        if tx != 0 && connections[cid]?.transactions[tx] == nil { throw .ENOENT }
        let limits = self.limits

        switch m.type {
        case .read:
            let path = try XenStorePath.canonical(try Args.one(m.payload), domain: domain).path
            return try inspect(connection: cid, txID: tx) { s throws(XenStoreError) in try s.read(path, who: who) }

        case .write:
            let (rawPath, value) = try Args.pathAndValue(m.payload)
            let path = try XenStorePath.canonical(rawPath, domain: domain).path
            try mutate(connection: cid, txID: tx) { s throws(XenStoreError) in try s.write(path, value, who: who, limits: limits) }
            return Self.ok

        case .mkdir:
            let path = try XenStorePath.canonical(try Args.one(m.payload), domain: domain).path
            try mutate(connection: cid, txID: tx) { s throws(XenStoreError) in try s.mkdir(path, who: who, limits: limits) }
            return Self.ok

        case .rm:
            let path = try XenStorePath.canonical(try Args.one(m.payload), domain: domain).path
            try mutate(connection: cid, txID: tx) { s throws(XenStoreError) in try s.remove(path, who: who) }
            return Self.ok

        case .directory:
            let path = try XenStorePath.canonical(try Args.one(m.payload), domain: domain).path
            let node = try inspect(connection: cid, txID: tx) { s throws(XenStoreError) in try s.directory(path, who: who) }
            var out: [UInt8] = []
            for c in node.children {
                out.append(contentsOf: c.utf8)
                out.append(0)
            }
            // Too long for one reply: the client must use XS_DIRECTORY_PART.
            guard out.count <= XenStoreMessage.maxPayload else { throw .E2BIG }
            return out

        case .directoryPart:
            let args = try Args.exactly(2, m.payload)
            let path = try XenStorePath.canonical(args[0], domain: domain).path
            guard let offset = parseDecimal(args[1], maxDigits: 10) else { throw .EINVAL }
            let node = try inspect(connection: cid, txID: tx) { s throws(XenStoreError) in try s.directory(path, who: who) }
            return try Self.directoryPart(node, offset: offset)

        case .getPerms:
            let path = try XenStorePath.canonical(try Args.one(m.payload), domain: domain).path
            let perms = try inspect(connection: cid, txID: tx) { s throws(XenStoreError) in try s.permissions(path, who: who) }
            var out: [UInt8] = []
            for p in perms {
                out.append(contentsOf: p.description.utf8)
                out.append(0)
            }
            return out

        case .setPerms:
            let args = try Args.all(m.payload)
            guard args.count >= 2 else { throw .EINVAL }
            let path = try XenStorePath.canonical(args[0], domain: domain).path
            var perms: [XenStorePermission] = []
            for a in args.dropFirst() {
                guard let p = XenStorePermission.parse(a) else { throw .EINVAL }
                perms.append(p)
            }
            try mutate(connection: cid, txID: tx) { s throws(XenStoreError) in try s.setPermissions(path, perms, who: who, limits: limits) }
            return Self.ok

        case .watch, .unwatch:
            let args = try Args.exactly(2, m.payload)
            let watch = try Self.parseWatch(args[0], token: args[1], domain: domain, limits: limits)
            guard var record = connections.removeValue(forKey: cid) else { throw .EINVAL }
            defer { connections[cid] = record }
            let existing = record.watches.firstIndex { $0.path == watch.path && $0.token == watch.token }
            if m.type == .watch {
                guard existing == nil else { throw .EEXIST }
                guard record.watches.count < limits.watchesPerConnection else { throw .E2BIG }
                record.watches.append(watch)
                // xenstored fires a new watch once, after the reply.
                let reported = watch.relative ? XenStorePath.relativize(watch.path, domain: domain) : watch.path
                after.append((reported, watch.token))
            } else {
                guard let i = existing else { throw .ENOENT }
                record.watches.remove(at: i)
            }
            return Self.ok

        case .transactionStart:
            // The payload (normally one empty string) carries nothing; xenstored ignores it too.
            guard tx == 0 else { throw .EBUSY }
            guard var record = connections.removeValue(forKey: cid) else { throw .EINVAL }
            defer { connections[cid] = record }
            guard record.transactions.count < limits.transactionsPerConnection else { throw .ENOSPC }
            var id = record.nextTransactionID
            while id == 0 || record.transactions[id] != nil { id &+= 1 }
            record.nextTransactionID = id &+ 1
            var view = store
            view.log = AccessLog()
            record.transactions[id] = view
            return Array(String(id).utf8) + [0]

        case .transactionEnd:
            guard tx != 0 else { throw .ENOENT }
            let arg = try Args.one(m.payload)
            let commit: Bool
            if arg.elementsEqual("T".utf8) {
                commit = true
            } else if arg.elementsEqual("F".utf8) {
                commit = false
            } else {
                throw .EINVAL
            }
            guard let view = connections[cid]?.transactions.removeValue(forKey: tx) else { throw .ENOENT }
            if commit { try self.commit(view, domain: domain) }
            return Self.ok

        case .getDomainPath:
            guard let id = parseDomainID(try Args.one(m.payload)) else { throw .EINVAL }
            return Array(XenStorePath.domainPath(id).utf8) + [0]

        case .isDomainIntroduced:
            guard who.isPrivileged else { throw .EACCES }
            guard let id = parseDomainID(try Args.one(m.payload)) else { throw .EINVAL }
            return Array((introduced.contains(id) ? "T" : "F").utf8) + [0]

        case .introduce:
            guard who.isPrivileged else { throw .EACCES }
            let args = try Args.exactly(3, m.payload)
            guard let id = parseDomainID(args[0]), id != 0,
                  parseDecimal(args[1], maxDigits: 20) != nil, parseDecimal(args[2], maxDigits: 10) != nil
            else { throw .EINVAL }
            if introduced.insert(id).inserted { fireSpecial(XenStorePath.introduceDomain) }
            return Self.ok

        case .release:
            guard who.isPrivileged else { throw .EACCES }
            guard let id = parseDomainID(try Args.one(m.payload)), id != 0 else { throw .EINVAL }
            guard introduced.remove(id) != nil else { throw .ENOENT }
            targets[id] = nil
            fireSpecial(XenStorePath.releaseDomain)
            return Self.ok

        case .resume:
            guard who.isPrivileged else { throw .EACCES }
            guard let id = parseDomainID(try Args.one(m.payload)) else { throw .EINVAL }
            guard introduced.contains(id) else { throw .ENOENT }
            return Self.ok

        case .setTarget:
            guard who.isPrivileged else { throw .EACCES }
            let args = try Args.exactly(2, m.payload)
            guard let id = parseDomainID(args[0]), let target = parseDomainID(args[1]), id != 0 else { throw .EINVAL }
            targets[id] = target
            return Self.ok

        case .resetWatches:
            guard var record = connections.removeValue(forKey: cid) else { throw .EINVAL }
            record.watches.removeAll()
            record.transactions.removeAll()
            connections[cid] = record
            return Self.ok

        case .control:
            guard who.isPrivileged else { throw .EACCES }
            throw .ENOSYS

        default:
            // XS_WATCH_EVENT and XS_ERROR are never requests; the rest are unknown.
            throw .ENOSYS
        }
    }

    static func parseWatch(_ rawPath: ArraySlice<UInt8>, token: ArraySlice<UInt8>, domain: UInt16, limits: XenStoreLimits) throws(XenStoreError) -> Watch {
        guard token.count <= limits.maxWatchTokenLength else { throw .EINVAL }
        if rawPath.first == UInt8(ascii: "@") {
            let name = String(decoding: rawPath, as: UTF8.self)
            guard name == XenStorePath.introduceDomain || name == XenStorePath.releaseDomain else { throw .EINVAL }
            return Watch(path: name, token: Array(token), relative: false)
        }
        let (path, relative) = try XenStorePath.canonical(rawPath, domain: domain)
        return Watch(path: path, token: Array(token), relative: relative)
    }

    /// XS_DIRECTORY_PART: `generation\0` then the child names (each with its
    /// NUL) starting `offset` bytes into the full list, as many as fit; a
    /// final extra NUL when the list ends in this chunk.
    static func directoryPart(_ node: Node, offset: Int) throws(XenStoreError) -> [UInt8] {
        var all: [UInt8] = []
        for c in node.children {
            all.append(contentsOf: c.utf8)
            all.append(0)
        }
        guard offset <= all.count else { throw .EINVAL }
        var out = Array(String(node.generation).utf8) + [0]
        let room = XenStoreMessage.maxPayload - out.count - 1
        var end = offset
        while end < all.count {
            guard let nul = all[end...].firstIndex(of: 0) else { break }
            if nul + 1 - offset > room { break }
            end = nul + 1
        }
        out.append(contentsOf: all[offset..<end])
        if end == all.count { out.append(0) }
        return out
    }
}

/// Splitting request payloads into their NUL-terminated arguments.
enum Args {
    /// The single argument of a one-string request: the payload must be
    /// exactly `string\0`.
    static func one(_ p: [UInt8], allowEmpty: Bool = false) throws(XenStoreError) -> ArraySlice<UInt8> {
        guard let nul = p.firstIndex(of: 0), nul == p.count - 1 else { throw .EINVAL }
        if !allowEmpty && nul == 0 { throw .EINVAL }
        return p[..<nul]
    }

    /// XS_WRITE: `path\0` then the value (any bytes, not terminated).
    static func pathAndValue(_ p: [UInt8]) throws(XenStoreError) -> (ArraySlice<UInt8>, [UInt8]) {
        guard let nul = p.firstIndex(of: 0) else { throw .EINVAL }
        return (p[..<nul], Array(p[(nul + 1)...]))
    }

    /// Every NUL-terminated string; the payload must end with a NUL.
    static func all(_ p: [UInt8]) throws(XenStoreError) -> [ArraySlice<UInt8>] {
        guard p.last == 0 else { throw .EINVAL }
        var out: [ArraySlice<UInt8>] = []
        var start = 0
        for i in p.indices where p[i] == 0 {
            out.append(p[start..<i])
            start = i + 1
        }
        return out
    }

    static func exactly(_ n: Int, _ p: [UInt8]) throws(XenStoreError) -> [ArraySlice<UInt8>] {
        let a = try all(p)
        guard a.count == n else { throw .EINVAL }
        return a
    }
}
