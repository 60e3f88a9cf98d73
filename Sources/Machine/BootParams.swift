import GuestImage

/// The zero page (`struct boot_params`, Documentation/arch/x86/boot.rst and
/// zero-page.rst): what a 64-bit direct boot tells the kernel about its
/// command line, initrd, memory map and ACPI tables.
public enum BootParams {
    /// Offsets in `struct boot_params` (arch/x86/include/uapi/asm/bootparam.h).
    enum Offset {
        static let acpiRSDPAddress = 0x070
        static let extRamdiskImage = 0x0c0
        static let extRamdiskSize = 0x0c4
        static let extCommandLinePointer = 0x0c8
        static let e820Entries = 0x1e8
        static let setupHeader = 0x1f1
        static let bootFlag = 0x1fe
        static let headerMagic = 0x202
        static let version = 0x206
        static let typeOfLoader = 0x210
        static let loadFlags = 0x211
        static let ramdiskImage = 0x218
        static let ramdiskSize = 0x21c
        static let commandLinePointer = 0x228
        static let initrdAddressMax = 0x22c
        static let kernelAlignment = 0x230
        static let commandLineSize = 0x238
        static let e820Table = 0x2d0
    }

    /// `E820_MAX_ENTRIES_ZEROPAGE`.
    public static let maxE820Entries = 128
    /// "Undefined" boot loader ID: we are not one of the registered loaders.
    static let loaderID: UInt8 = 0xff
    /// LOADED_HIGH: the protected-mode kernel is at 1 MiB or above.
    static let loadedHigh: UInt8 = 0x01

    /// The highest address (inclusive) the kernel accepts an initrd at.
    public static func initrdAddressLimit(_ image: BzImage?) -> UInt64 {
        guard let image, image.protocolVersion >= 0x0203,
              let v = image.bytes.checkedLoad32(at: Offset.initrdAddressMax), v != 0 else { return 0x37ff_ffff }
        return UInt64(v)
    }

    /// Builds the 4 KiB zero page. The kernel's own setup header is copied
    /// from the bzImage when there is one (the kernel reads fields of it,
    /// such as its alignment, back from here); a raw vmlinux gets a minimal
    /// header with the boot protocol's magic values.
    public static func zeroPage(
        bzImage: BzImage?,
        e820: [E820Entry],
        commandLineAddress: UInt64,
        initrd: (address: UInt64, size: UInt64)?,
        acpiRSDPAddress: UInt64?
    ) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: 4096)
        if let image = bzImage {
            // The header runs from 0x1f1 to 0x202 + the byte at 0x201.
            let end = min(image.bytes.count, 0x202 + Int(image.bytes[0x201]), 4096)
            if end > Offset.setupHeader {
                page.replaceSubrange(Offset.setupHeader..<end, with: image.bytes[Offset.setupHeader..<end])
            }
        } else {
            page.store16(0xaa55, at: Offset.bootFlag)
            page.store32(0x5372_6448, at: Offset.headerMagic)   // "HdrS"
            page.store16(0x020f, at: Offset.version)
            page.store32(0x0100_0000, at: Offset.kernelAlignment)
        }
        page[Offset.typeOfLoader] = loaderID
        page[Offset.loadFlags] |= loadedHigh

        page.store32(UInt32(truncatingIfNeeded: commandLineAddress), at: Offset.commandLinePointer)
        page.store32(UInt32(truncatingIfNeeded: commandLineAddress >> 32), at: Offset.extCommandLinePointer)
        if let initrd {
            page.store32(UInt32(truncatingIfNeeded: initrd.address), at: Offset.ramdiskImage)
            page.store32(UInt32(truncatingIfNeeded: initrd.size), at: Offset.ramdiskSize)
            page.store32(UInt32(truncatingIfNeeded: initrd.address >> 32), at: Offset.extRamdiskImage)
            page.store32(UInt32(truncatingIfNeeded: initrd.size >> 32), at: Offset.extRamdiskSize)
        }
        if let acpiRSDPAddress {
            page.store64(acpiRSDPAddress, at: Offset.acpiRSDPAddress)
        }
        let entries = e820.prefix(maxE820Entries)
        page[Offset.e820Entries] = UInt8(entries.count)
        for (i, e) in entries.enumerated() {
            let at = Offset.e820Table + i * 20
            page.store64(e.address, at: at)
            page.store64(e.size, at: at + 8)
            page.store32(e.type.rawValue, at: at + 16)
        }
        return page
    }

    /// The command-line limit the kernel states (`cmdline_size`), or the
    /// protocol's old 255 bytes.
    public static func commandLineLimit(_ image: BzImage?) -> Int {
        guard let image, image.protocolVersion >= 0x0206,
              let v = image.bytes.checkedLoad32(at: Offset.commandLineSize) else { return 2048 }
        return Int(v)
    }
}

extension Array where Element == UInt8 {
    mutating func store16(_ v: UInt16, at i: Int) {
        self[i] = UInt8(truncatingIfNeeded: v); self[i + 1] = UInt8(truncatingIfNeeded: v >> 8)
    }

    mutating func store32(_ v: UInt32, at i: Int) {
        for k in 0..<4 { self[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
    }

    mutating func store64(_ v: UInt64, at i: Int) {
        for k in 0..<8 { self[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
    }

    func checkedLoad32(at i: Int) -> UInt32? {
        guard i >= 0, i + 4 <= count else { return nil }
        return load32(at: i)
    }

    func load32(at i: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(self[i + $1]) << (8 * UInt32($1)) }
    }

    func load64(at i: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(self[i + $1]) << (8 * UInt64($1)) }
    }
}
