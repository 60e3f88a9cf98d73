import Testing
@testable import XenStore

@Suite struct TreeTests {
    @Test func writeReadMkdirDirectory() throws {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 0)
        #expect(c.write("/a/b/c", "hello") == nil)
        #expect(c.read("/a/b/c") == .success("hello"))
        #expect(c.read("/a/b") == .success(""))  // created on the way, empty
        #expect(c.read("/a/x") == .failure(.ENOENT))
        #expect(c.mkdir("/a/d") == nil)
        #expect(c.mkdir("/a/d") == nil)  // exists: fine
        #expect(c.write("/a/e", "") == nil)
        #expect(c.directory("/a") == .success(["b", "d", "e"]))
        #expect(c.directory("/a/d") == .success([]))
        #expect(c.directory("/nope") == .failure(.ENOENT))
        #expect(c.write("/a/b/c", "again") == nil)
        #expect(c.read("/a/b/c") == .success("again"))
        #expect(try tree.readString("/a/b/c") == "again")
    }

    @Test func emptyDirectoryReplyIsEmpty() {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 0)
        _ = c.mkdir("/empty")
        let r = c.call(.directory, "/empty")
        #expect(r.type == .directory && r.payload.isEmpty)
    }

    @Test func valuesAreBytes() throws {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 0)
        let value: [UInt8] = [0, 1, 2, 255, 0, 10]
        c.call(.write, payload: bytes("/bin") + [0] + value)
        let r = c.call(.read, "/bin")
        #expect(r.type == .read && r.payload == value)
        #expect(try tree.read("/bin") == value)
    }

    @Test func removeIsRecursive() {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 0)
        _ = c.write("/t/x/y/z", "1")
        _ = c.write("/t/x/w", "2")
        _ = c.write("/t/keep", "3")
        let before = tree.nodeCount
        #expect(c.rm("/t/x") == nil)
        #expect(tree.nodeCount == before - 4)
        #expect(c.read("/t/x/y/z") == .failure(.ENOENT))
        #expect(c.read("/t/x") == .failure(.ENOENT))
        #expect(c.directory("/t") == .success(["keep"]))
        // Missing node whose parent exists: OK, as in xenstored.
        #expect(c.rm("/t/x") == nil)
        // Missing parent: ENOENT.
        #expect(c.rm("/t/x/y") == .ENOENT)
        #expect(c.rm("/") == .EINVAL)
    }

    @Test func relativePaths() throws {
        let tree = XenStoreTree()
        tree.populateDomain(id: 7, name: "g", vcpus: 1, memoryKiB: 1024)
        let g = Client(tree, domain: 7)
        #expect(g.write("data/x", "rel") == nil)
        #expect(try tree.readString("/local/domain/7/data/x") == "rel")
        #expect(g.read("/local/domain/7/data/x") == .success("rel"))
        #expect(g.read("name") == .success("g"))
        let d = Client(tree, domain: 0)
        #expect(d.write("scratch", "0") == nil)
        #expect(try tree.readString("/local/domain/0/scratch") == "0")
        #expect(try tree.readString("data/x", as: 7) == "rel")
    }

    @Test func getDomainPath() {
        let tree = XenStoreTree()
        let g = Client(tree, domain: 3)
        #expect(g.call(.getDomainPath, "12").payloadStrings == ["/local/domain/12"])
        #expect(g.call(.getDomainPath, "x").type == .error)
        #expect(g.call(.getDomainPath, "99999").type == .error)
    }

    @Test func directoryPart() {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 0)
        // 300 children of 20-byte names: 6300 bytes, too much for one XS_DIRECTORY.
        var names: [String] = []
        for i in 0..<300 {
            let n = "child-\(String(repeating: "x", count: 10))\(1000 + i)"
            names.append(n)
            _ = c.mkdir("/big/\(n)")
        }
        #expect(c.directory("/big") == .failure(.E2BIG))
        var got: [String] = []
        var offset = 0
        var generation: String? = nil
        var rounds = 0
        while rounds < 10 {
            rounds += 1
            let r = c.call(.directoryPart, "/big", String(offset))
            #expect(r.type == .directoryPart)
            #expect(r.payload.count <= XenStoreMessage.maxPayload)
            let parts = r.payload.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            if let generation { #expect(parts[0] == generation) }
            generation = parts[0]
            // parts: gen, names..., then "" (from the last NUL), and another "" if this is the end.
            let chunk = parts.dropFirst().dropLast()
            let ended = chunk.last == ""
            let chunkNames = ended ? Array(chunk.dropLast()) : Array(chunk)
            got.append(contentsOf: chunkNames)
            offset += chunkNames.reduce(0) { $0 + $1.utf8.count + 1 }
            if ended { break }
        }
        #expect(got == names)
        #expect(rounds == 2)
        #expect(c.call(.directoryPart, "/big", "999999").type == .error)
    }

    @Test func hostAPI() throws {
        let tree = XenStoreTree()
        try tree.write("/h/v", "1")
        try tree.mkdir("/h/d")
        #expect(try tree.directory("/h") == ["v", "d"])
        #expect(tree.exists("/h/v"))
        try tree.remove("/h")
        #expect(!tree.exists("/h/v"))
        #expect(throws: XenStoreError.EINVAL) { try tree.write("bad path", "x") }
        #expect(throws: XenStoreError.E2BIG) { try tree.write("/big", [UInt8](repeating: 1, count: 5000)) }
        #expect(throws: XenStoreError.EINVAL) { try tree.read("/x", as: 70000) }
        #expect(tree.exists("/local/domain/0/name"))
        #expect(try tree.readString("/local/domain/0/name") == "Domain-0")
    }
}

extension Result where Failure == XenStoreError {
    var error: XenStoreError? {
        if case .failure(let e) = self { return e }
        return nil
    }
}
