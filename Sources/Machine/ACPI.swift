/// What the ACPI tables describe: CPUs, interrupt controllers, the
/// hardware-reduced sleep and reset registers, the PCI host bridge's
/// windows and COM1. The defaults match the devices the HVM machine has
/// (`PowerControl` at 0x600, `Serial16550` as COM1, `PCIHostBridge`, the PCI
/// hole of `BootLayout`).
public struct ACPIConfig: Sendable, Equatable {
    /// xAPIC IDs are 8 bits and 0xFF is the broadcast ID; the CPUs take IDs
    /// 0..<possibleCPUs and the I/O APIC the next one, so at most 254 CPUs.
    public static let maximumCPUs = 254

    /// CPUs the MADT lists, 1...`maximumCPUs`; CPU i has APIC ID and ACPI
    /// processor UID i.
    public var possibleCPUs: Int
    /// The first `enabledCPUs` CPUs (at least the boot CPU) are Enabled; the
    /// rest are Online Capable: Linux counts them as possible (hot-pluggable)
    /// CPUs but does not start them.
    public var enabledCPUs: Int
    public var localAPICAddress: UInt32 = 0xFEE0_0000
    public var ioAPICAddress: UInt32 = 0xFEC0_0000
    /// Must not be a CPU's APIC ID.
    public var ioAPICID: UInt8
    /// FADT SLEEP_CONTROL_REG, SLEEP_STATUS_REG and RESET_REG: 8-bit I/O
    /// ports (`PowerControl`'s defaults).
    public var sleepControlPort: UInt16 = 0x600
    public var sleepStatusPort: UInt16 = 0x601
    public var resetPort: UInt16 = 0x602
    /// The power button's status register (`PowerControl`), which the GED's
    /// `_EVT` reads and clears before notifying the button device.
    public var powerButtonStatusPort: UInt16 = 0x603
    /// What the guest writes to `resetPort` to reset the machine.
    public var resetValue: UInt8 = 0x01
    /// The CPU hotplug register block (`CPUHotplugController`) the DSDT's
    /// processor devices read and write.
    public var cpuHotplugPort: UInt16 = CPUHotplugController.defaultBase
    /// The I/O APIC input of the Generic Event Device, which the VMM pulses
    /// when a CPU hotplug event is pending. Above the ISA IRQs (0...15), so
    /// no legacy driver or ISA override can claim it; below 24, the I/O
    /// APIC's pin count.
    public var eventInterrupt: UInt32 = 16
    /// The host bridge's 32-bit MMIO window for BARs: the PCI hole from
    /// 3 GiB up to, not including, the I/O APIC and local APIC pages (and
    /// 0xF000_0000..., kept free for a future MMCONFIG area).
    public var pciMemoryWindow: ClosedRange<UInt32> = 0xC000_0000...0xEFFF_FFFF
    /// COM1's eight registers and ISA IRQ, for the DSDT's COM1 device.
    public var serialPort: UInt16 = 0x3F8
    public var serialIRQ: UInt8 = 4
    /// Table header OEM ID (6 ASCII characters) and OEM table ID (8):
    /// longer strings are cut, shorter ones padded with spaces.
    public var oemID: String = "XENOLI"
    public var oemTableID: String = "XENOLITH"

    /// - Precondition: `possibleCPUs` in 1...`maximumCPUs`, `enabledCPUs`
    ///   in 1...`possibleCPUs`.
    public init(possibleCPUs: Int, enabledCPUs: Int) {
        precondition((1...Self.maximumCPUs).contains(possibleCPUs),
                     "ACPI: \(possibleCPUs) CPUs; the MADT describes 1...\(Self.maximumCPUs)")
        precondition((1...possibleCPUs).contains(enabledCPUs),
                     "ACPI: \(enabledCPUs) enabled CPUs of \(possibleCPUs); at least the boot CPU must be enabled")
        self.possibleCPUs = possibleCPUs
        self.enabledCPUs = enabledCPUs
        ioAPICID = UInt8(possibleCPUs)
    }

