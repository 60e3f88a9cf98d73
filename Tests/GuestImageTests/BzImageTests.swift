import Glibc
import Testing
@testable import GuestImage

@Suite struct BzImageTests {
    @Test func parsesHeader() throws {
        let payload = legacyFrame([[0x10, 0x41]], trailer: 1)
        let bz = try BzImage(fakeBzImage(setupSectors: 4, payload: payload, payloadOffset: 0x100))
        #expect(bz.setupSectors == 4)
        #expect(bz.protocolVersion == 0x020f)
        #expect(bz.protectedModeOffset == 5 * 512)
        #expect(bz.payloadOffset == 0x100 && bz.payloadLength == UInt32(payload.count))
        #expect(bz.payloadRange == (5 * 512 + 0x100)..<(5 * 512 + 0x100 + payload.count))
        #expect(Array(bz.payload) == payload)
        #expect(bz.protectedModeKernel == (5 * 512)..<bz.bytes.count)
        #expect(bz.compression == .lz4Legacy)
        #expect(bz.loadFlags == 1 && bz.loadedHigh)
        #expect(bz.xloadFlags == 0x7f && bz.has64BitEntry)
        #expect(bz.kernelAlignment == 0x20_0000 && bz.relocatable)
        #expect(bz.cmdlineSize == 2047)
        #expect(bz.prefAddress == 0x100_0000)
        #expect(bz.initSize == 0x337_8000)
        #expect(bz.kernelVersion == "6.1.0-test (nobody@example) #1")
        #expect(try LZ4.decompressLegacy(bz.payload, limit: 100) == [0x41])
    }

    @Test func setupSectorsZeroMeansFour() throws {
        let bz = try BzImage(fakeBzImage(setupSectors: 0, payload: [0x7f, 0x45, 0x4c, 0x46]))
        #expect(bz.protectedModeOffset == 5 * 512)
        #expect(bz.compression == PayloadCompression.none)
    }

    @Test func protocol208HasNoLaterFields() throws {
        let bz = try BzImage(fakeBzImage(version: 0x0208, payload: [1, 2, 3, 4]))
        #expect(bz.xloadFlags == 0)
        #expect(bz.prefAddress == 0x10_0000)
        #expect(bz.initSize == 0)
    }

