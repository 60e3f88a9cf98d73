/// The DSDT's CPU hotplug: a processor device per possible CPU and the
/// methods over `CPUHotplugController`'s registers, and the Generic Event
/// Device that tells the OS to look (a hardware-reduced machine has no GPE
/// block; the GED, ACPI 6.4 §5.6.9, is its event source). In ASL:
///
///     Device (CPUS) {
///         Name (_HID, "ACPI0010")                     // processor container
///         Name (_CID, EisaId ("PNP0A05"))
///         Mutex (CPLK, 0)                             // guards CSEL and what it selects
///         OperationRegion (PRST, SystemIO, 0x610, 12)
///         Field (PRST, DWordAcc, NoLock, WriteAsZeros) { CSEL, 32 }
///         Field (PRST, ByteAcc, NoLock, WriteAsZeros) { Offset (4), CPEN, 1, CINS, 1, CRMV, 1, CEJ0, 1 }
///         Method (CSTA, 1, Serialized) {              // _STA of CPU Arg0
///             Acquire (CPLK, 0xFFFF); CSEL = Arg0; Local0 = Zero
///             If (CPEN == One) { Local0 = 0x0F }
///             Release (CPLK); Return (Local0)
///         }
///         Method (CEJ, 1, Serialized) {               // _EJ0 of CPU Arg0
///             Acquire (CPLK, 0xFFFF); CSEL = Arg0; CEJ0 = One; Release (CPLK)
///         }
///         Method (CMAT, 1, Serialized) {              // _MAT of CPU Arg0
///             Local0 = Buffer (8) { 0, 8, 0, 0, 0, 0, 0, 0 }
///             Local0 [2] = Arg0; Local0 [3] = Arg0    // ACPI UID, APIC ID
///             If (CSTA (Arg0) == 0x0F) { Local0 [4] = One }   // Enabled
///             Return (Local0)
///         }
///         Method (CTFY, 2, Serialized) {              // Notify (CPU Arg0, Arg1)
///             If (Arg0 == 0) { Notify (C000, Arg1) } ...
///         }
///         Method (CSCN, 0, Serialized) {              // the GED's event
///             Acquire (CPLK, 0xFFFF); Local0 = Zero
///             While (Local0 < possible) {
///                 CSEL = Local0
///                 If (CINS == One) { CTFY (Local0, 1); CINS = One }   // device check, then ack
///                 If (CRMV == One) { CTFY (Local0, 3); CRMV = One }   // eject request, then ack
///                 Local0++
///             }
///             Release (CPLK)
///         }
///         Device (C000) { Name (_HID, "ACPI0007"); Name (_UID, 0)
///                         Method (_STA) { Return (CSTA (0)) }
///                         Method (_MAT) { Return (CMAT (0)) } }
///         Device (C001) { ... Method (_EJ0, 1) { CEJ (1) } }   // every CPU but the boot CPU
///     }
///     Device (GED0) {
///         Name (_HID, "ACPI0013"); Name (_UID, 0)
///         Name (_CRS, ResourceTemplate () { Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 16 } })
///         Method (_EVT, 1) { \_SB.CPUS.CSCN () }
///     }
///
/// CSCN acknowledges while it holds CPLK, after queueing the Notify: the
/// OS handles the notification later, on its own thread, and by then reads
/// `_STA` afresh. A CPU whose `_STA` is 0 at boot is not enumerated; the
/// device check brings it in (Linux: acpi_processor_hotadd_init, which
/// takes its APIC ID from `_MAT`, so `_MAT` must say Enabled by then).
extension DSDT {
    /// Notify values (§5.6.6).
    static let deviceCheck: UInt64 = 1
    static let ejectRequest: UInt64 = 3

    /// `_STA` of a present CPU: present, enabled, shown in the UI, functioning.
    static let present: UInt64 = 0x0F

    static func processorName(_ cpu: Int) -> String {
        let digits = Array("0123456789ABCDEF")
        return "C" + String([digits[(cpu >> 8) & 0xF], digits[(cpu >> 4) & 0xF], digits[cpu & 0xF]])
    }

