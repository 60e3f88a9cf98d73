import Testing
@testable import XenStore

@Suite struct TransactionTests {
    @Test func commitAppliesAndIsolates() throws {
        let tree = XenStoreTree()
        let a = Client(tree, domain: 0)
        let b = Client(tree, domain: 0)
        #expect(a.write("/t/old", "1") == nil)
        let tx = try #require(a.start())
        #expect(tx != 0)
        #expect(a.write("/t/new", "2", tx: tx) == nil)
        #expect(a.write("/t/old", "3", tx: tx) == nil)
        #expect(a.rm("/t/old", tx: tx) == nil)
        #expect(a.write("/t/deep/x", "4", tx: tx) == nil)
        // Inside: own writes. Outside: the store as it was.
        #expect(a.read("/t/new", tx: tx) == .success("2"))
        #expect(a.read("/t/old", tx: tx) == .failure(.ENOENT))
        #expect(a.directory("/t", tx: tx) == .success(["new", "deep"]))
        #expect(b.read("/t/new") == .failure(.ENOENT))
        #expect(b.read("/t/old") == .success("1"))
        #expect(a.end(tx, commit: true) == nil)
        #expect(b.read("/t/new") == .success("2"))
        #expect(b.read("/t/old") == .failure(.ENOENT))
        #expect(b.read("/t/deep/x") == .success("4"))
        #expect(b.directory("/t") == .success(["new", "deep"]))
        // The id is gone.
        #expect(a.read("/t/new", tx: tx) == .failure(.ENOENT))
        #expect(a.end(tx, commit: true) == .ENOENT)
    }

    @Test func abortDiscards() {
        let tree = XenStoreTree()
        let a = Client(tree, domain: 0)
        let tx = a.start()!
        #expect(a.write("/gone", "x", tx: tx) == nil)
        #expect(a.end(tx, commit: false) == nil)
        #expect(a.read("/gone") == .failure(.ENOENT))
        #expect(a.conn.transactionCount == 0)
    }

    @Test func conflictIsEAGAIN() {
        let tree = XenStoreTree()
        let a = Client(tree, domain: 0)
        let b = Client(tree, domain: 0)
        _ = a.write("/c/x", "0")
        let tx = a.start()!
        #expect(a.read("/c/x", tx: tx) == .success("0"))
        #expect(a.write("/c/y", "from-tx", tx: tx) == nil)
        #expect(b.write("/c/x", "changed") == nil)
        #expect(a.end(tx, commit: true) == .EAGAIN)
        #expect(a.read("/c/y") == .failure(.ENOENT))  // nothing applied
        #expect(a.conn.transactionCount == 0)
    }

    @Test func conflictOnCreatedOrRemovedNodes() {
        let tree = XenStoreTree()
        let a = Client(tree, domain: 0)
        let b = Client(tree, domain: 0)
        _ = a.mkdir("/d")
        // The tx saw /d/n absent; someone creates it.
        var tx = a.start()!
        #expect(a.read("/d/n", tx: tx) == .failure(.ENOENT))
        _ = b.write("/d/n", "1")
        #expect(a.end(tx, commit: true) == .EAGAIN)
        // The tx listed /d; someone removes a child.
        tx = a.start()!
        #expect(a.directory("/d", tx: tx) == .success(["n"]))
        _ = b.rm("/d/n")
        #expect(a.end(tx, commit: true) == .EAGAIN)
    }

    @Test func unrelatedChangesDoNotConflict() {
        let tree = XenStoreTree()
        let a = Client(tree, domain: 0)
        let b = Client(tree, domain: 0)
        _ = a.write("/u/a/x", "0")
        _ = a.write("/u/b/x", "0")
        let tx = a.start()!
        #expect(a.write("/u/a/x", "1", tx: tx) == nil)
        #expect(b.write("/u/b/x", "1") == nil)
        #expect(a.end(tx, commit: true) == nil)
        #expect(a.read("/u/a/x") == .success("1"))
        #expect(a.read("/u/b/x") == .success("1"))
    }

    @Test func errorsAndLimits() {
        let tree = XenStoreTree()
        let a = Client(tree, domain: 0)
        #expect(a.read("/x", tx: 4242) == .failure(.ENOENT))
        #expect(a.end(4242, commit: true) == .ENOENT)
        #expect(a.error(a.call(.transactionEnd, "T")) == .ENOENT)  // no tx id
        let tx = a.start()!
        #expect(a.error(a.call(.transactionEnd, "maybe", tx: tx)) == .EINVAL)
        #expect(a.error(a.call(.transactionStart, "", tx: tx)) == .EBUSY)
        #expect(a.end(tx, commit: false) == nil)
        var ids: Set<UInt32> = []
        for _ in 0..<16 { ids.insert(a.start()!) }
        #expect(ids.count == 16)
        #expect(a.start() == nil)
        #expect(a.error(a.call(.transactionStart, "")) == .ENOSPC)
        // Another connection does not see these ids.
        let b = Client(tree, domain: 0)
        #expect(b.read("/", tx: ids.first!) == .failure(.ENOENT))
        // reset_watches also ends them.
        #expect(a.error(a.call(.resetWatches, "")) == nil)
        #expect(a.conn.transactionCount == 0)
    }

    @Test func watchesFireAtCommit() {
        let tree = XenStoreTree()
        let w = Client(tree, domain: 0)
        let a = Client(tree, domain: 0)
        #expect(w.watch("/tw", "tok") == nil)
        _ = w.pollEvents()
        let tx = a.start()!
        _ = a.write("/tw/x", "1", tx: tx)
        #expect(w.pollEvents().isEmpty)
        #expect(a.end(tx, commit: true) == nil)
        #expect(w.pollEvents().map(\.path) == ["/tw/x"])
        // An aborted transaction fires nothing.
        let tx2 = a.start()!
        _ = a.write("/tw/y", "1", tx: tx2)
        _ = a.end(tx2, commit: false)
        #expect(w.pollEvents().isEmpty)
    }

    @Test func guestTransactionRespectsPermissionsAndQuota() {
        var limits = XenStoreLimits()
        limits.nodesPerDomain = 40
        let tree = XenStoreTree(limits: limits)
        tree.populateDomain(id: 5, name: "g", vcpus: 1, memoryKiB: 1024)
        let g = Client(tree, domain: 5)
        let tx = g.start()!
        #expect(g.write("name", "x", tx: tx) == .EACCES)
        #expect(g.write("data/t", "1", tx: tx) == nil)
        #expect(g.end(tx, commit: true) == nil)
        #expect(g.read("data/t") == .success("1"))
        let owned = tree.nodesOwned(by: 5)
        let tx2 = g.start()!
        var failed = false
        for i in 0..<100 where g.write("data/q\(i)", "1", tx: tx2) != nil { failed = true }
        #expect(failed)
        #expect(g.end(tx2, commit: true) == nil)
        #expect(tree.nodesOwned(by: 5) == 40)
        #expect(owned < 40)
    }
}