    /// The invariants the tables rely on; the fields are public and
    /// mutable, so `ACPITables` checks them again when it builds.
    func checkInvariants() {
        precondition((1...Self.maximumCPUs).contains(possibleCPUs), "ACPI: possibleCPUs \(possibleCPUs) out of range")
        precondition((1...possibleCPUs).contains(enabledCPUs), "ACPI: enabledCPUs \(enabledCPUs) out of range")
        precondition(Int(ioAPICID) >= possibleCPUs && ioAPICID != 0xFF,
                     "ACPI: I/O APIC ID \(ioAPICID) clashes with a local APIC ID")
        precondition(eventInterrupt < 24, "ACPI: GED interrupt \(eventInterrupt) is not an I/O APIC input (0...23)")
        precondition(!pciMemoryWindow.overlaps(Self.page(at: ioAPICAddress))
                     && !pciMemoryWindow.overlaps(Self.page(at: localAPICAddress)),
                     "ACPI: the PCI memory window overlaps the I/O APIC or local APIC")
    }

    private static func page(at address: UInt32) -> ClosedRange<UInt32> {
        address...(address | 0xFFF)
    }
}

/// The ACPI tables of the HVM machine, laid out contiguously from a
/// guest-physical base: RSDP, XSDT, FADT, MADT, DSDT, each at an 8-byte
/// boundary. The guest finds them through `rsdpAddress` (Linux:
/// `boot_params.acpi_rsdp_addr`); the range must be reserved in the e820
/// map. With the RSDP first, a 16-byte-aligned base in 0xE0000...0xFFFFF
/// also lets the legacy BIOS-area scan find it (ACPI 6.4 §5.2.5.1).
public struct ACPITables: Sendable {
    /// Guest-physical address of `bytes[0]`.
    public let base: UInt64
    /// All tables, to copy to guest memory at `base`.
    public let bytes: [UInt8]
    /// Where the RSDP is: `base`.
    public var rsdpAddress: UInt64 { base }

    /// The SCI's ISA IRQ. A hardware-reduced machine has no SCI, but Linux
    /// still treats the MADT override whose source is FADT.SCI_INT as the
    /// SCI's: left at 0 it would turn the timer's IRQ 0 override
    /// level-triggered. 9 is where PC chipsets put it, and the MADT's
    /// IRQ 9 override matches.
    static let sciIRQ: UInt8 = 9

    /// - Precondition: `config` is valid (see `ACPIConfig`), `base` is
    ///   16-byte aligned, and the tables end below 4 GiB (the FADT's DSDT
    ///   field and the resource windows are 32-bit).
    public init(config: ACPIConfig, base: UInt64) {
        config.checkInvariants()
        precondition(base % 16 == 0, "ACPI: base 0x\(String(base, radix: 16)) is not 16-byte aligned")
        self.base = base

        let dsdt = DSDT.table(config: config)
        let madt = MADT.table(config: config)
        let tableCount = 2                                   // XSDT entries: FADT, MADT
        let xsdtOffset = Self.aligned(RSDP.length)
        let fadtOffset = Self.aligned(xsdtOffset + XSDT.length(entries: tableCount))
        let madtOffset = Self.aligned(fadtOffset + FADT.length)
        let dsdtOffset = Self.aligned(madtOffset + madt.count)
        let end = dsdtOffset + dsdt.count
        precondition(base + UInt64(end) <= 1 << 32, "ACPI: tables must end below 4 GiB")

        let fadt = FADT.table(config: config, dsdtAddress: base + UInt64(dsdtOffset))
        let xsdt = XSDT.table(config: config, entries: [base + UInt64(fadtOffset), base + UInt64(madtOffset)])
        let rsdp = RSDP.structure(oemID: config.oemID, xsdtAddress: base + UInt64(xsdtOffset))

        var image = [UInt8](repeating: 0, count: end)
        for (offset, table) in [(0, rsdp), (xsdtOffset, xsdt), (fadtOffset, fadt), (madtOffset, madt), (dsdtOffset, dsdt)] {
            image.replaceSubrange(offset..<(offset + table.count), with: table)
        }
        bytes = image
    }

    private static func aligned(_ offset: Int) -> Int { (offset + 7) & ~7 }
}
