/// The CPU state of the Linux 64-bit boot protocol (boot.rst, "64-bit Boot
/// Protocol"): long mode with paging, an identity map covering the kernel,
/// the zero page and the command line, a GDT with 4 GiB flat __BOOT_CS
/// (0x10) and __BOOT_DS (0x18), interrupts off, `rsi` at the zero page.
/// Plain values: the VMM turns them into KVM's register structures.
public enum LongModeEntry {
    public static let codeSelector: UInt16 = 0x10
    public static let dataSelector: UInt16 = 0x18

    /// CR0: PE | MP | ET | NE | PG.
    public static let cr0: UInt64 = 0x8000_0033
    /// CR4: PAE.
    public static let cr4: UInt64 = 0x20
    /// EFER: LME | LMA.
    public static let efer: UInt64 = 0x500

    /// A segment as the CPU caches it.
    public struct Segment: Sendable, Equatable {
        public var selector: UInt16
        public var base: UInt64 = 0
        public var limit: UInt32 = 0xffff_ffff
        public var type: UInt8
        public var present = true
        public var dpl: UInt8 = 0
        /// 1 for code and data segments, 0 for system ones (TSS, LDT).
        public var system: UInt8 = 1
        public var longMode: Bool = false
        public var defaultBig: Bool = false
        public var granularity = true
    }

    /// 64-bit code, execute/read, accessed.
    public static let code = Segment(selector: codeSelector, type: 0xb, longMode: true)
    /// Data, read/write, accessed.
    public static let data = Segment(selector: dataSelector, type: 0x3, defaultBig: true)
    /// KVM wants a usable busy 64-bit TSS in long mode; the kernel loads its own.
    public static let taskRegister = Segment(selector: 0x20, limit: 0x67, type: 0xb, system: 0, granularity: false)

    /// The boot GDT: null, null, __BOOT_CS, __BOOT_DS.
    public static var gdt: [UInt8] {
        var g = [UInt8](repeating: 0, count: 32)
        g.store64(0x00af_9b00_0000_ffff, at: 16)   // code: P, S, type b, L, G, limit 0xfffff
        g.store64(0x00cf_9300_0000_ffff, at: 24)   // data: P, S, type 3, D/B, G
        return g
    }

    /// PML4, PDPT and four page directories (6 pages from `pml4Address`,
    /// laid out as BootLayout places them) mapping the first 4 GiB with
    /// 2 MiB pages, identity.
    public static var pageTables: [UInt8] {
        precondition(BootLayout.pdptAddress == BootLayout.pml4Address + 0x1000
                     && BootLayout.pageDirectoryAddress == BootLayout.pdptAddress + 0x1000)
        var t = [UInt8](repeating: 0, count: 6 * 4096)
        let present: UInt64 = 0x3   // P | RW
        t.store64(BootLayout.pdptAddress | present, at: 0)
        for i in 0..<4 {
            t.store64((BootLayout.pageDirectoryAddress + UInt64(i) * 0x1000) | present, at: 0x1000 + i * 8)
        }
        for i in 0..<(4 * 512) {
            t.store64(UInt64(i) << 21 | present | 0x80, at: 0x2000 + i * 8)   // PS: 2 MiB page
        }
        return t
    }
}
