import Glibc

/// LZ4 decompression: the block format and the legacy frame that Linux's
/// `CONFIG_KERNEL_LZ4` build wraps around vmlinux.
///
/// Legacy frame layout:
///
///     magic 0x184C2102 (LE)
///     repeat: block size (u32 LE) + that many bytes of one LZ4 block
///             (each block decodes independently to at most 8 MiB)
///     [Linux only] uncompressed size (u32 LE)
///
/// A stream may also contain the magic again between blocks (frames written
/// back to back); it is skipped. The trailing size is not a block: Linux's
/// boot decompressor takes the last four bytes of the payload as the output
/// length and hands only the bytes before them to the block loop, which stops
/// when the input is exactly used up. A generic `lz4 -l` stream has no such
/// trailer. We accept both: when exactly four bytes remain after a block they
/// are the trailer (no real block can fit in four bytes after its size field),
/// and the decoded length must then equal it.
///
/// The decoder works on raw pointers and copies in 8/16-byte words. Wide
/// copies may run up to 16 bytes past the end of a literal run or match, so
/// the output buffer is allocated with `slack` spare bytes; every such copy
/// is guarded so it never reads beyond the input or writes beyond the buffer.
public enum LZ4 {
    /// Magic of the legacy frame.
    public static let legacyMagic: UInt32 = 0x184C_2102
    /// Magic of the modern LZ4 frame format (recognised only to say so).
    public static let frameMagic: UInt32 = 0x184D_2204
    /// Uncompressed size of every block of a legacy frame but the last.
    public static let legacyBlockSize = 8 << 20
    /// Largest compressed size of a block of `legacyBlockSize` bytes
    /// (LZ4_COMPRESSBOUND: n + n/255 + 16).
    public static let legacyMaxCompressedBlock = legacyBlockSize + legacyBlockSize / 255 + 16

    /// Spare bytes after the logical end of output for wide copies.
    static let slack = 32

    /// Decompresses a legacy LZ4 frame, refusing to produce more than `limit`
    /// bytes. With Linux's trailing size present the output is allocated once
    /// at its exact size; otherwise at the largest size the blocks could
    /// produce, capped by `limit`.
    public static func decompressLegacy(_ input: UnsafeRawBufferPointer, limit: Int) throws -> [UInt8] {
        let limit = max(0, limit)
        let plan = try scanLegacyFrame(input)

        let capacity: Int
        if let declared = plan.declaredSize {
            guard declared <= plan.maxOutput else {
                throw GuestImageError.lz4Corrupt(reason: "trailer declares \(declared) uncompressed bytes, more than its \(plan.blocks.count) block(s) can decode to")
            }
            guard declared <= limit else { throw GuestImageError.decompressionLimitExceeded(limit: limit) }
            capacity = declared
        } else {
            capacity = min(plan.maxOutput, limit)
        }

        var failure: GuestImageError?
        let output = [UInt8](unsafeUninitializedCapacity: capacity + slack) { buffer, initialized in
            initialized = 0
            let base = buffer.baseAddress!
            adviseHugePages(UnsafeMutableRawPointer(base), capacity)
            let writableEnd = base + capacity + slack
            let inBase = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let inEnd = inBase + input.count
            var op = base
            for (index, block) in plan.blocks.enumerated() {
                let room = capacity - (op - base)
                let blockLimit = op + min(room, legacyBlockSize)
                do throws(BlockError) {
                    op = try decodeBlock(
                        src: inBase + block.lowerBound, srcEnd: inBase + block.upperBound, readableEnd: inEnd,
                        dst: op, dstLimit: blockLimit, writableEnd: writableEnd)
                } catch {
                    // When at least 8 MiB of room was left, the block's own
                    // 8 MiB bound was the one it overran.
                    failure = frameError(error, block: index, inputOffset: block.lowerBound,
                                         blockLimited: room >= legacyBlockSize,
                                         declared: plan.declaredSize, limit: limit)
                    return
                }
            }
            initialized = op - base
        }
        if let failure { throw failure }
        if let declared = plan.declaredSize, output.count != declared {
            throw GuestImageError.lz4Corrupt(reason: "frame decodes to \(output.count) bytes but its trailer declares \(declared)")
        }
        return output
    }

    /// Convenience over any contiguous bytes (an `ArraySlice` of a file).
    public static func decompressLegacy(_ input: ArraySlice<UInt8>, limit: Int) throws -> [UInt8] {
        try input.withUnsafeBytes { try decompressLegacy($0, limit: limit) }
    }

