import Testing
@testable import GuestImage

@Suite struct ELFImageTests {
    @Test func parsesKernelShapedELF() throws {
        let elf = try ELFImage(kernelLikeELF())
        #expect(elf.entry == 0x100_0000)
        #expect(elf.segments.count == 4)
        #expect(elf.loadSegments.count == 3)
        let text = elf.segments[0]
        #expect(text.isLoad && text.isExecutable && text.isReadable && !text.isWritable)
        #expect(text.vaddr == 0xffff_ffff_8100_0000 && text.paddr == 0x100_0000)
        #expect(text.fileSize == 300 && text.memorySize == 300)
        #expect(elf.segments[1].memorySize == 0x1000)
        #expect(elf.segments[2].vaddr == 0)
        #expect(elf.notes.count == 17)
        #expect(elf.notes.filter { $0.name == "Xen" }.count == 16)
        let gnu = try #require(elf.notes.first { $0.name == "GNU" })
        #expect(gnu.type == 3 && gnu.desc == [UInt8](repeating: 0xab, count: 20))
    }

    @Test func notesFromSectionsWhenNoPTNote() throws {
        var b = ELFBuilder()
        b.segments = [.init(type: 1, flags: 5, paddr: 0x100_0000, data: [0x90])]
        b.sectionNotes = noteRecord(name: "Xen", type: 1, desc: le64(0xffff_ffff_8100_0000))
        let elf = try ELFImage(b.build())
        #expect(elf.notes == [ELFImage.Note(name: "Xen", type: 1, desc: le64(0xffff_ffff_8100_0000))])
        #expect(try XenNotes(elf).entry == 0xffff_ffff_8100_0000)
    }

    @Test func rejectsWrongKinds() throws {
        #expect(throws: GuestImageError.self) { try ELFImage([]) }
        #expect(throws: GuestImageError.self) { try ELFImage(Array("MZ not an elf at all".utf8)) }
        var file = kernelLikeELF()
        // 32-bit class.
        var f32 = file
        f32[4] = 1
        let e32 = #expect(throws: GuestImageError.self) { try ELFImage(f32) }
        #expect(e32?.description.contains("32-bit") == true)
        // Big-endian.
        var fbe = file
        fbe[5] = 2
        #expect(throws: GuestImageError.self) { try ELFImage(fbe) }
        // ET_DYN.
        var b = ELFBuilder()
        b.type = 3
        let dyn = #expect(throws: GuestImageError.self) { try ELFImage(b.build()) }
        #expect(dyn?.description.contains("ET_DYN") == true)
        // AArch64.
        b = ELFBuilder()
        b.machine = 183
        #expect(throws: GuestImageError.self) { try ELFImage(b.build()) }
        // Truncated header.
        file.removeLast(file.count - 40)
        #expect(throws: GuestImageError.self) { try ELFImage(file) }
    }

    @Test func rejectsOutOfRangeStructures() throws {
        let good = kernelLikeELF()
        // Program header table past the end.
        var f = good
        f.replaceSubrange(32..<40, with: le64(UInt64(good.count - 10)))
        #expect(throws: GuestImageError.self) { try ELFImage(f) }
        // Huge phoff that would overflow an Int.
        f = good
        f.replaceSubrange(32..<40, with: le64(UInt64.max - 3))
        #expect(throws: GuestImageError.self) { try ELFImage(f) }
        // Segment 0's file size past the end of the file.
        f = good
        f.replaceSubrange((64 + 32)..<(64 + 40), with: le64(UInt64(good.count)))
        let e = #expect(throws: GuestImageError.self) { try ELFImage(f) }
        #expect(e?.description.contains("outside") == true)
        // File size larger than memory size.
        f = good
        f.replaceSubrange((64 + 40)..<(64 + 48), with: le64(10))
        #expect(throws: GuestImageError.self) { try ELFImage(f) }
        // Address wrap.
        f = good
        f.replaceSubrange((64 + 24)..<(64 + 32), with: le64(UInt64.max - 100))
        #expect(throws: GuestImageError.self) { try ELFImage(f) }
        // Tiny phentsize.
        f = good
        f.replaceSubrange(54..<56, with: le16(20))
        #expect(throws: GuestImageError.self) { try ELFImage(f) }
    }

    @Test func rejectsMalformedNotes() throws {
        // A note whose descriptor size runs past its segment.
        var b = ELFBuilder()
        b.segments = [.init(type: 1, paddr: 0x100_0000, data: [0]),
                      .init(type: 4, data: le32(4) + le32(1000) + le32(1) + Array("Xen\0".utf8) + [1, 2, 3, 4])]
        #expect(throws: GuestImageError.self) { try ELFImage(b.build()) }
        // A descriptor size near 2^32 must not overflow anything.
        b.segments[1].data = le32(4) + le32(0xffff_ffff) + le32(1) + Array("Xen\0".utf8)
        #expect(throws: GuestImageError.self) { try ELFImage(b.build()) }
        b.segments[1].data = le32(0xffff_fff0) + le32(0xffff_ffff) + le32(1) + Array("Xen\0".utf8)
        #expect(throws: GuestImageError.self) { try ELFImage(b.build()) }
    }

