import Testing
import Synchronization
@testable import XenStore

@Suite struct WatchTests {
    @Test func firesOnRegistrationAfterReply() {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 0)
        c.conn.handle(XenStoreMessage(type: .watch, reqID: 77, strings: ["/w", "tok"]))
        let out = c.conn.drainMessages()
        #expect(out.count == 2)
        #expect(out[0].type == .watch && out[0].reqID == 77 && out[0].payloadStrings == ["OK"])
        #expect(out[1].type == .watchEvent && out[1].reqID == 0 && out[1].payload == bytes("/w") + [0] + bytes("tok") + [0])
    }

    @Test func childWriteRemoveAndUnrelated() {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 0)
        #expect(c.watch("/w", "t1") == nil)
        #expect(c.pollEvents().map(\.path) == ["/w"])
        _ = c.write("/w/a/b", "1")
        #expect(c.pollEvents().map { "\($0.path) \($0.token)" } == ["/w/a/b t1"])
        _ = c.write("/w", "self")
        #expect(c.pollEvents().map(\.path) == ["/w"])
        _ = c.write("/wx", "1")  // a sibling sharing the prefix: not below /w
        _ = c.write("/other/w", "1")
        #expect(c.pollEvents().isEmpty)
        _ = c.rm("/w/a")
        #expect(c.pollEvents().map(\.path) == ["/w/a"])
        _ = c.mkdir("/w/a")
        #expect(c.pollEvents().map(\.path) == ["/w/a"])
        _ = c.mkdir("/w/a")  // already there: no change, no event
        #expect(c.pollEvents().isEmpty)
        _ = c.setPerms("/w/a", ["r0"])
        #expect(c.pollEvents().map(\.path) == ["/w/a"])
    }

    @Test func removingAnAncestorFiresWithTheWatchPath() {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 0)
        _ = c.write("/r/s/t/u", "1")
        #expect(c.watch("/r/s/t", "deep") == nil)
        #expect(c.watch("/r/s/t/missing/below", "deeper") == nil)
        _ = c.pollEvents()
        _ = c.rm("/r/s")
        let ev = c.pollEvents().map { "\($0.path) \($0.token)" }.sorted()
        #expect(ev == ["/r/s/t deep", "/r/s/t/missing/below deeper"])
    }

    @Test func unwatchAndErrors() {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 0)
        #expect(c.watch("/u", "a") == nil)
        #expect(c.watch("/u", "a") == .EEXIST)
        #expect(c.watch("/u", "b") == nil)  // same path, other token: a second watch
        _ = c.pollEvents()
        _ = c.write("/u/x", "1")
        #expect(c.pollEvents().map(\.token).sorted() == ["a", "b"])
        #expect(c.unwatch("/u", "a") == nil)
        #expect(c.unwatch("/u", "a") == .ENOENT)
        _ = c.write("/u/x", "2")
        #expect(c.pollEvents().map(\.token) == ["b"])
        #expect(c.watch("bad path", "t") == .EINVAL)
        #expect(c.watch("@somethingElse", "t") == .EINVAL)
        #expect(c.error(c.call(.watch, "/only-path")) == .EINVAL)
        #expect(c.watch("/long", String(repeating: "t", count: 2000)) == .EINVAL)
        #expect(c.conn.watchCount == 1)
    }

    @Test func watchQuota() {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 0)
        for i in 0..<128 { #expect(c.watch("/q/\(i)", "t") == nil) }
        #expect(c.watch("/q/x", "t") == .E2BIG)
        #expect(c.error(c.call(.resetWatches, "")) == nil)
        #expect(c.conn.watchCount == 0)
        #expect(c.watch("/q/x", "t") == nil)
    }

    @Test func eventsCrossConnectionsAndRespectPermissions() {
        let tree = XenStoreTree()
        tree.populateDomain(id: 5, name: "five", vcpus: 1, memoryKiB: 1024)
        tree.populateDomain(id: 6, name: "six", vcpus: 1, memoryKiB: 1024)
        let dom0 = Client(tree, domain: 0)
        let five = Client(tree, domain: 5)
        let six = Client(tree, domain: 6)
        #expect(dom0.watch("/local/domain/5/data", "backend") == nil)
        #expect(six.watch("/local/domain/5", "spy") == nil)  // allowed, and fires once
        #expect(six.pollEvents().map(\.path) == ["/local/domain/5"])
        _ = dom0.pollEvents()
        #expect(five.write("data/hello", "1") == nil)
        #expect(dom0.pollEvents().map(\.path) == ["/local/domain/5/data/hello"])
        #expect(six.pollEvents().isEmpty)  // cannot read the node: hears nothing
    }

    @Test func relativeWatchReportsRelativePaths() {
        let tree = XenStoreTree()
        tree.populateDomain(id: 5, name: "five", vcpus: 1, memoryKiB: 1024)
        let five = Client(tree, domain: 5)
        #expect(five.watch("control/shutdown", "sd") == nil)
        #expect(five.pollEvents().map(\.path) == ["control/shutdown"])
        try? tree.write("/local/domain/5/control/shutdown", "poweroff")
        #expect(five.pollEvents().map { "\($0.path) \($0.token)" } == ["control/shutdown sd"])
        #expect(five.read("control/shutdown") == .success("poweroff"))
        #expect(five.watch("/local/domain/5/memory", "abs") == nil)
        _ = five.pollEvents()
        try? tree.write("/local/domain/5/memory/target", "2048")
        #expect(five.pollEvents().map(\.path) == ["/local/domain/5/memory/target"])
        // Unwatch with the same relative spelling.
        #expect(five.unwatch("control/shutdown", "sd") == nil)
    }

    @Test func specialWatches() {
        let tree = XenStoreTree()
        let dom0 = Client(tree, domain: 0)
        let guest = Client(tree, domain: 5)
        #expect(dom0.watch("@introduceDomain", "in") == nil)
        #expect(dom0.watch("@releaseDomain", "out") == nil)
        #expect(guest.watch("@releaseDomain", "g") == nil)
        #expect(dom0.pollEvents().map(\.path) == ["@introduceDomain", "@releaseDomain"])
        #expect(guest.pollEvents().map(\.path) == ["@releaseDomain"])
        tree.populateDomain(id: 7, name: "seven", vcpus: 1, memoryKiB: 1024)
        #expect(dom0.pollEvents().map(\.token) == ["in"])
        tree.releaseDomain(7)
        #expect(dom0.pollEvents().map(\.token) == ["out"])
        #expect(guest.pollEvents().isEmpty)
        _ = dom0.call(.introduce, "8", "100", "2")
        _ = dom0.call(.release, "8")
        #expect(dom0.events.map(\.token) == ["in", "out"])
    }

    @Test func closeDropsWatches() {
        let tree = XenStoreTree()
        let w = Client(tree, domain: 0)
        let c = Client(tree, domain: 0)
        #expect(w.watch("/z", "t") == nil)
        #expect(w.pollEvents().count == 1)
        w.conn.close()
        _ = c.write("/z/1", "1")
        #expect(!w.conn.hasOutput)
        // A closed connection gets no replies.
        w.conn.handle(XenStoreMessage(type: .read, reqID: 1, strings: ["/z/1"]))
        #expect(!w.conn.hasOutput)
    }

    @Test func eventQueueIsBounded() {
        var limits = XenStoreLimits()
        limits.maxQueuedOutputBytes = 4096
        let tree = XenStoreTree(limits: limits)
        let w = Client(tree, domain: 0)
        let c = Client(tree, domain: 0)
        #expect(w.watch("/flood", "t") == nil)
        for i in 0..<1000 { _ = c.write("/flood/\(i)", "1") }
        #expect(w.conn.pendingOutputBytes <= 4096)
        #expect(w.conn.droppedWatchEvents > 800)  // ~30 bytes an event: ~140 fit
    }
}

@Suite struct OutputNotificationTests {
    final class Counter: Sendable {
        let value = Mutex(0)
        func bump() { value.withLock { $0 += 1 } }
        var count: Int { value.withLock { $0 } }
    }

    @Test func onOutputSignalsRepliesAndForeignEvents() throws {
        let tree = XenStoreTree()
        tree.populateDomain(id: 5, name: "g", vcpus: 1, memoryKiB: 1024)
        let counter = Counter()
        let guest = XenStoreConnection(tree: tree, domainID: 5, onOutput: { counter.bump() })
        guest.handle(XenStoreMessage(type: .watch, reqID: 1, strings: ["control/shutdown", "t"]))
        #expect(counter.count == 2)  // reply, then the initial event
        _ = guest.drainMessages()
        // The host writes: the guest's connection signals without having been asked anything.
        try tree.write("/local/domain/5/control/shutdown", "reboot")
        #expect(counter.count == 3)
        #expect(guest.drainMessages().map(\.payloadStrings) == [["control/shutdown", "t"]])
    }
}