    /// Decodes one raw LZ4 block into `output` and returns how many bytes it
    /// produced. Matches may only refer to bytes this call wrote (blocks of a
    /// legacy frame are independent). Bytes of `output` past the returned
    /// count may be overwritten with scratch data by the wide copies.
    public static func decompressBlock(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let src = input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count > 0 else {
            throw GuestImageError.lz4Corrupt(reason: "block is empty (it needs at least a token)")
        }
        guard let dst = output.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            // Only an all-literal block of zero length could decode into no
            // room; give the decoder a one-byte dummy to keep pointers valid.
            var dummy: UInt8 = 0
            return try withUnsafeMutablePointer(to: &dummy) { p in
                do throws(BlockError) {
                    let end = try decodeBlock(src: src, srcEnd: src + input.count, readableEnd: src + input.count,
                                              dst: p, dstLimit: p, writableEnd: p)
                    return end - p
                } catch {
                    throw blockOnlyError(error)
                }
            }
        }
        do throws(BlockError) {
            let end = try decodeBlock(src: src, srcEnd: src + input.count, readableEnd: src + input.count,
                                      dst: dst, dstLimit: dst + output.count, writableEnd: dst + output.count)
            return end - dst
        } catch {
            throw blockOnlyError(error)
        }
    }

    /// Asks for transparent huge pages over the 2 MiB-aligned interior of a
    /// large output buffer. Faulting in ~50 MB of fresh 4 KiB pages costs
    /// more than decoding into them on this nested-virtualised host (about
    /// 30 ms against 17 ms), and the host runs THP in "madvise" mode. Purely
    /// advisory: failure changes nothing.
    static func adviseHugePages(_ base: UnsafeMutableRawPointer, _ count: Int) {
        let huge = 2 << 20
        guard count >= 2 * huge else { return }
        let start = (UInt(bitPattern: base) + UInt(huge - 1)) & ~UInt(huge - 1)
        let end = (UInt(bitPattern: base) + UInt(count)) & ~UInt(huge - 1)
        guard end > start, let p = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(p, Int(end - start), MADV_HUGEPAGE)
    }

    // MARK: - Frame scan

    struct FramePlan {
        /// Byte ranges of the blocks' compressed data within the input.
        var blocks: [Range<Int>] = []
        /// Linux's trailing uncompressed size, if present.
        var declaredSize: Int?
        /// Most the blocks can decode to: per block, 8 MiB or 255 bytes per
        /// input byte, whichever is less. (Only a 255 length-extension byte
        /// adds more than one output byte per input byte, and it adds 255; a
        /// token with its 2-byte offset adds at most 19.) This keeps a hostile
        /// frame of many tiny blocks from sizing a huge allocation.
        var maxOutput = 0
    }

    /// Walks the block headers without decoding, so the output can be sized
    /// once and every block is known to lie inside the input.
    static func scanLegacyFrame(_ input: UnsafeRawBufferPointer) throws -> FramePlan {
        func word(_ at: Int) -> UInt32 {
            UInt32(input[at]) | UInt32(input[at + 1]) << 8 | UInt32(input[at + 2]) << 16 | UInt32(input[at + 3]) << 24
        }
        guard input.count >= 4 else {
            throw GuestImageError.lz4Corrupt(reason: "input is only \(input.count) bytes, too short for the frame magic")
        }
        let magic = word(0)
        guard magic == legacyMagic else { throw GuestImageError.notLZ4Legacy(magic: magic) }

        var plan = FramePlan()
        var pos = 4
        while pos < input.count {
            let remaining = input.count - pos
            guard remaining >= 4 else {
                throw GuestImageError.lz4Corrupt(reason: "\(remaining) stray byte(s) at input offset 0x\(hex(pos)) after block \(plan.blocks.count - 1)")
            }
            let value = word(pos)
            if value == legacyMagic {
                pos += 4
                continue
            }
            if remaining == 4 {
                // Linux's appended uncompressed size, not a block header.
                plan.declaredSize = Int(value)
                pos += 4
                break
            }
            let size = Int(value)
            guard size > 0 else {
                throw GuestImageError.lz4Corrupt(reason: "block \(plan.blocks.count) at input offset 0x\(hex(pos)) has size 0")
            }
            guard size <= legacyMaxCompressedBlock else {
                throw GuestImageError.lz4Corrupt(reason: "block \(plan.blocks.count) at input offset 0x\(hex(pos)) claims \(size) bytes, more than an 8 MiB block can compress to")
            }
            guard size <= remaining - 4 else {
                throw GuestImageError.lz4Corrupt(reason: "block \(plan.blocks.count) at input offset 0x\(hex(pos)) claims \(size) bytes but only \(remaining - 4) remain")
            }
            plan.blocks.append((pos + 4)..<(pos + 4 + size))
            plan.maxOutput += min(legacyBlockSize, size * 255)
            pos += 4 + size
        }
        return plan
    }

    // MARK: - Block decoder

    /// Failures inside one block, with the input position where they happened
    /// (as a distance from the block start) so the frame can report a file offset.
    enum BlockError: Error {
        case truncated(at: Int, what: String)
        case literalsPastBlockEnd(at: Int, length: Int)
        case outputFull(at: Int, needed: Int)
        case badOffset(at: Int, offset: Int, available: Int)
        case endsWithMatch
    }

    static func blockOnlyError(_ error: BlockError) -> GuestImageError {
        switch error {
        case .outputFull(let at, let needed):
            return .lz4Corrupt(reason: "block at input offset \(at) needs \(needed) more output byte(s) than the buffer holds")
        default:
            return .lz4Corrupt(reason: blockErrorText(error, base: 0))
        }
    }

    static func blockErrorText(_ error: BlockError, base: Int) -> String {
        switch error {
        case .truncated(let at, let what):
            return "input ends inside \(what) at offset 0x\(hex(base + at))"
        case .literalsPastBlockEnd(let at, let length):
            return "literal run of \(length) bytes at offset 0x\(hex(base + at)) goes past the end of its block"
        case .outputFull(let at, let needed):
            return "sequence at offset 0x\(hex(base + at)) writes \(needed) byte(s) past the end of the output"
        case .badOffset(let at, let offset, let available):
            return offset == 0
                ? "match offset 0 at offset 0x\(hex(base + at))"
                : "match offset \(offset) at offset 0x\(hex(base + at)) reaches before the start of the block's output (only \(available) byte(s) decoded)"
        case .endsWithMatch:
            return "block ends with a match instead of literals"
        }
    }

    static func frameError(_ error: BlockError, block: Int, inputOffset: Int, blockLimited: Bool,
                           declared: Int?, limit: Int) -> GuestImageError {
        if case .outputFull = error {
            if blockLimited {
                return .lz4Corrupt(reason: "block \(block) at input offset 0x\(hex(inputOffset)) decodes to more than 8 MiB")
            }
            if let declared {
                return .lz4Corrupt(reason: "block \(block) decodes past the \(declared) bytes the frame's trailer declares")
            }
            return .decompressionLimitExceeded(limit: limit)
        }
        return .lz4Corrupt(reason: "block \(block): " + blockErrorText(error, base: inputOffset))
    }

    /// Reads the 255-run extension of a literal or match length.
    @inline(__always)
    static func extendedLength(_ ip: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>,
                               _ blockStart: UnsafePointer<UInt8>, _ what: String) throws(BlockError) -> Int {
        var total = 0
        while true {
            guard ip < end else { throw .truncated(at: ip - blockStart, what: what) }
            let b = ip.pointee
            ip += 1
            total += Int(b)
            if b != 255 { return total }
        }
    }

    @inline(__always)
    static func copy8(_ dst: UnsafeMutablePointer<UInt8>, _ src: UnsafePointer<UInt8>) {
        UnsafeMutableRawPointer(dst).storeBytes(of: UnsafeRawPointer(src).loadUnaligned(as: UInt64.self), as: UInt64.self)
    }

    @inline(__always)
    static func copy16(_ dst: UnsafeMutablePointer<UInt8>, _ src: UnsafePointer<UInt8>) {
        // Both loads before both stores: harmless for non-overlapping copies
        // and it lets the compiler use one 16-byte move.
        let a = UnsafeRawPointer(src).loadUnaligned(as: UInt64.self)
        let b = UnsafeRawPointer(src).loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        UnsafeMutableRawPointer(dst).storeBytes(of: a, as: UInt64.self)
        UnsafeMutableRawPointer(dst).storeBytes(of: b, toByteOffset: 8, as: UInt64.self)
    }

    /// Decodes the block [src, srcEnd) to `dst`, producing at most up to
    /// `dstLimit`. Wide copies may read up to `readableEnd` and write up to
    /// `writableEnd` (both ≥ the logical ends). Returns the new output end.
    ///
    /// Block format: sequences of
    ///   token (hi 4 bits literal length, lo 4 bits match length − 4; 15 means
    ///   "add following bytes while they are 255"), literals, 2-byte LE offset,
    ///   extra match-length bytes.
    /// The last sequence stops after its literals, exactly at the block end.
    @inline(__always)
    static func decodeBlock(src: UnsafePointer<UInt8>, srcEnd: UnsafePointer<UInt8>, readableEnd: UnsafePointer<UInt8>,
                            dst: UnsafeMutablePointer<UInt8>, dstLimit: UnsafeMutablePointer<UInt8>,
                            writableEnd: UnsafeMutablePointer<UInt8>) throws(BlockError) -> UnsafeMutablePointer<UInt8> {
        var ip = src
        var op = dst
        while true {
            guard ip < srcEnd else { throw .truncated(at: ip - src, what: "a sequence token") }
            let token = ip.pointee
            ip += 1

            // Literals.
            var literalLength = Int(token >> 4)
            if literalLength == 15 {
                literalLength += try extendedLength(&ip, srcEnd, src, "a literal length")
            }
            guard literalLength <= srcEnd - ip else {
                throw .literalsPastBlockEnd(at: ip - src, length: literalLength)
            }
            guard literalLength <= dstLimit - op else {
                throw .outputFull(at: ip - src, needed: literalLength - (dstLimit - op))
            }
            if literalLength <= 16 && readableEnd - ip >= 16 && writableEnd - op >= 16 {
                // Most runs are short: one fixed 16-byte move, overshoot ignored.
                copy16(op, ip)
            } else {
                UnsafeMutableRawPointer(op).copyMemory(from: ip, byteCount: literalLength)
            }
            ip += literalLength
            op += literalLength

            // The block's last sequence has no match part.
            if ip == srcEnd { return op }

            // Match.
            guard srcEnd - ip >= 2 else { throw .truncated(at: ip - src, what: "a match offset") }
            let offset = Int(ip[0]) | Int(ip[1]) << 8
            let offsetAt = ip - src
            ip += 2
            let produced = op - dst
            guard offset != 0, offset <= produced else {
                throw .badOffset(at: offsetAt, offset: offset, available: produced)
            }
            var matchLength = Int(token & 15)
            if matchLength == 15 {
                matchLength += try extendedLength(&ip, srcEnd, src, "a match length")
            }
            matchLength += 4
            guard matchLength <= dstLimit - op else {
                throw .outputFull(at: offsetAt, needed: matchLength - (dstLimit - op))
            }
            // A match followed by end of block: the format requires the block
            // to end with literals; a well-formed encoder never does this.
            guard ip < srcEnd else { throw .endsWithMatch }

            var from = UnsafePointer(op - offset)
            let end = op + matchLength
            // Wide copies overshoot `end` by less than 16 bytes.
            let roomy = writableEnd - end >= 16
            if offset >= 16 && roomy {
                // Source and destination of each 16-byte step never overlap.
                var to = op
                repeat {
                    copy16(to, from)
                    to += 16
                    from += 16
                } while to < end
            } else if offset >= 8 && roomy {
                var to = op
                repeat {
                    copy8(to, from)
                    to += 8
                    from += 8
                } while to < end
            } else if offset == 1 {
                // A run of one byte (zero padding, 0xcc fill): memset.
                op.update(repeating: from.pointee, count: matchLength)
            } else if roomy {
                // Period 2..7: write the first bytes one at a time until the
                // pattern repeats at a distance ≥ 8 (a multiple of the
                // period), then copy 8-byte words from that distance back.
                let period = offset * ((8 + offset - 1) / offset)
                let head = min(period - offset, matchLength)
                var to = op
                for _ in 0..<head {
                    to.pointee = from.pointee
                    to += 1
                    from += 1
                }
                var wideFrom = UnsafePointer(to - period)
                while to < end {
                    copy8(to, wideFrom)
                    to += 8
                    wideFrom += 8
                }
            } else {
                // Near the end of the buffer: exact byte copy (always correct
                // for overlapping matches, since it reads what it just wrote).
                var to = op
                while to < end {
                    to.pointee = from.pointee
                    to += 1
                    from += 1
                }
            }
            op = end
        }
    }
}
