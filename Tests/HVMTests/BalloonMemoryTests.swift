import Glibc
import KVM
import Machine
import Testing
@testable import HVM

/// What the HVM machine lets its balloon free: the e820's RAM pages, mapped
/// to their place in the memfd (above 4 GiB they follow the low RAM).
/// lseek's SEEK_DATA (Linux; Glibc hides it behind _GNU_SOURCE).
private let seekData: Int32 = 3

@Suite("HVM guest RAM as the balloon sees it")
struct BalloonMemoryTests {
    @Test("5 GiB: RAM frames below the hole and above 4 GiB; the EBDA, BIOS area and PCI hole are not RAM")
    func frames() throws {
        let layout = BootLayout(memorySize: 5 << 30)
        let memory = try GuestMemory(size: 5 << 30, name: "balloon-map-test")
        let ram = GuestPhysicalMemory(memory: memory, layout: layout)
        #expect(ram.frameLimit == (6 << 30) / 4096)
        for frame: UInt64 in [0, 0x9e, 0x100, 0xbffff, 0x10_0000, 0x17_ffff] { #expect(ram.isRAM(frame: frame), "\(frame)") }
        for frame: UInt64 in [0x9f, 0xa0, 0xe0, 0xff, 0xc_0000, 0xf_ffff, 0x18_0000, 0xffff_ffff] {
            #expect(!ram.isRAM(frame: frame), "\(frame)")
        }
        // Releases stay on one side of the hole and inside RAM.
        #expect(!ram.release(frames: 0xbffff, count: 2))
        #expect(!ram.release(frames: 0x17_ffff, count: 2))
        #expect(!ram.release(frames: 0xc_0000, count: 1))
        #expect(!ram.release(frames: 0x10_0000, count: 0))

        // Frame 0x100000 (4 GiB) is memfd offset 3 GiB: written, then punched out.
        let offset = 3 << 30
        memset(memory.base + offset, 0xab, 8192)
        #expect(lseek(memory.fd, off_t(offset), seekData) == off_t(offset))
        #expect(ram.release(frames: 0x10_0000, count: 2))
        let next = lseek(memory.fd, off_t(offset), seekData)
        #expect(next == -1 || next >= off_t(offset + 8192), "the two pages are a hole")
        #expect(memory.base.load(fromByteOffset: offset, as: UInt8.self) == 0)
    }
}