    static func cpuHotplug(config: ACPIConfig) -> [UInt8] {
        let lock = "CPLK"
        func locked(_ terms: [[UInt8]]) -> [[UInt8]] { [AML.acquire(lock)] + terms + [AML.release(lock)] }
        let one = AML.integer(1)
        let selectArgument = AML.store(AML.arg(0), into: AML.nameString("CSEL"))

        let csta = AML.method("CSTA", arguments: 1, serialized: true, locked([
            selectArgument,
            AML.store(AML.integer(0), into: AML.local(0)),
            AML.if(AML.equal(AML.nameString("CPEN"), one), [AML.store(AML.integer(present), into: AML.local(0))]),
        ]) + [AML.return(AML.local(0))])

        let cej = AML.method("CEJ_", arguments: 1, serialized: true, locked([
            selectArgument,
            AML.store(one, into: AML.nameString("CEJ0")),
        ]))

        let madtEntry: [UInt8] = [MADT.EntryType.processorLocalAPIC.rawValue, MADT.EntryType.processorLocalAPIC.length,
                                  0, 0, 0, 0, 0, 0]
        let cmat = AML.method("CMAT", arguments: 1, serialized: true, [
            AML.store(AML.buffer(madtEntry), into: AML.local(0)),
            AML.store(AML.arg(0), into: AML.index(AML.local(0), AML.integer(2))),      // ACPI processor UID
            AML.store(AML.arg(0), into: AML.index(AML.local(0), AML.integer(3))),      // APIC ID
            AML.if(AML.equal(AML.call("CSTA", [AML.arg(0)]), AML.integer(present)), [
                AML.store(AML.integer(UInt64(MADT.LocalAPICFlag.enabled)), into: AML.index(AML.local(0), AML.integer(4))),
            ]),
            AML.return(AML.local(0)),
        ])

        let ctfy = AML.method("CTFY", arguments: 2, serialized: true, (0..<config.possibleCPUs).map { cpu in
            AML.if(AML.equal(AML.arg(0), AML.integer(UInt64(cpu))), [AML.notify(processorName(cpu), AML.arg(1))])
        })

        let cscn = AML.method("CSCN", serialized: true, locked([
            AML.store(AML.integer(0), into: AML.local(0)),
            AML.while(AML.less(AML.local(0), AML.integer(UInt64(config.possibleCPUs))), [
                AML.store(AML.local(0), into: AML.nameString("CSEL")),
                AML.if(AML.equal(AML.nameString("CINS"), one), [
                    AML.call("CTFY", [AML.local(0), AML.integer(deviceCheck)]),
                    AML.store(one, into: AML.nameString("CINS")),
                ]),
                AML.if(AML.equal(AML.nameString("CRMV"), one), [
                    AML.call("CTFY", [AML.local(0), AML.integer(ejectRequest)]),
                    AML.store(one, into: AML.nameString("CRMV")),
                ]),
                AML.increment(AML.local(0)),
            ]),
        ]))

        let processors = (0..<config.possibleCPUs).map { cpu in
            var terms = [
                AML.name("_HID", AML.string("ACPI0007")),
                AML.name("_UID", AML.integer(UInt64(cpu))),
                AML.method("_STA", [AML.return(AML.call("CSTA", [AML.integer(UInt64(cpu))]))]),
                AML.method("_MAT", [AML.return(AML.call("CMAT", [AML.integer(UInt64(cpu))]))]),
            ]
            // The boot CPU has no _EJ0: the OS sees it cannot be removed.
            if cpu != 0 {
                terms.append(AML.method("_EJ0", arguments: 1, [AML.call("CEJ_", [AML.integer(UInt64(cpu))])]))
            }
            return AML.device(processorName(cpu), terms)
        }

        typealias Offset = CPUHotplugController.Offset
        return AML.device("CPUS", [
            AML.name("_HID", AML.string("ACPI0010")),
            AML.name("_CID", AML.eisaID("PNP0A05")),
            AML.mutex(lock),
            AML.operationRegion("PRST", space: .systemIO, offset: UInt64(config.cpuHotplugPort),
                                length: UInt64(CPUHotplugController.length)),
            AML.field("PRST", access: .dword, [.named("CSEL", bits: 32)]),
            AML.field("PRST", access: .byte, [
                .reserved(bits: 8 * Int(Offset.status)),
                .named("CPEN", bits: 1), .named("CINS", bits: 1), .named("CRMV", bits: 1), .named("CEJ0", bits: 1),
            ]),
            csta, cej, cmat, ctfy, cscn,
        ] + processors)
    }

    /// The Generic Event Device (ACPI0013): Linux's evged driver requests
    /// the interrupt of its `_CRS` and runs `_EVT` with the GSI when it
    /// fires. Its event sources are CPU hotplug and the power button:
    ///
    ///     OperationRegion (PBTN, SystemIO, 0x603, 1)
    ///     Field (PBTN, ByteAcc, NoLock, WriteAsZeros) { PBST, 8 }
    ///     Method (_EVT, 1) {
    ///         \_SB.CPUS.CSCN ()
    ///         If ((PBST & 1) == 1) { PBST = 1; Notify (\_SB.PWRB, 0x80) }
    ///     }
    static func eventDevice(config: ACPIConfig) -> [UInt8] {
        let one = AML.integer(1)
        return AML.device("GED0", [
            AML.name("_HID", AML.string("ACPI0013")),
            AML.name("_UID", AML.integer(0)),
            AML.name("_CRS", AML.resourceTemplate([ResourceDescriptor.edgeInterrupt(gsi: config.eventInterrupt)])),
            AML.operationRegion("PBTN", space: .systemIO, offset: UInt64(config.powerButtonStatusPort), length: 1),
            AML.field("PBTN", access: .byte, [.named("PBST", bits: 8)]),
            AML.method("_EVT", arguments: 1, [
                AML.call("\\_SB_.CPUS.CSCN"),
                AML.if(AML.equal(AML.and(AML.nameString("PBST"), one), one), [
                    AML.store(one, into: AML.nameString("PBST")),
                    AML.notify("\\_SB_.PWRB", AML.integer(0x80)),
                ]),
            ]),
        ])
    }
}
