import Testing
@testable import XenStore

@Suite struct MessageTests {
    @Test func encodeParseRoundTrip() throws {
        let m = XenStoreMessage(type: .write, reqID: 0x01020304, txID: 9, payload: bytes("a") + [0] + bytes("value"))
        let wire = m.encoded()
        #expect(wire.count == 16 + 7)
        #expect(Array(wire[0..<16]) == [11, 0, 0, 0, 4, 3, 2, 1, 9, 0, 0, 0, 7, 0, 0, 0])
        #expect(try XenStoreMessage(bytes: wire) == m)
        let parsed = try #require(try XenStoreMessage.parse(wire + [1, 2, 3]))
        #expect(parsed.message == m && parsed.length == 23)
    }

    @Test func incompleteAndOversized() throws {
        let wire = XenStoreMessage(type: .read, payload: bytes("/x") + [0]).encoded()
        for n in 0..<wire.count {
            #expect(try XenStoreMessage.parse(Array(wire.prefix(n))) == nil)
        }
        #expect(throws: XenStoreMessageError.truncated(needed: 19, available: 18)) {
            try XenStoreMessage(bytes: Array(wire.prefix(18)))
        }
        #expect(throws: XenStoreMessageError.trailingBytes(count: 1)) { try XenStoreMessage(bytes: wire + [0]) }
        // len 4097 is refused as soon as the header is there, without waiting for the payload.
        var big = XenStoreMessage(type: .write, payload: []).encoded()
        big[12] = 0x01
        big[13] = 0x10
        #expect(throws: XenStoreMessageError.payloadTooLarge(length: 4097)) { try XenStoreMessage.parse(big) }
        big[12] = 0xff; big[13] = 0xff; big[14] = 0xff; big[15] = 0xff
        #expect(throws: XenStoreMessageError.payloadTooLarge(length: 0xffff_ffff)) { try XenStoreMessage.parse(big) }
        // Exactly 4096 is fine.
        let max = XenStoreMessage(type: .write, payload: [UInt8](repeating: 0x41, count: 4096)).encoded()
        #expect(try XenStoreMessage.parse(max)?.length == 4112)
        #expect("\(XenStoreMessageError.payloadTooLarge(length: 4097))".contains("4096"))
    }

    @Test func typeNames() {
        #expect(XenStoreMessageType.directoryPart.rawValue == 22)
        #expect(XenStoreMessageType.resetWatches.rawValue == 21)
        #expect("\(XenStoreMessageType.watchEvent)" == "XS_WATCH_EVENT")
        #expect("\(XenStoreMessageType(rawValue: 99))" == "XS_UNKNOWN(99)")
    }

    @Test func unknownAndReplyOnlyTypes() {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 5)
        for t: UInt32 in [20, 23, 99, 0xffff, 0xffff_ffff, 15, 16] {
            let r = c.call(XenStoreMessageType(rawValue: t), payload: bytes("/x") + [0])
            #expect(r.type == .error && r.payloadStrings == ["ENOSYS"], "type \(t)")
        }
    }

    @Test func malformedArguments() {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 0)
        _ = c.write("/ok", "1")
        // Not NUL-terminated, empty, two strings where one is expected.
        #expect(c.error(c.call(.read, payload: bytes("/ok"))) == .EINVAL)
        #expect(c.error(c.call(.read, payload: [])) == .EINVAL)
        #expect(c.error(c.call(.read, payload: [0])) == .EINVAL)
        #expect(c.error(c.call(.read, payload: bytes("/ok") + [0, 0])) == .EINVAL)
        #expect(c.error(c.call(.rm, payload: bytes("/ok"))) == .EINVAL)
        #expect(c.error(c.call(.write, payload: bytes("/ok"))) == .EINVAL)  // no NUL after the path
        #expect(c.error(c.call(.watch, payload: bytes("/ok") + [0] + bytes("tok"))) == .EINVAL)
        #expect(c.error(c.call(.getDomainPath, payload: bytes("1"))) == .EINVAL)
        #expect(c.error(c.call(.setPerms, payload: bytes("/ok") + [0] + bytes("n0"))) == .EINVAL)
        #expect(c.read("/ok") == .success("1"))
    }

    @Test(arguments: [
        "/a b", "/a//b", "/a/", "//", "/a.b", "/a\u{7f}", "/ä", "/a\tb", "/a\\b", "@introduceDomain",
        "/local/domain/0/\(String(repeating: "x", count: 2049))",
        "/\(String(repeating: "y", count: 3072))",
    ])
    func invalidPaths(path: String) {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 0)
        #expect(c.write(path, "v") == .EINVAL)
        #expect(c.read(path) == .failure(.EINVAL))
        #expect(c.mkdir(path) == .EINVAL)
        #expect(c.rm(path) == .EINVAL)
        #expect(c.directory(path) == .failure(.EINVAL))
    }

    @Test func validPathCharacters() {
        let tree = XenStoreTree()
        let c = Client(tree, domain: 0)
        #expect(c.write("/Az09-_@x/y", "v") == nil)
        #expect(c.read("/") == .success(""))
        #expect(c.write("/\(String(repeating: "y", count: 3071))", "v") == nil)
        #expect(c.write("/local/domain/0/\(String(repeating: "x", count: 2048))", "v") == nil)
        // The longest relative path a guest may use.
        #expect(c.write(String(repeating: "r", count: 2048), "v") == nil)
        #expect(c.write(String(repeating: "r", count: 2049), "v") == .EINVAL)
        // Relative "" resolves to "/local/domain/0/": trailing slash.
        #expect(c.error(c.call(.read, payload: [0])) == .EINVAL)
    }

    @Test func parseRandomBytesNeverTraps() {
        var rng = SplitMix(seed: 1)
        var complete = 0
        for _ in 0..<100_000 {
            let n = Int.random(in: 0...48, using: &rng)
            var b = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if n >= 16 && Bool.random(using: &rng) {
                // Plausible lengths too, so whole messages come out.
                let len = UInt32.random(in: 0...40, using: &rng)
                b[12] = UInt8(len); b[13] = 0; b[14] = 0; b[15] = 0
            }
            if let r = try? XenStoreMessage.parse(b) {
                complete += 1
                #expect(r.length == 16 + r.message.payload.count && r.length <= b.count)
            }
        }
        #expect(complete > 1000)
    }
}
