import Testing
@testable import GuestImage

/// Decodes one block through the public API into a buffer of exactly
/// `capacity` bytes (no slack, so the careful tail paths run).
func decodeExact(_ block: [UInt8], capacity: Int) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: capacity)
    let n = try block.withUnsafeBytes { inp in
        try out.withUnsafeMutableBytes { try LZ4.decompressBlock(inp, into: $0) }
    }
    return Array(out[..<n])
}

func decodeFrame(_ frame: [UInt8], limit: Int = 64 << 20) throws -> [UInt8] {
    try frame.withUnsafeBytes { try LZ4.decompressLegacy($0, limit: limit) }
}

@Suite struct LZ4BlockTests {
    @Test func literalsOnly() throws {
        let text = Array("hello, xeno".utf8)  // < 15 bytes: length fits the token
        let block = [UInt8(text.count) << 4] + text
        #expect(try decodeExact(block, capacity: text.count) == text)
        #expect(try decodeFrame(legacyFrame([block])) == text)
        #expect(try decodeFrame(legacyFrame([block], trailer: UInt32(text.count))) == text)
    }

    @Test func handMadeMatch() throws {
        // "abcd" then a match of 8 at offset 4 → "abcdabcdabcd", then "!".
        let block: [UInt8] = [0x44, 0x61, 0x62, 0x63, 0x64, 0x04, 0x00, 0x10, 0x21]
        let expected = Array("abcdabcdabcd!".utf8)
        #expect(try decodeExact(block, capacity: expected.count) == expected)
        #expect(try decodeFrame(legacyFrame([block])) == expected)
    }

    @Test(arguments: [1, 2, 3, 5, 7, 8, 9, 15, 16, 17])
    func overlappingMatch(offset: Int) throws {
        // `offset` literal bytes repeated by one long overlapping match.
        let seed = (0..<offset).map { UInt8(0x30 + $0) }
        for length in [4, 5, 8, 15, 16, 17, 18, 19, 33, 64, 300] {
            let seqs = [Sequence(literals: seed, offset: offset, matchLength: length), Sequence(literals: [0xee])]
            let block = encodeBlock(seqs)
            let expected = referenceDecode(seqs)
            #expect(try decodeExact(block, capacity: expected.count) == expected, "offset \(offset) length \(length)")
            #expect(try decodeFrame(legacyFrame([block])) == expected, "offset \(offset) length \(length)")
        }
    }

    @Test func longLengthsUse255Extensions() throws {
        // Literal run of 15 + 255 + 255 + 10 = 535, match of 4 + 15 + 255 + 3 = 277.
        let lits = (0..<535).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let seqs = [Sequence(literals: lits, offset: 100, matchLength: 277), Sequence(literals: Array(lits[0..<5]))]
        let block = encodeBlock(seqs)
        // Token 0xFF, then the literal extension bytes 255, 255, 10.
        #expect(Array(block[0..<4]) == [0xff, 255, 255, 10])
        // After literals and offset: match extension 255, 3.
        #expect(Array(block[(4 + 535 + 2)..<(4 + 535 + 4)]) == [255, 3])
        let expected = referenceDecode(seqs)
        #expect(try decodeExact(block, capacity: expected.count) == expected)
        #expect(try decodeFrame(legacyFrame([block], trailer: UInt32(expected.count))) == expected)

        // Exactly 15 literals needs an extension byte of 0.
        let fifteen = [UInt8](repeating: 0x5a, count: 15)
        let b15 = encodeBlock([Sequence(literals: fifteen)])
        #expect(b15 == [0xf0, 0x00] + fifteen)
        #expect(try decodeExact(b15, capacity: 15) == fifteen)
    }

    @Test func randomRoundTrips() throws {
        var rng = SplitMix64(seed: 0x58454e4f)
        for round in 0..<60 {
            let seqs = randomSequences(&rng, targetSize: 1 + Int(rng.next() % 40_000))
            let block = encodeBlock(seqs)
            let expected = referenceDecode(seqs)
            #expect(try decodeExact(block, capacity: expected.count) == expected, "round \(round)")
            #expect(try decodeFrame(legacyFrame([block], trailer: UInt32(expected.count))) == expected, "round \(round)")
        }
    }

