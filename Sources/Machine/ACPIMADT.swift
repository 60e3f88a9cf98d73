/// The Multiple APIC Description Table, revision 5 (ACPI 6.4 §5.2.12):
/// the only place the guest learns its CPUs (Debian's kernel has no MP
/// table support), the I/O APIC and how ISA IRQs reach it.
enum MADT {
    static let revision: UInt8 = 5
    /// Local interrupt controller address and flags, before the entries.
    static let fixedFieldsLength = 8

    /// Flags (Table 5.20): the machine also has (on paper) dual 8259 PICs,
    /// which an OS must mask before it uses the APICs.
    static let pcatCompatible: UInt32 = 1 << 0

    /// Interrupt controller structure types (Table 5.21) and their lengths.
    enum EntryType: UInt8 {
        case processorLocalAPIC = 0, ioAPIC = 1, interruptSourceOverride = 2, localAPICNMI = 4

        var length: UInt8 {
            switch self {
            case .processorLocalAPIC: 8
            case .ioAPIC: 12
            case .interruptSourceOverride: 10
            case .localAPICNMI: 6
            }
        }
    }

    /// Local APIC flags (Table 5.23). Online Capable (MADT revision 5) is
    /// for a CPU that is not enabled at boot but may be brought up later;
    /// Linux ignores a disabled CPU without it. Linux 6.1 (acpi_parse_lapic)
    /// registers an Online Capable entry as a disabled CPU, and
    /// prefill_possible_map makes enabled + disabled CPUs the possible ones:
    /// so every `possibleCPUs` entry is a CPU the guest can hot-add (through
    /// the DSDT's processor devices, whose `_MAT` then says Enabled).
    enum LocalAPICFlag {
        static let enabled: UInt32 = 1 << 0
        static let onlineCapable: UInt32 = 1 << 1
    }

    /// MPS INTI flags (Table 5.26): polarity bits 1:0, trigger mode bits 3:2.
    enum INTIFlag {
        static let conforming: UInt16 = 0
        static let activeHigh: UInt16 = 0b01
        static let levelTriggered: UInt16 = 0b11 << 2
    }

    /// An ISA IRQ that reaches the I/O APIC on another pin or with other
    /// signalling than the ISA default (edge, active high, pin == IRQ).
    struct InterruptSourceOverride: Equatable {
        var isaIRQ: UInt8
        var globalSystemInterrupt: UInt32
        var flags: UInt16
    }

    /// What PC chipsets (and so every VMM) wire: the PIT's IRQ 0 to pin 2,
    /// where the 8259 cascade would be; the SCI's IRQ 9 level-triggered,
    /// active high.
    static let overrides = [
        InterruptSourceOverride(isaIRQ: 0, globalSystemInterrupt: 2, flags: INTIFlag.conforming),
        InterruptSourceOverride(isaIRQ: ACPITables.sciIRQ, globalSystemInterrupt: UInt32(ACPITables.sciIRQ),
                                flags: INTIFlag.activeHigh | INTIFlag.levelTriggered),
    ]

    /// ACPI processor UID 0xFF: the NMI entry applies to every processor.
    static let allProcessors: UInt8 = 0xFF
    /// LINT1 is where the chipset delivers NMIs to every local APIC.
    static let nmiLINT: UInt8 = 1

    static func table(config: ACPIConfig) -> [UInt8] {
        var body: [UInt8] = []
        body.appendLittleEndian(config.localAPICAddress)
        body.appendLittleEndian(pcatCompatible)

        for cpu in 0..<config.possibleCPUs {
            body += entryHeader(.processorLocalAPIC)
            body.append(UInt8(cpu))                                 // ACPI processor UID
            body.append(UInt8(cpu))                                 // APIC ID
            body.appendLittleEndian(cpu < config.enabledCPUs ? LocalAPICFlag.enabled : LocalAPICFlag.onlineCapable)
        }

        body += entryHeader(.ioAPIC)
        body.append(config.ioAPICID)
        body.append(0)                                              // reserved
        body.appendLittleEndian(config.ioAPICAddress)
        body.appendLittleEndian(UInt32(0))                          // its pins are GSIs 0...23

        for o in overrides {
            body += entryHeader(.interruptSourceOverride)
            body.append(0)                                          // bus: ISA
            body.append(o.isaIRQ)
            body.appendLittleEndian(o.globalSystemInterrupt)
            body.appendLittleEndian(o.flags)
        }

        body += entryHeader(.localAPICNMI)
        body.append(allProcessors)
        body.appendLittleEndian(INTIFlag.conforming)
        body.append(nmiLINT)

        return SystemDescriptionTable.make(signature: "APIC", revision: revision, config: config, body: body)
    }

    private static func entryHeader(_ type: EntryType) -> [UInt8] { [type.rawValue, type.length] }
}
