import GuestImage
import Testing
@testable import Machine

/// A bzImage header with what the zero page takes from it (no payload).
private func headerOnlyBzImage() throws -> BzImage {
    var f = [UInt8](repeating: 0, count: 5 * 512 + 0x200)
    func put32(_ v: UInt32, _ at: Int) { for k in 0..<4 { f[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) } }
    f[0x1f1] = 4                                   // setup sectors
    f[0x1fe] = 0x55; f[0x1ff] = 0xaa
    f[0x200] = 0xeb; f[0x201] = 0x66               // jmp: the header ends at 0x268
    f.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
    f[0x206] = 0x0f; f[0x207] = 0x02               // protocol 2.15
    f[0x211] = 0x01
    put32(0x7fff_ffff, 0x22c)                      // initrd_addr_max
    put32(0x20_0000, 0x230)
    f[0x236] = 0x7f                                // xloadflags: 64-bit entry and more
    put32(2047, 0x238)                             // cmdline_size
    put32(0x100, 0x248); put32(0x10, 0x24c)        // payload offset and length
    return try BzImage(f)
}

@Suite struct BootTests {
    @Test func e820ForSmallGuestHasLowRAMAndReservedBIOSArea() {
        let m = BootLayout(memorySize: 512 << 20).e820
        #expect(m.first == E820Entry(address: 0, size: 0x9_fc00, type: .ram))
        #expect(m.contains(E820Entry(address: 0xe_0000, size: 0x2_0000, type: .reserved)))
        #expect(m.last == E820Entry(address: 0x10_0000, size: (512 << 20) - 0x10_0000, type: .ram))
        // Sorted, no overlaps; RAM adds up to the guest's size minus the holes below 1 MiB.
        for (a, b) in zip(m, m.dropFirst()) { #expect(a.address + a.size <= b.address) }
        let ram = m.filter { $0.type == .ram }.reduce(UInt64(0)) { $0 + $1.size }
        #expect(ram == (512 << 20) - (0x10_0000 - 0x9_fc00))
    }

    @Test func largeGuestSplitsAroundThePCIHole() {
        let l = BootLayout(memorySize: 6 << 30)
        #expect(l.ramRanges.count == 2)
        #expect(l.ramRanges[0].start == 0 && l.ramRanges[0].size == 3 << 30)
        #expect(l.ramRanges[1].start == 4 << 30 && l.ramRanges[1].size == 3 << 30)
        #expect(l.e820.last == E820Entry(address: 4 << 30, size: 3 << 30, type: .ram))
        #expect(!l.e820.contains { $0.type == .ram && $0.address < 4 << 30 && $0.address + $0.size > 3 << 30 })
    }

    @Test func zeroPageCarriesTheHeaderAndWhatTheLoaderPlaced() throws {
        let image = try headerOnlyBzImage()
        let e820 = BootLayout(memorySize: 256 << 20).e820
        let z = BootParams.zeroPage(bzImage: image, e820: e820, commandLineAddress: 0x2_0000,
                                    initrd: (0x0f00_0000, 0x12_3456), acpiRSDPAddress: 0xe_0000)
        #expect(z.count == 4096)
        #expect(Array(z[0x202..<0x206]) == Array("HdrS".utf8))
        #expect(z.load32(at: 0x238) == 2047)                  // copied from the kernel's header
        #expect(z[0x210] == 0xff)                              // type_of_loader
        #expect(z[0x211] & 1 == 1)                             // LOADED_HIGH
        #expect(z.load32(at: 0x228) == 0x2_0000)               // cmd_line_ptr
        #expect(z.load32(at: 0x218) == 0x0f00_0000)            // ramdisk_image
        #expect(z.load32(at: 0x21c) == 0x12_3456)              // ramdisk_size
        #expect(z.load64(at: 0x070) == 0xe_0000)               // acpi_rsdp_addr
        #expect(Int(z[0x1e8]) == e820.count)
        for (i, e) in e820.enumerated() {
            #expect(z.load64(at: 0x2d0 + 20 * i) == e.address)
            #expect(z.load64(at: 0x2d0 + 20 * i + 8) == e.size)
            #expect(z.load32(at: 0x2d0 + 20 * i + 16) == e.type.rawValue)
        }
        #expect(Array(z[0x268..<0x2d0]).allSatisfy { $0 == 0 })   // nothing past the header but e820
        #expect(BootParams.initrdAddressLimit(image) == 0x7fff_ffff)
        #expect(BootParams.commandLineLimit(image) == 2047)
    }

    @Test func rawVmlinuxGetsAMinimalHeader() {
        let z = BootParams.zeroPage(bzImage: nil, e820: [], commandLineAddress: 0x2_0000, initrd: nil, acpiRSDPAddress: nil)
        #expect(z[0x1fe] == 0x55 && z[0x1ff] == 0xaa)
        #expect(Array(z[0x202..<0x206]) == Array("HdrS".utf8))
        #expect(z.load32(at: 0x218) == 0 && z.load64(at: 0x070) == 0)
    }

    @Test func identityMapCoversFourGiBWithLargePages() {
        let t = LongModeEntry.pageTables
        #expect(t.load64(at: 0) == BootLayout.pdptAddress | 3)
        for i in 0..<4 { #expect(t.load64(at: 0x1000 + 8 * i) == (BootLayout.pageDirectoryAddress + UInt64(i) * 0x1000) | 3) }
        // Spot checks: the entry for an address maps exactly that address.
        for address: UInt64 in [0, 0x100_0000, 0xbfe0_0000, 0xffe0_0000] {
            let index = Int(address >> 21)
            #expect(t.load64(at: 0x2000 + 8 * index) == address | 0x83)
        }
    }

    @Test func bootGDTHasFlatCodeAndDataWhereTheProtocolWantsThem() {
        let g = LongModeEntry.gdt
        #expect(g.load64(at: 0) == 0 && g.load64(at: 8) == 0)
        let code = g.load64(at: Int(LongModeEntry.codeSelector))
        let data = g.load64(at: Int(LongModeEntry.dataSelector))
        #expect(code >> 53 & 1 == 1 && code >> 47 & 1 == 1 && code >> 43 & 1 == 1)   // L, P, executable
        #expect(data >> 47 & 1 == 1 && data >> 43 & 1 == 0 && data >> 41 & 1 == 1)   // P, data, writable
    }
}