    @Test func multipleBlocksAndConcatenatedFrames() throws {
        var rng = SplitMix64(seed: 7)
        let parts = (0..<4).map { _ in randomSequences(&rng, targetSize: 5000) }
        let blocks = parts.map(encodeBlock)
        let expected = parts.flatMap(referenceDecode)
        #expect(try decodeFrame(legacyFrame(blocks)) == expected)
        #expect(try decodeFrame(legacyFrame(blocks, trailer: UInt32(expected.count))) == expected)
        // The magic again between blocks (frames back to back) is skipped.
        let first = legacyFrame(Array(blocks[0..<2]))
        let second = legacyFrame(Array(blocks[2...]), trailer: UInt32(expected.count))
        #expect(try decodeFrame(first + second) == expected)
    }

    @Test func emptyFrame() throws {
        #expect(try decodeFrame(le32(LZ4.legacyMagic)) == [])
        #expect(try decodeFrame(le32(LZ4.legacyMagic) + le32(0)) == [])
    }
}

@Suite struct LZ4CorruptInputTests {
    func expectCorrupt(_ frame: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        let error = #expect(throws: GuestImageError.self, sourceLocation: sourceLocation) {
            _ = try decodeFrame(frame)
        }
        guard let error else { return }
        if case .lz4Corrupt = error {
            #expect(!error.description.isEmpty, sourceLocation: sourceLocation)
        } else {
            Issue.record("expected lz4Corrupt, got: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func matchOffsetBeforeStartOfOutput() throws {
        // 2 literals then a match at offset 3: reaches one byte before the start.
        let block: [UInt8] = [0x20, 0x61, 0x62, 0x03, 0x00, 0x00]
        expectCorrupt(legacyFrame([block]))
        #expect(throws: GuestImageError.self) { try decodeExact(block, capacity: 100) }
        // Offset 0 is never valid.
        expectCorrupt(legacyFrame([[0x10, 0x61, 0x00, 0x00, 0x00]]))
        // Blocks are independent: block 1 may not reach into block 0's output.
        let b0 = [UInt8(0x40)] + Array("abcd".utf8)
        let b1: [UInt8] = [0x10, 0x7a, 0x03, 0x00, 0x00]
        expectCorrupt(legacyFrame([b0, b1]))
    }

    @Test func lengthsPastTheEnd() throws {
        // Literal length says 5, 3 bytes follow.
        expectCorrupt(legacyFrame([[0x50, 1, 2, 3]]))
        // Literal length extension missing.
        expectCorrupt(legacyFrame([[0xf0]]))
        expectCorrupt(legacyFrame([[0xf0, 255, 255]]))
        // Match offset cut short.
        expectCorrupt(legacyFrame([[0x14, 0x61, 0x01]]))
        // Match length extension missing.
        expectCorrupt(legacyFrame([[0x1f, 0x61, 0x01, 0x00]]))
        // Block ends right after a match.
        expectCorrupt(legacyFrame([[0x10, 0x61, 0x01, 0x00]]))
        // Empty block (size 0) followed by another block. (A lone zero word
        // after the magic is Linux's trailer for an empty frame instead.)
        expectCorrupt(le32(LZ4.legacyMagic) + le32(0) + le32(1) + [0x00])
        // Block size larger than what follows.
        expectCorrupt(le32(LZ4.legacyMagic) + le32(100) + [0x10, 0x61, 0, 0, 0, 0, 0, 0])
        // Stray bytes after the last block.
        expectCorrupt(legacyFrame([[0x10, 0x61]]) + [1, 2])
        // Absurd block size.
        expectCorrupt(le32(LZ4.legacyMagic) + le32(0x7fff_ffff) + [UInt8](repeating: 0, count: 8))
        // Truncated magic.
        expectCorrupt([0x02, 0x21])
    }

    @Test func outputBounds() throws {
        // The decoder must stop at the end of a caller's buffer.
        let seqs = [Sequence(literals: [1, 2, 3], offset: 3, matchLength: 100), Sequence(literals: [])]
        let block = encodeBlock(seqs)
        #expect(throws: GuestImageError.self) { try decodeExact(block, capacity: 50) }
        #expect(try decodeExact(block, capacity: 103) == referenceDecode(seqs))
        // Trailer disagreeing with the blocks.
        let text = [UInt8](repeating: 7, count: 20)
        let lit = encodeBlock([Sequence(literals: text)])
        expectCorrupt(legacyFrame([lit], trailer: 19))
        expectCorrupt(legacyFrame([lit], trailer: 21))
        // A trailer claiming more than the blocks could ever produce.
        expectCorrupt(legacyFrame([lit], trailer: 9 << 20))
    }

    @Test func limitIsEnforced() throws {
        let seqs = [Sequence(literals: [0], offset: 1, matchLength: 10_000), Sequence(literals: [])]
        let frame = legacyFrame([encodeBlock(seqs)])
        #expect(try decodeFrame(frame, limit: 10_001).count == 10_001)
        #expect(throws: GuestImageError.decompressionLimitExceeded(limit: 10_000)) {
            try decodeFrame(frame, limit: 10_000)
        }
        // With a trailer, the limit is checked before decoding.
        let withTrailer = legacyFrame([encodeBlock(seqs)], trailer: 10_001)
        #expect(throws: GuestImageError.decompressionLimitExceeded(limit: 4096)) {
            try decodeFrame(withTrailer, limit: 4096)
        }
    }

    @Test func blockBiggerThan8MiB() throws {
        // One byte repeated 8 MiB + 1 times in a single block.
        var block: [UInt8] = [0x1f, 0x00, 0x01, 0x00]
        // Output: 1 literal + (4 + 15 + extension) match bytes = 8 MiB.
        appendExtension((8 << 20) - 1 - 4 - 15, to: &block)
        block.append(0x00)  // final empty-literal sequence
        #expect(try decodeFrame(legacyFrame([block])).count == 8 << 20)
        var tooBig: [UInt8] = [0x1f, 0x00, 0x01, 0x00]
        appendExtension((8 << 20) - 1 - 4 - 15 + 1, to: &tooBig)
        tooBig.append(0x00)
        expectCorrupt(legacyFrame([tooBig]))
    }

    @Test func wrongMagic() throws {
        #expect(throws: GuestImageError.notLZ4Legacy(magic: LZ4.frameMagic)) {
            try decodeFrame(le32(LZ4.frameMagic) + [0, 0, 0, 0])
        }
        let message = GuestImageError.notLZ4Legacy(magic: LZ4.frameMagic).description
        #expect(message.contains("legacy"))
        #expect(throws: GuestImageError.notLZ4Legacy(magic: 0x0008_8b1f)) {
            try decodeFrame([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0])
        }
    }

    /// Random damage to valid frames must end in a result or a thrown error,
    /// never a trap or an out-of-bounds access.
    @Test func mutationFuzz() throws {
        var rng = SplitMix64(seed: 0xf022)
        var thrown = 0
        for _ in 0..<1500 {
            let seqs = randomSequences(&rng, targetSize: 1 + Int(rng.next() % 3000))
            let block = encodeBlock(seqs)
            let expectedCount = referenceDecode(seqs).count
            var frame = legacyFrame([block], trailer: rng.next() % 2 == 0 ? UInt32(expectedCount) : nil)
            switch rng.next() % 3 {
            case 0:
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    let i = 4 + Int(rng.next() % UInt64(frame.count - 4))
                    frame[i] = UInt8(truncatingIfNeeded: rng.next())
                }
            case 1:
                frame.removeLast(1 + Int(rng.next() % UInt64(frame.count - 4)))
            default:
                // Corrupt the block body only, keeping the header intact.
                let i = 8 + Int(rng.next() % UInt64(block.count))
                frame[i] ^= UInt8(1 + rng.next() % 255)
            }
            do {
                let out = try decodeFrame(frame, limit: 1 << 20)
                #expect(out.count <= 1 << 20)
            } catch {
                thrown += 1
                #expect(error is GuestImageError)
            }
            // The block decoder alone, into an exact-size buffer.
            let body = Array(frame.dropFirst(8).prefix(block.count))
            if !body.isEmpty { _ = try? decodeExact(body, capacity: expectedCount) }
        }
        // Truncation alone (a third of the rounds) always fails.
        #expect(thrown > 300)
        print("LZ4 mutation fuzz: \(thrown) of 1500 damaged frames refused, the rest decoded within bounds")
    }
}
