/// The Fixed ACPI Description Table, revision 6 (ACPI 6.4 §5.2.9) of a
/// hardware-reduced machine (§4.1): no PM1/PM2/GPE blocks, no PM timer, no
/// SMI command port, no FACS. What is left: where the DSDT is, the sleep
/// control/status registers that replace PM1 for S5 (§4.8.3.7), the reset
/// register, and the legacy devices the machine does have.
enum FADT {
    static let length = 276
    static let revision: UInt8 = 6
    /// ACPI 6.4.
    static let minorVersion: UInt8 = 4

    /// Byte offsets in the table (Table 5.9).
    enum Offset {
        static let dsdt = 40
        static let sciInterrupt = 46
        static let century = 108
        static let bootArchitecture = 109
        static let flags = 112
        static let resetRegister = 116
        static let resetValue = 128
        static let minorVersion = 131
        static let extendedDSDT = 140
        static let sleepControlRegister = 244
        static let sleepStatusRegister = 256
        static let hypervisorVendor = 268
    }

    /// Fixed feature flags (Table 5.10).
    enum Flag {
        /// No fixed-hardware power or sleep button: with the bit clear
        /// Linux would install fixed-event handlers on PM1 registers that a
        /// hardware-reduced machine does not have.
        static let powerButtonIsControlMethod: UInt32 = 1 << 4
        static let sleepButtonIsControlMethod: UInt32 = 1 << 5
        static let resetRegisterSupported: UInt32 = 1 << 10
        static let hardwareReduced: UInt32 = 1 << 20
    }

    /// IA-PC boot architecture flags (Table 5.11). Bit 5, "CMOS RTC not
    /// present", stays clear: the machine has one.
    enum BootArchitecture {
        static let i8042: UInt16 = 1 << 1
    }

    /// The CMOS RAM index of the century byte (`CMOSClock` keeps it there).
    static let centuryRegister: UInt8 = 0x32
    static let hypervisorVendor = "XENOLITH"

    static func table(config: ACPIConfig, dsdtAddress: UInt64) -> [UInt8] {
        var body = [UInt8](repeating: 0, count: length - SystemDescriptionTable.headerLength)
        func put(_ field: [UInt8], at offset: Int) {
            let start = offset - SystemDescriptionTable.headerLength
            body.replaceSubrange(start..<(start + field.count), with: field)
        }
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            var field: [UInt8] = []
            field.appendLittleEndian(value)
            put(field, at: offset)
        }

        // Both DSDT pointers, equal: ACPICA warns only when they differ.
        // The 32-bit one fits: ACPITables keeps the tables below 4 GiB.
        put(UInt32(truncatingIfNeeded: dsdtAddress), at: Offset.dsdt)
        put(dsdtAddress, at: Offset.extendedDSDT)
        put(UInt16(ACPITables.sciIRQ), at: Offset.sciInterrupt)
        put(centuryRegister, at: Offset.century)
        put(BootArchitecture.i8042, at: Offset.bootArchitecture)
        put(Flag.hardwareReduced | Flag.resetRegisterSupported
            | Flag.powerButtonIsControlMethod | Flag.sleepButtonIsControlMethod, at: Offset.flags)
        put(GenericAddress.ioPort(config.resetPort).bytes, at: Offset.resetRegister)
        put(config.resetValue, at: Offset.resetValue)
        put(minorVersion, at: Offset.minorVersion)
        put(GenericAddress.ioPort(config.sleepControlPort).bytes, at: Offset.sleepControlRegister)
        put(GenericAddress.ioPort(config.sleepStatusPort).bytes, at: Offset.sleepStatusRegister)
        var vendor: [UInt8] = []
        vendor.appendASCII(hypervisorVendor, width: 8)
        put(vendor, at: Offset.hypervisorVendor)

        return SystemDescriptionTable.make(signature: "FACP", revision: revision, config: config, body: body)
    }
}