    @Test func wrongMagic() throws {
        let e = #expect(throws: GuestImageError.self) {
            try BzImage(fakeBzImage(payload: [1, 2, 3, 4], signature: Array("HdrX".utf8)))
        }
        #expect(e?.description == "not a bzImage: no 'HdrS' signature at offset 0x202")
        var noBootFlag = fakeBzImage(payload: [1, 2, 3, 4])
        noBootFlag[0x1fe] = 0
        #expect(throws: GuestImageError.self) { try BzImage(noBootFlag) }
        #expect(throws: GuestImageError.self) { try BzImage([UInt8](repeating: 0, count: 100)) }
        #expect(throws: GuestImageError.self) { try BzImage([]) }
    }

    @Test func tooOldProtocol() throws {
        #expect(throws: GuestImageError.bootProtocolTooOld(version: 0x0207, needed: 0x0208)) {
            try BzImage(fakeBzImage(version: 0x0207, payload: [1, 2, 3, 4]))
        }
        #expect(GuestImageError.bootProtocolTooOld(version: 0x0207, needed: 0x0208).description
            == "bzImage boot protocol 2.07 is too old; Xenolith needs 2.08 or later for the payload fields")
    }

    @Test func payloadOutOfRange() throws {
        // Length one past the end.
        let img = fakeBzImage(payload: [1, 2, 3, 4], payloadLength: 5)
        let e = #expect(throws: GuestImageError.self) { try BzImage(img) }
        #expect(e?.description.contains("outside") == true)
        // Offset far past the end, and length 0xffffffff.
        var far = fakeBzImage(payload: [1, 2, 3, 4])
        far.replaceSubrange(0x248..<0x24c, with: le32(0xffff_fff0))
        #expect(throws: GuestImageError.self) { try BzImage(far) }
        var long = fakeBzImage(payload: [1, 2, 3, 4])
        long.replaceSubrange(0x24c..<0x250, with: le32(0xffff_ffff))
        #expect(throws: GuestImageError.self) { try BzImage(long) }
        // Empty payload.
        var empty = fakeBzImage(payload: [1, 2, 3, 4])
        empty.replaceSubrange(0x24c..<0x250, with: le32(0))
        #expect(throws: GuestImageError.self) { try BzImage(empty) }
        // setup_sects covering the whole file.
        var setup = fakeBzImage(payload: [1, 2, 3, 4])
        setup[0x1f1] = 200
        #expect(throws: GuestImageError.self) { try BzImage(setup) }
        // Header cut short after the version.
        let short = Array(fakeBzImage(payload: [1, 2, 3, 4])[0..<0x240])
        #expect(throws: GuestImageError.self) { try BzImage(short) }
    }

    @Test func mutationFuzz() {
        var rng = SplitMix64(seed: 0xb2)
        let seqs = [Sequence(literals: kernelLikeELF() + [0], offset: 1, matchLength: 300), Sequence(literals: [0])]
        let good = fakeBzImage(payload: legacyFrame([encodeBlock(seqs)], trailer: UInt32(referenceDecode(seqs).count)))
        for _ in 0..<800 {
            var f = good
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = rng.next() % 2 == 0 ? 0x1f0 + Int(rng.next() % 0x80) : Int(rng.next() % UInt64(f.count))
                f[i] = UInt8(truncatingIfNeeded: rng.next())
            }
            if rng.next() % 6 == 0 { f.removeLast(Int(rng.next() % UInt64(f.count))) }
            do {
                _ = try GuestKernel(fileBytes: f, decompressionLimit: 1 << 20)
            } catch {
                #expect(error is GuestImageError)
            }
        }
    }
}

@Suite struct ReadWholeFileTests {
    @Test func readsAndLimits() throws {
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0) }
        try withTemporaryFile(data) { (path: String) throws in
            #expect(try readWholeFile(path, limit: 10_000) == data)
            #expect(throws: GuestImageError.fileTooLarge(path: path, size: 10_000, limit: 9_999)) {
                try readWholeFile(path, limit: 9_999)
            }
        }
        try withTemporaryFile([]) { (path: String) throws in
            #expect(try readWholeFile(path, limit: 0) == [])
        }
    }

    @Test func clearErrors() throws {
        let missing = "/nonexistent/xenolith/vmlinuz"
        #expect(throws: GuestImageError.fileNotFound(path: missing)) { try readWholeFile(missing, limit: 1 << 20) }
        #expect(GuestImageError.fileNotFound(path: missing).description == "/nonexistent/xenolith/vmlinuz: no such file")
        #expect(throws: GuestImageError.notARegularFile(path: "/tmp")) { try readWholeFile("/tmp", limit: 1 << 20) }
        #expect(throws: GuestImageError.notARegularFile(path: "/dev/zero")) { try readWholeFile("/dev/zero", limit: 1 << 20) }
        #expect(throws: GuestImageError.fileNotFound(path: missing)) { try GuestKernel.load(path: missing) }
    }

    // Root bypasses file permissions: as root, check with an unprivileged
    // filesystem identity (setfsuid acts on this thread only).
    @Test func permissionDenied() throws {
        try withTemporaryFile([1, 2, 3]) { (path: String) throws in
            chmod(path, 0)
            let root = geteuid() == 0
            // glibc's setfsuid is not in Swift's Glibc module; look it up.
            typealias SetFSUID = @convention(c) (UInt32) -> Int32
            let setfsuid = unsafeBitCast(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setfsuid"), to: SetFSUID.self)
            if root { _ = setfsuid(65534) }
            defer { if root { _ = setfsuid(0) } }
            #expect(throws: GuestImageError.permissionDenied(path: path)) { try readWholeFile(path, limit: 100) }
        }
    }
}
