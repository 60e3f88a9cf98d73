import Testing
@testable import XenStore

@Suite struct FuzzTests {
    static let pathPool = [
        "name", "data", "data/a", "data/a/b", "data/c", "/local/domain/5/data/x", "/", "/local", "control/shutdown",
        "device", "/local/domain/6/name", "/local/domain/0", "memory/target", "bad path", "", "@releaseDomain",
        "@introduceDomain", "a//b", "/trailing/", "data/\u{0}", "../x", "data/" + String(repeating: "L", count: 2100),
        "/tool/xenstored", "cpu/0/availability", "data/x/y/z/w", "/vm",
    ]

    /// One request, shaped to reach deep into the handlers most of the time.
    /// `txIDs`: transactions the server handed out lately, so that some
    /// requests name a live one.
    static func randomMessage(_ rng: inout SplitMix, txIDs: [UInt32] = []) -> [UInt8] {
        func pick<T>(_ a: [T]) -> T { a[Int.random(in: 0..<a.count, using: &rng)] }
        func randomBytes(_ max: Int) -> [UInt8] {
            (0..<Int.random(in: 0...max, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        let kind = Int.random(in: 0..<10, using: &rng)
        let tx: UInt32 = switch Int.random(in: 0..<12, using: &rng) {
        case 0: UInt32.random(in: 0...4, using: &rng)
        case 1, 2, 3: txIDs.isEmpty ? 0 : pick(txIDs)
        default: 0
        }
        let reqID = UInt32.random(in: 0...9, using: &rng)
        switch kind {
        case 0:
            // Junk bytes: headers with any length, including huge ones.
            return randomBytes(40)
        case 1:
            // A well-formed header around a random payload of any type.
            let t = XenStoreMessageType(rawValue: UInt32.random(in: 0...30, using: &rng))
            return XenStoreMessage(type: t, reqID: reqID, txID: tx, payload: randomBytes(300)).encoded()
        case 2, 3:
            // Plausible requests with a random number of random arguments.
            let t = XenStoreMessageType(rawValue: UInt32.random(in: 0...23, using: &rng))
            var payload: [UInt8] = []
            for _ in 0..<Int.random(in: 0...3, using: &rng) {
                payload.append(contentsOf: pick(pathPool).utf8)
                if Int.random(in: 0..<8, using: &rng) != 0 { payload.append(0) }
            }
            if Bool.random(using: &rng) {
                payload.append(contentsOf: pick(["n5", "r0", "b6", "w5", "x", "r99999", "T", "F", "5", "12"]).utf8)
                payload.append(0)
            }
            return XenStoreMessage(type: t, reqID: reqID, txID: tx, payload: payload).encoded()
        default:
            // Requests of the right shape for their type, so the handlers run to the end.
            let t = pick([XenStoreMessageType.read, .write, .write, .mkdir, .rm, .directory, .directoryPart, .getPerms,
                          .setPerms, .watch, .unwatch, .transactionStart, .transactionEnd, .getDomainPath,
                          .isDomainIntroduced, .introduce, .release, .resetWatches])
            let path = pick(pathPool)
            var args: [String]
            switch t {
            case .write: args = [path]
            case .directoryPart: args = [path, pick(["0", "5", "100000"])]
            case .setPerms: args = [path] + (0..<Int.random(in: 1...3, using: &rng)).map { _ in pick(["n5", "r0", "b6", "w5", "n0", "r5"]) }
            case .watch, .unwatch: args = [path, pick(["tokA", "tokB", ""])]
            case .transactionStart, .resetWatches: args = [""]
            case .transactionEnd: args = [pick(["T", "F"])]
            case .getDomainPath, .isDomainIntroduced, .release: args = [pick(["0", "5", "6", "9"])]
            case .introduce: args = [pick(["5", "9"]), "1234", "7"]
            default: args = [path]
            }
            var payload = XenStoreMessage(type: t, strings: args).payload
            if t == .write {
                payload.append(contentsOf: randomBytes(64))
            }
            return XenStoreMessage(type: t, reqID: reqID, txID: t == .transactionStart ? 0 : tx, payload: payload).encoded()
        }
    }

    @Test func randomMessagesThroughTheRingNeverTrap() {
        var rng = SplitMix(seed: 0x5eed_1234)
        let tree = XenStoreTree()
        tree.populateDomain(id: 5, name: "five", vcpus: 2, memoryKiB: 65536)
        tree.populateDomain(id: 6, name: "six", vcpus: 1, memoryKiB: 65536)
        let domains = [5, 5, 0, 6]
        var domainIndex = 0
        let guest = GuestSide()
        var conn = XenStoreConnection(tree: tree, domainID: domains[0])
        var ring = XenStoreRing(page: guest.page)
        var pending: [UInt8] = []
        var sent = 0
        var failures = 0
        var replyBytes = 0
        var replyStream: [UInt8] = []
        var txIDs: [UInt32] = []
        var commits = 0
        while sent < 100_000 {
            pending.append(contentsOf: Self.randomMessage(&rng, txIDs: txIDs))
            sent += 1
            // The guest writes a random amount of what it has.
            let want = Int.random(in: 1...max(1, pending.count), using: &rng)
            let n = guest.send(pending.prefix(want))
            pending.removeFirst(n)
            _ = ring.service(connection: conn)
            // And reads a random amount of what came back.
            let got = guest.receive(max: Int.random(in: 0...4096, using: &rng))
            replyBytes += got.count
            replyStream.append(contentsOf: got)
            while let (m, n) = try? XenStoreMessage.parse(replyStream) {
                replyStream.removeFirst(n)
                if m.type == .transactionStart, let id = UInt32(m.payloadStrings.first ?? "") {
                    txIDs.append(id)
                    if txIDs.count > 8 { txIDs.removeFirst() }
                }
                if m.type == .transactionEnd { commits += 1 }
            }
            // Occasionally the guest garbles an index.
            if Int.random(in: 0..<20_000, using: &rng) == 0 {
                guest.reqProd &+= UInt32.random(in: 1025...UInt32.max, using: &rng)
                _ = ring.service(connection: conn)
            }
            if ring.failure != nil || pending.count > 16 * 1024 {
                if ring.failure != nil { failures += 1 }
                // Reconnect, as a toolstack would after tearing the guest down.
                conn.close()
                domainIndex = (domainIndex + 1) % domains.count
                conn = XenStoreConnection(tree: tree, domainID: domains[domainIndex])
                XenStoreRing.initialize(page: guest.page)
                ring = XenStoreRing(page: guest.page)
                pending.removeAll()
                replyStream.removeAll()
                txIDs.removeAll()
            }
        }
        #expect(failures > 10)
        #expect(commits > 100)
        #expect(replyBytes > 1_000_000)
        #expect(tree.exists("/local/domain/5"))
        // The store still works (the fuzz may have changed domain 5's nodes
        // as dom0, so lay them out again first).
        tree.populateDomain(id: 5, name: "five", vcpus: 2, memoryKiB: 65536)
        let c = Client(tree, domain: 5)
        #expect(c.write("data/after-fuzz", "ok") == nil)
        #expect(c.read("data/after-fuzz") == .success("ok"))
    }

    @Test func randomRequestsDirectlyNeverTrap() {
        var rng = SplitMix(seed: 77)
        let tree = XenStoreTree()
        tree.populateDomain(id: 5, name: "five", vcpus: 2, memoryKiB: 65536)
        let conns = [XenStoreConnection(tree: tree, domainID: 5), XenStoreConnection(tree: tree, domainID: 0)]
        var replies = 0
        var txIDs: [[UInt32]] = [[], []]
        var outcomes: Set<String> = []
        for i in 0..<20_000 {
            let which = i % 2
            let wire = Self.randomMessage(&rng, txIDs: txIDs[which])
            guard let (m, _) = try? XenStoreMessage.parse(wire) else { continue }
            let conn = conns[which]
            conn.handle(m)
            for r in conn.drainMessages() where r.type != .watchEvent {
                replies += 1
                #expect(r.reqID == m.reqID && r.payload.count <= XenStoreMessage.maxPayload)
                outcomes.insert(r.type == .error ? r.payloadStrings.first ?? "" : r.type.description)
                if r.type == .transactionStart, let id = UInt32(r.payloadStrings.first ?? "") {
                    txIDs[which].append(id)
                    if txIDs[which].count > 8 { txIDs[which].removeFirst() }
                }
            }
        }
        #expect(replies > 10_000)
        // Every operation ran to success at least once, and the usual errors came up.
        for expected in ["XS_READ", "XS_WRITE", "XS_MKDIR", "XS_RM", "XS_DIRECTORY", "XS_DIRECTORY_PART", "XS_GET_PERMS",
                         "XS_SET_PERMS", "XS_WATCH", "XS_UNWATCH", "XS_TRANSACTION_START", "XS_TRANSACTION_END",
                         "XS_GET_DOMAIN_PATH", "XS_INTRODUCE", "XS_RELEASE", "XS_RESET_WATCHES",
                         "EINVAL", "ENOENT", "EACCES", "ENOSYS", "EPERM"] {
            #expect(outcomes.contains(expected), "\(expected)")
        }
    }
}