    /// Random damage to an ELF must give an image or a typed error, never a trap.
    @Test func mutationFuzz() {
        var rng = SplitMix64(seed: 0xe1f)
        let good = kernelLikeELF()
        for _ in 0..<3000 {
            var f = good
            for _ in 0..<(1 + Int(rng.next() % 6)) {
                // Concentrate on the headers, where the offsets live.
                let span = rng.next() % 4 == 0 ? f.count : min(f.count, 64 + 56 * 4)
                f[Int(rng.next() % UInt64(span))] = UInt8(truncatingIfNeeded: rng.next())
            }
            if rng.next() % 5 == 0 { f.removeLast(Int(rng.next() % UInt64(f.count))) }
            do {
                let elf = try ELFImage(f)
                _ = try? XenNotes(elf)
                if let k = try? GuestKernel(elf: elf) {
                    try k.loadSegments { _, bytes, memorySize in
                        #expect(UInt64(bytes.count) <= memorySize)
                    }
                    _ = k.kernelPhysicalRange()
                }
            } catch {
                #expect(error is GuestImageError)
            }
        }
    }
}

@Suite struct XenNotesTests {
    @Test func debianLikeNotes() throws {
        let xen = try XenNotes(ELFImage(kernelLikeELF()))
        #expect(xen.entry == 0xffff_ffff_8304_e1c0)
        #expect(xen.virtBase == 0xffff_ffff_8000_0000)
        #expect(xen.paddrOffset == 0)
        #expect(xen.initP2M == 0x80_0000_0000)
        #expect(xen.hvStartLow == 0xffff_8000_0000_0000)
        #expect(xen.hypercallPage == nil)
        #expect(xen.features == "!writable_page_tables|pae_pgdir_above_4gb")
        #expect(xen.featureList == ["!writable_page_tables", "pae_pgdir_above_4gb"])
        #expect(xen.requiredFeatures == ["writable_page_tables"])
        #expect(xen.supportedFeatures == 0x8801)
        #expect(xen.paeMode == "yes")
        #expect(xen.loader == "generic")
        #expect(xen.guestOS == "linux")
        #expect(xen.guestVersion == "2.6")
        #expect(xen.xenVersion == "xen-3.0")
        #expect(xen.l1MFNValid == [.init(mask: 1, value: 1)])
        #expect(xen.suspendCancel)
        #expect(xen.modStartPFN)
        #expect(xen.phys32Entry == 0x100_0850)
        #expect(xen.rawNotes.count == 16)
    }

    @Test func numericWidthsAndDefaults() throws {
        var b = ELFBuilder()
        b.entry = 0x1234
        var notes = noteRecord(name: "Xen", type: 2, desc: le32(0x8100_1000))           // 4-byte
        notes += noteRecord(name: "Xen", type: 3, desc: le64(0xffff_ffff_8000_0000))   // 8-byte
        notes += noteRecord(name: "Xen", type: 14, desc: [1])                          // 1-byte
        notes += noteRecord(name: "Xen", type: 16, desc: le16(0))                      // 2-byte
        notes += noteRecord(name: "Xen", type: 10, desc: Array("a|!b||!c".utf8))      // no NUL
        notes += noteRecord(name: "Xen", type: 13, desc: le32(0xff) + le32(0x10))      // 4-byte pair
        notes += noteRecord(name: "Xen", type: 99, desc: [1, 2, 3])                    // unknown type
        b.segments = [.init(type: 1, paddr: 0x100_0000, data: [0]), .init(type: 4, data: notes)]
        let xen = try XenNotes(ELFImage(b.build()))
        #expect(xen.entry == 0x1234)                 // defaults to e_entry, as libelf does
        #expect(xen.hypercallPage == 0x8100_1000)
        #expect(xen.virtBase == 0xffff_ffff_8000_0000)
        #expect(xen.suspendCancel)
        #expect(!xen.modStartPFN)
        #expect(xen.requiredFeatures == ["b", "c"])
        #expect(xen.l1MFNValid == [.init(mask: 0xff, value: 0x10)])
        #expect(xen.initP2M == nil && xen.hvStartLow == nil && xen.supportedFeatures == nil)
        #expect(xen.rawNotes.count == 7)
    }

