/// The Differentiated System Description Table (ACPI 6.4 §5.2.11.1): the
/// machine's ACPI namespace, as AML. In ASL:
///
///     DefinitionBlock ("", "DSDT", 2, "XENOLI", "XENOLITH", 1) {
///         Name (_S5, Package () { 5, 0, 0, 0 })
///         Scope (\_SB) {
///             Device (PCI0) { _HID, _CID, _SEG, _BBN, _UID, _CRS }
///             Device (COM1) { _HID, _UID, _CRS }
///             Device (CPUS) { ... C000, C001, ...: see `cpuHotplug` }
///             Device (PWRB) { _HID "PNP0C0C" }: the power button
///             Device (GED0) { _HID "ACPI0013", _UID, _CRS, _EVT }
///         }
///     }
enum DSDT {
    /// Revision 2: integers in the AML are 64-bit (§5.2.11.1).
    static let revision: UInt8 = 2
    /// PCI type-1 configuration space: CONFIG_ADDRESS and CONFIG_DATA.
    static let pciConfigPorts: UInt16 = 0xCF8
    static let pciConfigPortCount: UInt8 = 8

    static func table(config: ACPIConfig) -> [UInt8] {
        let aml = softOff + AML.scope("\\_SB_", [pciHostBridge(config: config), com1(config: config),
                                                  cpuHotplug(config: config), powerButton, eventDevice(config: config)])
        return SystemDescriptionTable.make(signature: "DSDT", revision: revision, config: config, body: aml)
    }

    /// `\_S5`: the SLP_TYP values for soft-off (§7.4.2). Linux needs it to
    /// power off, and in a hardware-reduced machine writes SLP_TYPa (5)
    /// with SLP_EN to the FADT's sleep control register (`PowerControl`).
    /// The second value would be SLP_TYPb, for a PM1b block there is not.
    static let softOff = AML.name("_S5_", AML.package([
        AML.integer(UInt64(softOffSleepType)), AML.integer(0), AML.integer(0), AML.integer(0),
    ]))
    static let softOffSleepType: UInt8 = 5

    /// The PCI host bridge of bus 0 (§6.1.5 _HID and _CID; PCI Firmware
    /// spec): a PCI Express root (PNP0A08) compatible with a PCI bus
    /// (PNP0A03), segment 0, bus 0. Its _CRS gives what the bridge decodes
    /// for the devices below it: bus 0, all I/O ports except the
    /// configuration ports (which it consumes itself), and the MMIO window.
    static func pciHostBridge(config: ACPIConfig) -> [UInt8] {
        let resources = AML.resourceTemplate([
            ResourceDescriptor.wordBusNumber(0...0),
            ResourceDescriptor.io(base: pciConfigPorts, alignment: 1, length: pciConfigPortCount),
            ResourceDescriptor.wordIO(0x0000...(pciConfigPorts - 1)),
            ResourceDescriptor.wordIO((pciConfigPorts + UInt16(pciConfigPortCount))...0xFFFF),
            ResourceDescriptor.dwordMemory(config.pciMemoryWindow),
        ])
        return AML.device("PCI0", [
            AML.name("_HID", AML.eisaID("PNP0A08")),
            AML.name("_CID", AML.eisaID("PNP0A03")),
            AML.name("_SEG", AML.integer(0)),
            AML.name("_BBN", AML.integer(0)),
            AML.name("_UID", AML.integer(0)),
            AML.name("_CRS", resources),
        ])
    }

    /// The power button, a control-method one (the FADT's PWR_BUTTON flag
    /// says there is no fixed one): Linux's ACPI button driver binds to
    /// PNP0C0C and turns a Notify (PWRB, 0x80) into KEY_POWER.
    static let powerButton = AML.device("PWRB", [
        AML.name("_HID", AML.eisaID("PNP0C0C")),
        AML.name("_UID", AML.integer(0)),
    ])

    /// COM1, a 16550-compatible UART (PNP0501), so that Linux's 8250_pnp
    /// driver finds its ports and ISA IRQ from the firmware.
    static func com1(config: ACPIConfig) -> [UInt8] {
        AML.device("COM1", [
            AML.name("_HID", AML.eisaID("PNP0501")),
            AML.name("_UID", AML.integer(0)),
            AML.name("_CRS", AML.resourceTemplate([
                ResourceDescriptor.io(base: config.serialPort, alignment: 0, length: 8),
                ResourceDescriptor.irqNoFlags([config.serialIRQ]),
            ])),
        ])
    }
}
