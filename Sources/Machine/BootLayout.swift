import GuestImage

/// Where a direct 64-bit boot puts things in guest-physical memory, and the
/// memory map the guest is told. Low memory follows the PC's shape so the
/// kernel's early code finds what it expects: RAM below 0x9FC00, the EBDA
/// and BIOS area reserved, RAM from 1 MiB up to the PCI hole at 3 GiB, the
/// rest above 4 GiB.
public struct BootLayout: Sendable, Equatable {
    /// Boot GDT (4 entries: null, null, __BOOT_CS 0x10, __BOOT_DS 0x18).
    public static let gdtAddress: UInt64 = 0x500
    /// The zero page (`struct boot_params`); `rsi` points here at entry.
    public static let zeroPageAddress: UInt64 = 0x7000
    /// Top of the boot stack (the kernel switches to its own at once).
    public static let stackTop: UInt64 = 0x8ff0
    /// PML4, PDPT and four page directories: 4 GiB identity-mapped in 2 MiB pages.
    public static let pml4Address: UInt64 = 0x9000
    public static let pdptAddress: UInt64 = 0xa000
    public static let pageDirectoryAddress: UInt64 = 0xb000   // 4 pages
    /// The kernel command line (NUL-terminated).
    public static let commandLineAddress: UInt64 = 0x2_0000
    public static let commandLineLimit = 0x1_0000
    /// ACPI tables, in the reserved BIOS area below 1 MiB.
    public static let acpiAddress: UInt64 = 0xe_0000
    public static let acpiLimit = 0x2_0000
    /// Start of the PCI hole (MMIO for devices, the I/O APIC, the local APIC).
    public static let pciHoleStart: UInt64 = 0xc000_0000
    public static let fourGiB: UInt64 = 1 << 32
    public static let ebdaStart: UInt64 = 0x9_fc00
    public static let highMemoryStart: UInt64 = 0x10_0000

    /// Guest RAM in bytes (the memory slots: below the hole, and above 4 GiB).
    public let memorySize: UInt64

    public init(memorySize: UInt64) {
        self.memorySize = memorySize
    }

    /// RAM below the PCI hole and above 4 GiB, as (guest-physical start, size).
    public var ramRanges: [(start: UInt64, size: UInt64)] {
        let low = min(memorySize, Self.pciHoleStart)
        var r: [(UInt64, UInt64)] = [(0, low)]
        if memorySize > low { r.append((Self.fourGiB, memorySize - low)) }
        return r
    }

    /// The e820 map handed to the kernel.
    public var e820: [E820Entry] {
        let lowTop = min(memorySize, Self.pciHoleStart)
        var map = [
            E820Entry(address: 0, size: Self.ebdaStart, type: .ram),
            E820Entry(address: Self.ebdaStart, size: 0xa_0000 - Self.ebdaStart, type: .reserved),
            E820Entry(address: 0xe_0000, size: Self.highMemoryStart - 0xe_0000, type: .reserved),
        ]
        if lowTop > Self.highMemoryStart {
            map.append(E820Entry(address: Self.highMemoryStart, size: lowTop - Self.highMemoryStart, type: .ram))
        }
        if memorySize > lowTop {
            map.append(E820Entry(address: Self.fourGiB, size: memorySize - lowTop, type: .ram))
        }
        return map
    }

    /// The highest usable byte + 1 below 4 GiB.
    public var lowRAMTop: UInt64 { min(memorySize, Self.pciHoleStart) }
}

/// One entry of the BIOS e820 memory map (`struct boot_e820_entry`).
public struct E820Entry: Sendable, Equatable {
    public enum Kind: UInt32, Sendable {
        case ram = 1, reserved = 2, acpi = 3, nvs = 4, unusable = 5
    }

    public var address: UInt64
    public var size: UInt64
    public var type: Kind

    public init(address: UInt64, size: UInt64, type: Kind) {
        self.address = address
        self.size = size
        self.type = type
    }
}