    @Test func absentAndMalformed() throws {
        let plain = try ELFImage(kernelLikeELF(notes: noteRecord(name: "GNU", type: 3, desc: [1, 2, 3, 4])))
        #expect(throws: GuestImageError.noXenNotes) { try XenNotes(plain) }
        #expect(GuestImageError.noXenNotes.description == "kernel has no Xen PV support: no Xen ELF notes")
        let none = try ELFImage(kernelLikeELF(notes: nil))
        #expect(throws: GuestImageError.noXenNotes) { try XenNotes(none) }

        let bad = try ELFImage(kernelLikeELF(notes: noteRecord(name: "Xen", type: 1, desc: [1, 2, 3])))
        let e = #expect(throws: GuestImageError.self) { try XenNotes(bad) }
        #expect(e?.description.contains("ENTRY") == true)
        let wide = try ELFImage(kernelLikeELF(notes: noteRecord(name: "Xen", type: 17, desc: le64(1 << 40))))
        #expect(throws: GuestImageError.self) { try XenNotes(wide) }
    }
}

@Suite struct GuestKernelTests {
    @Test func rawELFKernel() throws {
        let k = try GuestKernel(fileBytes: kernelLikeELF())
        #expect(k.bzImage == nil)
        #expect(k.xen?.entry == 0xffff_ffff_8304_e1c0)
        #expect(k.kernelPhysicalRange() == (0x100_0000, 0x300_2000))
        var seen: [(UInt64, [UInt8], UInt64)] = []
        try k.loadSegments { paddr, bytes, memorySize in seen.append((paddr, Array(bytes), memorySize)) }
        #expect(seen.map(\.0) == [0x100_0000, 0x200_0000, 0x300_0000])
        #expect(seen[0].1 == (0..<300).map { UInt8($0 & 0xff) })
        #expect(seen[1].1 == [1, 2, 3, 4] && seen[1].2 == 0x1000)
        #expect(seen[2].1 == [9, 9] && seen[2].2 == 0x2000)
    }

    @Test func kernelWithoutXenNotesLoads() throws {
        let k = try GuestKernel(fileBytes: kernelLikeELF(notes: nil))
        #expect(k.xen == nil)
    }

    @Test func bzImageWithLZ4PayloadFromFile() throws {
        let elf = kernelLikeELF()
        // Compress: literals, then one long match of zeros, like real padding.
        let seqs = [Sequence(literals: elf + [0], offset: 1, matchLength: 5000), Sequence(literals: [0, 0, 0])]
        let vmlinux = referenceDecode(seqs)
        let payload = legacyFrame([encodeBlock(seqs)], trailer: UInt32(vmlinux.count))
        let image = fakeBzImage(payload: payload)
        let k = try withTemporaryFile(image) { try GuestKernel.load(path: $0) }
        #expect(k.elfBytes == vmlinux)
        #expect(k.bzImage?.compression == .lz4Legacy)
        #expect(k.bzImage?.kernelVersion == "6.1.0-test (nobody@example) #1")
        #expect(k.xen?.virtBase == 0xffff_ffff_8000_0000)
        // The decompression limit applies.
        #expect(throws: GuestImageError.decompressionLimitExceeded(limit: vmlinux.count - 1)) {
            try GuestKernel(fileBytes: image, decompressionLimit: vmlinux.count - 1)
        }
    }

    @Test func bzImageWithUncompressedPayload() throws {
        let elf = kernelLikeELF()
        let k = try GuestKernel(fileBytes: fakeBzImage(payload: elf))
        #expect(k.elfBytes == elf)
        #expect(k.bzImage?.compression == PayloadCompression.none)
    }

    @Test func otherCompressionsAreNamed() throws {
        let cases: [([UInt8], PayloadCompression, String)] = [
            ([0x1f, 0x8b, 0x08, 0x00], .gzip, "gzip"),
            ([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], .xz, "xz"),
            ([0x5d, 0x00, 0x00, 0x80], .lzma, "LZMA"),
            ([0x42, 0x5a, 0x68, 0x39], .bzip2, "bzip2"),
            ([0x89, 0x4c, 0x5a, 0x4f], .lzo, "LZO"),
            ([0x28, 0xb5, 0x2f, 0xfd], .zstd, "zstd"),
        ]
        for (magic, kind, name) in cases {
            #expect(PayloadCompression(detecting: magic) == kind)
            let error = #expect(throws: GuestImageError.self) {
                try GuestKernel(fileBytes: fakeBzImage(payload: magic + [1, 2, 3, 4]))
            }
            #expect(error?.description == "kernel payload is \(name)-compressed; Xenolith decompresses LZ4 (Debian's default)")
        }
        let unknown = #expect(throws: GuestImageError.self) {
            try GuestKernel(fileBytes: fakeBzImage(payload: [0xde, 0xad, 0xbe, 0xef, 0]))
        }
        #expect(unknown?.description.contains("de ad be ef") == true)
    }

    @Test func notAKernel() throws {
        let e = #expect(throws: GuestImageError.self) { try GuestKernel(fileBytes: Array("#!/bin/sh\necho hi\n".utf8)) }
        #expect(e?.description.hasPrefix("not a kernel image") == true)
        // An ELF with nothing to load.
        var b = ELFBuilder()
        b.segments = [.init(type: 4, data: debianLikeXenNotes())]
        #expect(throws: GuestImageError.self) { try GuestKernel(fileBytes: b.build()) }
    }
}
