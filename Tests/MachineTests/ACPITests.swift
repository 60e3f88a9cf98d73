import Glibc
import Testing
@testable import Machine

/// The tables are read back from `ACPITables.bytes` the way an OS reads
/// them: from the RSDP, through the XSDT and FADT, checking signatures,
/// lengths and checksums, then the MADT entries and the DSDT's AML.
@Suite struct ACPITests {
    static let base: UInt64 = 0xE_0000

    // MARK: Root pointer and table headers

    @Test func rsdpPointsAtTheXSDT() throws {
        let tables = ACPITables(config: ACPIConfig(possibleCPUs: 2, enabledCPUs: 2), base: Self.base)
        let image = TableImage(tables)
        #expect(tables.rsdpAddress == Self.base)
        let rsdp = try image.bytes(at: tables.rsdpAddress, count: 36)
        #expect(rsdp.ascii(0, 8) == "RSD PTR ")
        #expect(rsdp.sum(0..<20) == 0)                       // ACPI 1.0 checksum
        #expect(rsdp.sum(0..<36) == 0)                       // extended checksum
        #expect(rsdp.ascii(9, 6) == "XENOLI")
        #expect(rsdp.u8(15) == 2)                            // revision
        #expect(rsdp.u32(16) == 0)                           // no RSDT
        #expect(rsdp.u32(20) == 36)                          // length
        #expect(try image.table(at: rsdp.u64(24)).signature == "XSDT")
    }

    @Test(arguments: [1, 2, 32, 254])
    func everyTableHasAGoodHeader(cpus: Int) throws {
        let image = TableImage(ACPITables(config: ACPIConfig(possibleCPUs: cpus, enabledCPUs: 1), base: Self.base))
        let xsdt = try image.xsdt()
        let entries = try xsdt.xsdtEntries().map { try image.table(at: $0) }
        #expect(entries.map(\.signature) == ["FACP", "APIC"])
        let fadt = try #require(entries.first)
        let dsdt = try image.table(at: fadt.bytes.u64(140))
        let all = [xsdt] + entries + [dsdt]
        for table in all {
            #expect(table.bytes.sum(0..<table.bytes.count) == 0, "\(table.signature) checksum")
            #expect(table.bytes.ascii(10, 6) == "XENOLI")
            #expect(table.bytes.ascii(16, 8) == "XENOLITH")
        }
        #expect(xsdt.revision == 1)
        #expect(fadt.revision == 6 && fadt.bytes.count == 276)
        #expect(entries.last?.revision == 5)
        #expect(dsdt.revision == 2)
        // The RSDP and the tables are disjoint ranges of the image.
        let ranges = all.map(\.range) + [0..<36]
        for (i, a) in ranges.enumerated() {
            for b in ranges[(i + 1)...] { #expect(!a.overlaps(b)) }
        }
    }

    @Test func tablesFollowTheirBase() throws {
        let config = ACPIConfig(possibleCPUs: 4, enabledCPUs: 4)
        let low = ACPITables(config: config, base: Self.base)
        let high = ACPITables(config: config, base: 0x7FF0_0000)
        #expect(low.bytes.count == high.bytes.count)
        #expect(high.rsdpAddress == 0x7FF0_0000)
        let image = TableImage(high)
        let fadt = try image.table(at: try image.xsdt().xsdtEntries()[0])
        #expect(try image.table(at: fadt.bytes.u64(140)).signature == "DSDT")
        #expect(low.bytes.count < BootLayout.acpiLimit)
    }

    // MARK: FADT

    @Test func fadtIsHardwareReducedWithSleepAndResetRegisters() throws {
        var config = ACPIConfig(possibleCPUs: 1, enabledCPUs: 1)
        config.sleepControlPort = 0x600
        config.sleepStatusPort = 0x601
        config.resetPort = 0x602
        config.resetValue = 0x01
        let image = TableImage(ACPITables(config: config, base: Self.base))
        let fadt = try image.table(at: try image.xsdt().xsdtEntries()[0]).bytes
        let dsdt = fadt.u64(140)                             // X_DSDT
        #expect(UInt64(fadt.u32(40)) == dsdt)                // DSDT
        #expect(try image.table(at: dsdt).signature == "DSDT")
        #expect(fadt.u32(36) == 0 && fadt.u64(132) == 0)     // no FACS

        let flags = fadt.u32(112)
        #expect(flags & 1 << 20 != 0)                        // HW_REDUCED_ACPI
        #expect(flags & 1 << 10 != 0)                        // RESET_REG_SUP
        #expect(flags & 0b11 << 4 == 0b11 << 4)              // no fixed power/sleep buttons
        let bootArchitecture = fadt.u16(109)
        #expect(bootArchitecture & 1 << 1 != 0)              // 8042
        #expect(bootArchitecture & 1 << 5 == 0)              // the CMOS RTC is there
        #expect(fadt.u8(108) == 0x32)                        // century in CMOS
        #expect(fadt.u16(46) == 9)                           // SCI_INT, as the MADT's IRQ 9 override
        #expect(fadt.u8(131) == 4)                           // FADT minor version: ACPI 6.4

        // Hardware reduced: no SMI port, PM1, PM2, PM timer or GPE blocks, old or new.
        #expect(fadt[48..<108].allSatisfy { $0 == 0 })
        #expect(fadt[148..<244].allSatisfy { $0 == 0 })

        let port = { (address: UInt64) in GenericAddressFields(space: 1, bitWidth: 8, bitOffset: 0, accessSize: 1, address: address) }
        #expect(fadt.genericAddress(116) == port(0x602))      // RESET_REG
        #expect(fadt.u8(128) == 0x01)                        // RESET_VALUE
        #expect(fadt.genericAddress(244) == port(0x600))      // SLEEP_CONTROL_REG
        #expect(fadt.genericAddress(256) == port(0x601))      // SLEEP_STATUS_REG
        #expect(fadt.ascii(268, 8) == "XENOLITH")             // hypervisor vendor identity
    }

    // MARK: MADT

    @Test(arguments: [(1, 1), (2, 1), (2, 2), (32, 8), (32, 32), (254, 1), (254, 254)])
    func madtListsEveryPossibleCPU(possible: Int, enabled: Int) throws {
        let config = ACPIConfig(possibleCPUs: possible, enabledCPUs: enabled)
        let image = TableImage(ACPITables(config: config, base: Self.base))
        let madt = try image.table(at: try image.xsdt().xsdtEntries()[1])
        #expect(madt.signature == "APIC")
        #expect(madt.bytes.u32(36) == 0xFEE0_0000)
        #expect(madt.bytes.u32(40) == 1)                     // PCAT_COMPAT

        let entries = try madt.madtEntries()
        let lapics = entries.filter { $0.type == 0 }
        #expect(lapics.count == possible)
        for (i, e) in lapics.enumerated() {
            #expect(e.bytes.count == 8)
            #expect(e.bytes.u8(2) == UInt8(i))               // ACPI processor UID
            #expect(e.bytes.u8(3) == UInt8(i))               // APIC ID
            #expect(e.bytes.u32(4) == (i < enabled ? 0b01 : 0b10), "CPU \(i): Enabled, else Online Capable")
        }

        let ioapics = entries.filter { $0.type == 1 }
        #expect(ioapics.count == 1)
        let ioapic = try #require(ioapics.first).bytes
        #expect(ioapic.count == 12)
        #expect(ioapic.u8(2) == UInt8(possible))             // the ID after the last CPU's
        #expect(ioapic.u32(4) == 0xFEC0_0000)
        #expect(ioapic.u32(8) == 0)                          // GSI base

        // Length, bus (ISA), IRQ, GSI, flags.
        let overrides = entries.filter { $0.type == 2 }.map { e in
            [UInt32(e.bytes.count), UInt32(e.bytes.u8(2)), UInt32(e.bytes.u8(3)), e.bytes.u32(4), UInt32(e.bytes.u16(8))]
        }
        #expect(overrides == [[10, 0, 0, 2, 0], [10, 0, 9, 9, 0x000D]])

        let nmis = entries.filter { $0.type == 4 }.map(\.bytes)
        #expect(nmis == [[4, 6, 0xFF, 0, 0, 1]])             // every CPU, flags 0, LINT1
        #expect(entries.count == possible + 1 + 2 + 1)
    }

    @Test func ioAPICIDAndAddressesFollowTheConfig() throws {
        var config = ACPIConfig(possibleCPUs: 3, enabledCPUs: 2)
        config.ioAPICID = 8
        config.ioAPICAddress = 0xFEC1_0000
        config.localAPICAddress = 0xFEE1_0000
        let image = TableImage(ACPITables(config: config, base: Self.base))
        let madt = try image.table(at: try image.xsdt().xsdtEntries()[1])
        #expect(madt.bytes.u32(36) == 0xFEE1_0000)
        let ioapic = try #require(try madt.madtEntries().first { $0.type == 1 }).bytes
        #expect(ioapic.u8(2) == 8 && ioapic.u32(4) == 0xFEC1_0000)
    }

    @Test func nonsenseConfigurationsAreRefused() async {
        await #expect(processExitsWith: .failure) { _ = ACPIConfig(possibleCPUs: 0, enabledCPUs: 0) }
        await #expect(processExitsWith: .failure) { _ = ACPIConfig(possibleCPUs: 255, enabledCPUs: 1) }
        await #expect(processExitsWith: .failure) { _ = ACPIConfig(possibleCPUs: 4, enabledCPUs: 0) }
        await #expect(processExitsWith: .failure) { _ = ACPIConfig(possibleCPUs: 4, enabledCPUs: 5) }
        await #expect(processExitsWith: .failure) {
            var config = ACPIConfig(possibleCPUs: 4, enabledCPUs: 4)
            config.ioAPICID = 3                              // CPU 3's APIC ID
            _ = ACPITables(config: config, base: 0xE_0000)
        }
        await #expect(processExitsWith: .failure) {
            var config = ACPIConfig(possibleCPUs: 1, enabledCPUs: 1)
            config.pciMemoryWindow = 0xC000_0000...0xFEFF_FFFF     // covers the I/O APIC
            _ = ACPITables(config: config, base: 0xE_0000)
        }
        await #expect(processExitsWith: .failure) {
            var config = ACPIConfig(possibleCPUs: 1, enabledCPUs: 1)
            config.eventInterrupt = 24                           // the I/O APIC has pins 0...23
            _ = ACPITables(config: config, base: 0xE_0000)
        }
    }

    // MARK: DSDT

    @Test(arguments: [1, 254])
    func dsdtTopLevelObjectsFillTheTable(cpus: Int) throws {
        // The decoder consumes the body exactly, and checks that every
        // PkgLength, Package count and Buffer size matches what follows it.
        let (dsdt, terms) = try Self.dsdt(ACPIConfig(possibleCPUs: cpus, enabledCPUs: cpus))
        #expect(dsdt.signature == "DSDT")
        #expect(terms.map(\.name) == ["_S5_", "\\_SB_"])
        guard case .scope(_, let devices) = terms.last else { return }
        #expect(devices.map(\.name) == ["PCI0", "COM1", "CPUS", "PWRB", "GED0"])
    }

    @Test func dsdtNamesSoftOffAsSleepType5() throws {
        let (dsdt, terms) = try Self.dsdt(ACPIConfig(possibleCPUs: 1, enabledCPUs: 1))
        #expect(terms.first == .name("_S5_", .package([.integer(5), .integer(0), .integer(0), .integer(0)])))
        // As a raw search finds it: NameOp "_S5_" PackageOp.
        let pattern: [UInt8] = [0x08, 0x5F, 0x53, 0x35, 0x5F, 0x12]
        #expect(dsdt.bytes.firstRange(of: pattern) != nil)
    }

    @Test func dsdtDescribesCOM1() throws {
        let (_, terms) = try Self.dsdt(ACPIConfig(possibleCPUs: 1, enabledCPUs: 1))
        let com1 = try #require(terms.device("COM1", inScope: "\\_SB_"))
        #expect(com1.named("_HID") == .integer(0x0105_D041))                  // EisaId("PNP0501")
        #expect(com1.named("_UID") == .integer(0))
        let crs = try #require(com1.named("_CRS")?.bufferBytes)
        #expect(try ResourceWalk.descriptors(crs) == [
            [0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x00, 0x08],                 // IO(Decode16, 0x3F8, 0x3F8, 0, 8)
            [0x22, 0x10, 0x00],                                               // IRQNoFlags() {4}
        ])
    }

    @Test func dsdtDescribesThePCIHostBridge() throws {
        var config = ACPIConfig(possibleCPUs: 1, enabledCPUs: 1)
        config.pciMemoryWindow = 0xC000_0000...0xEFFF_FFFF
        let (_, terms) = try Self.dsdt(config)
        let pci = try #require(terms.device("PCI0", inScope: "\\_SB_"))
        #expect(pci.named("_HID") == .integer(0x080A_D041))                   // EisaId("PNP0A08")
        #expect(pci.named("_CID") == .integer(0x030A_D041))                   // EisaId("PNP0A03")
        for n in ["_SEG", "_BBN", "_UID"] { #expect(pci.named(n) == .integer(0), "\(n)") }

        let crs = try #require(pci.named("_CRS")?.bufferBytes)
        let descriptors = try ResourceWalk.descriptors(crs)
        #expect(descriptors.count == 5)
        #expect(descriptors.contains([0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08]))   // IO(Decode16, 0xCF8, 0xCF8, 1, 8)
        let windows = descriptors.filter { $0.first == 0x88 || $0.first == 0x87 }.map(ResourceWalk.addressSpace)
        #expect(windows == [                                 // producer, min and max fixed
            .init(type: 2, generalFlags: 0x0C, minimum: 0, maximum: 0, length: 1),
            .init(type: 1, generalFlags: 0x0C, minimum: 0, maximum: 0x0CF7, length: 0x0CF8),
            .init(type: 1, generalFlags: 0x0C, minimum: 0x0D00, maximum: 0xFFFF, length: 0xF300),
            .init(type: 0, generalFlags: 0x0C, minimum: 0xC000_0000, maximum: 0xEFFF_FFFF, length: 0x3000_0000),
        ])
    }

    @Test(arguments: [(1, 1), (4, 2), (32, 1), (254, 254)])
    func dsdtHasAProcessorDeviceForEveryPossibleCPU(possible: Int, enabled: Int) throws {
        let (_, terms) = try Self.dsdt(ACPIConfig(possibleCPUs: possible, enabledCPUs: enabled))
        let cpus = try #require(terms.device("CPUS", inScope: "\\_SB_"))
        #expect(cpus.named("_HID") == .string("ACPI0010"))
        #expect(cpus.named("_CID") == .integer(0x050A_D041))                  // EisaId("PNP0A05")
        let processors = cpus.children.filter { if case .device = $0 { true } else { false } }
        #expect(processors.map(\.name) == (0..<possible).map { DSDT.processorName($0) })
        for (i, p) in processors.enumerated() {
            #expect(p.named("_HID") == .string("ACPI0007"))
            #expect(p.named("_UID") == .integer(UInt64(i)))
            // _STA and _MAT: Return (CSTA (i)) and Return (CMAT (i)), no arguments.
            #expect(p.method("_STA")?.flags == 0 && p.method("_STA")?.body == [0xA4] + Array("CSTA".utf8) + AML.integer(UInt64(i)))
            #expect(p.method("_MAT")?.flags == 0 && p.method("_MAT")?.body == [0xA4] + Array("CMAT".utf8) + AML.integer(UInt64(i)))
            // Every CPU but the boot CPU can be ejected: CEJ_ (i), one argument.
            if i == 0 {
                #expect(p.method("_EJ0") == nil)
            } else {
                #expect(p.method("_EJ0")?.flags == 1 && p.method("_EJ0")?.body == Array("CEJ_".utf8) + AML.integer(UInt64(i)))
            }
        }
        // CTFY notifies CPU Arg0 with Arg1: one If per CPU.
        let ctfy = try #require(cpus.method("CTFY"))
        #expect(ctfy.flags == 0b1010)                                         // Serialized, 2 arguments
        for i in [0, possible - 1] {
            let notify: [UInt8] = [0x86] + Array(DSDT.processorName(i).utf8) + [0x69]   // Notify (Cxxx, Arg1)
            #expect(ctfy.body.firstRange(of: notify) != nil, "CTFY notifies CPU \(i)")
        }
        let cscn = try #require(cpus.method("CSCN"))
        #expect(cscn.body.firstRange(of: [0x95, 0x60] + AML.integer(UInt64(possible))) != nil, "While (Local0 < \(possible))")
    }

    @Test func dsdtCPUMethodsUseTheHotplugRegisters() throws {
        var config = ACPIConfig(possibleCPUs: 4, enabledCPUs: 2)
        config.cpuHotplugPort = 0x0CD8
        let (_, terms) = try Self.dsdt(config)
        let cpus = try #require(terms.device("CPUS", inScope: "\\_SB_"))
        let objects = cpus.children
        #expect(objects.contains(.mutex("CPLK")))
        #expect(objects.contains(.region("PRST", space: 1, offset: 0x0CD8, length: 12)))
        // WriteAsZeros (2 << 5), DWord then Byte access; CPEN..CEJ0 are bits 0...3 of +4.
        #expect(objects.contains(.field("PRST", flags: 0x43, units: [.init(name: "CSEL", bits: 32)])))
        #expect(objects.contains(.field("PRST", flags: 0x41, units: [
            .init(name: "", bits: 32), .init(name: "CPEN", bits: 1), .init(name: "CINS", bits: 1),
            .init(name: "CRMV", bits: 1), .init(name: "CEJ0", bits: 1),
        ])))
        let csta = try #require(cpus.method("CSTA"))
        #expect(csta.flags == 0b1001)                                         // Serialized, 1 argument
        let acquire: [UInt8] = [0x5B, 0x23] + Array("CPLK".utf8) + [0xFF, 0xFF]
        let release: [UInt8] = [0x5B, 0x27] + Array("CPLK".utf8)
        #expect(csta.body.starts(with: acquire + [0x70, 0x68] + Array("CSEL".utf8)), "Acquire, then CSEL = Arg0")
        #expect(csta.body.firstRange(of: release + [0xA4, 0x60]) != nil, "Release, then Return (Local0)")
        let cej = try #require(cpus.method("CEJ_"))
        #expect(cej.body == acquire + [0x70, 0x68] + Array("CSEL".utf8) + [0x70, 0x01] + Array("CEJ0".utf8) + release)
        let cscn = try #require(cpus.method("CSCN"))
        #expect(cscn.flags == 0b1000)
        // CTFY (Local0, 1) then CINS = One; CTFY (Local0, 3) then CRMV = One: notify first, then acknowledge.
        #expect(cscn.body.firstRange(of: Array("CTFY".utf8) + [0x60, 0x01, 0x70, 0x01] + Array("CINS".utf8)) != nil)
        #expect(cscn.body.firstRange(of: Array("CTFY".utf8) + [0x60, 0x0A, 0x03, 0x70, 0x01] + Array("CRMV".utf8)) != nil)
        // _MAT's template: a Local APIC entry, Enabled (byte 4) set only when CSTA says present.
        let cmat = try #require(cpus.method("CMAT"))
        #expect(cmat.body.starts(with: [0x70, 0x11, 0x0B, 0x0A, 0x08, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0x60]))
        #expect(cmat.body.firstRange(of: [0x70, 0x01, 0x88, 0x60, 0x0A, 0x04, 0x00]) != nil, "Local0 [4] = One")
    }

    @Test func dsdtHasAGenericEventDeviceOnTheHotplugInterrupt() throws {
        var config = ACPIConfig(possibleCPUs: 2, enabledCPUs: 1)
        config.eventInterrupt = 20
        let (_, terms) = try Self.dsdt(config)
        let ged = try #require(terms.device("GED0", inScope: "\\_SB_"))
        #expect(ged.named("_HID") == .string("ACPI0013"))
        #expect(ged.named("_UID") == .integer(0))
        let crs = try #require(ged.named("_CRS")?.bufferBytes)
        // Extended interrupt: length 6, consumer + edge, active high, exclusive; one GSI, 20.
        #expect(try ResourceWalk.descriptors(crs) == [[0x89, 0x06, 0x00, 0x03, 0x01, 20, 0, 0, 0]])
        let evt = try #require(ged.method("_EVT"))
        // First the CPU hotplug scan, then the power button: its status
        // register read and cleared, and Notify (\_SB.PWRB, 0x80).
        #expect(evt.flags == 1 && evt.body.starts(with: [0x5C, 0x2F, 3] + Array("_SB_CPUSCSCN".utf8)))
        let notify: [UInt8] = [0x86, 0x5C, 0x2E] + Array("_SB_PWRB".utf8) + [0x0A, 0x80]
        #expect(evt.body.count >= notify.count && evt.body.suffix(notify.count).elementsEqual(notify), "_EVT: \(evt.body)")
    }

    @Test func dsdtHasAControlMethodPowerButton() throws {
        let (_, terms) = try Self.dsdt(ACPIConfig(possibleCPUs: 1, enabledCPUs: 1))
        let button = try #require(terms.device("PWRB", inScope: "\\_SB_"))
        #expect(button.named("_HID") == .integer(0x0C0C_D041))        // EISA ID PNP0C0C
    }

    /// acpica-tools' disassembler reads the DSDT back to ASL without a
    /// complaint, and its compiler turns that ASL into AML again without an
    /// error or warning: the AML is well-formed in ACPICA's eyes, not only
    /// in this file's decoder's.
    @Test(.enabled(if: access("/usr/bin/iasl", X_OK) == 0, "needs iasl: apt-get install acpica-tools"))
    func iaslDisassemblesAndRecompilesTheDSDT() throws {
        let (dsdt, _) = try Self.dsdt(ACPIConfig(possibleCPUs: 8, enabledCPUs: 2))
        var template = Array("/tmp/xenolith-iasl-XXXXXX".utf8CString)
        let directory = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer { _ = system("rm -rf '\(directory)'") }
        let file = try #require(fopen(directory + "/dsdt.dat", "wb"))
        #expect(fwrite(dsdt.bytes, 1, dsdt.bytes.count, file) == dsdt.bytes.count)
        fclose(file)
        let disassembly = system("cd '\(directory)' && iasl -d dsdt.dat >log-d 2>&1")
        #expect(disassembly == 0)
        let asl = Self.readText(directory + "/dsdt.dsl")
        for expected in ["Device (C007)", "\"ACPI0007\"", "\"ACPI0013\"", "Method (_EJ0, 1", "Notify (C007, Arg1)",
                         "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive", "Field (PRST, ByteAcc, NoLock, WriteAsZeros)",
                         "EisaId (\"PNP0C0C\")", "OperationRegion (PBTN, SystemIO, 0x0603, One)", "Notify (\\_SB.PWRB, 0x80)"] {
            #expect(asl.contains(expected), "the disassembly has \(expected)")
        }
        #expect(!Self.readText(directory + "/log-d").lowercased().contains("error"))
        let compile = system("cd '\(directory)' && cp dsdt.dsl again.asl && iasl again.asl >log-c 2>&1")
        let log = Self.readText(directory + "/log-c")
        #expect(compile == 0 && log.contains("0 Errors, 0 Warnings"), "iasl: \(log)")
    }

    /// ACPICA's own interpreter (acpiexec) runs every method of the CPU
    /// hotplug and the GED without an exception. Its SystemIO region is
    /// simulated and reads 0: no CPU is present to it, so _STA is 0 and
    /// _MAT a Local APIC entry for the CPU, not Enabled.
    @Test(.enabled(if: access("/usr/bin/acpiexec", X_OK) == 0, "needs acpiexec: apt-get install acpica-tools"))
    func acpiexecRunsTheHotplugMethods() throws {
        let (dsdt, _) = try Self.dsdt(ACPIConfig(possibleCPUs: 4, enabledCPUs: 1))
        var template = Array("/tmp/xenolith-acpiexec-XXXXXX".utf8CString)
        let directory = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer { _ = system("rm -rf '\(directory)'") }
        let file = try #require(fopen(directory + "/dsdt.dat", "wb"))
        #expect(fwrite(dsdt.bytes, 1, dsdt.bytes.count, file) == dsdt.bytes.count)
        fclose(file)
        let commands = ["\\_SB.CPUS.C003._MAT", "\\_SB.CPUS.C000._STA", "\\_SB.CPUS.CSCN",
                        "\\_SB.CPUS.C002._EJ0 1", "\\_SB.GED0._EVT 16"].map { "execute " + $0 }.joined(separator: "; ")
        let status = system("cd '\(directory)' && timeout 60 acpiexec -b '\(commands)' dsdt.dat >log 2>&1")
        let log = Self.readText(directory + "/log")
        #expect(status == 0, "acpiexec: \(log)")
        #expect(log.contains("0000: 00 08 03 03 00 00 00 00"), "_MAT of CPU 3: \(log)")
        #expect(log.contains("Evaluation of \\_SB.CPUS.C000._STA returned") && log.contains("[Integer] = 0000000000000000"))
        for method in ["CSCN", "C002._EJ0"] {
            #expect(log.contains("No object was returned from evaluation of \\_SB.CPUS.\(method)"), "\(method): \(log)")
        }
        #expect(log.contains("No object was returned from evaluation of \\_SB.GED0._EVT"))
        #expect(!log.contains("Exception") && !log.contains("AE_"), "acpiexec: \(log)")
    }

    private static func readText(_ path: String) -> String {
        guard let f = fopen(path, "rb") else { return "" }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The DSDT of `config` and its top-level AML objects.
    private static func dsdt(_ config: ACPIConfig) throws -> (Table, [AMLObject]) {
        let image = TableImage(ACPITables(config: config, base: base))
        let fadt = try image.table(at: try image.xsdt().xsdtEntries()[0])
        let dsdt = try image.table(at: fadt.bytes.u64(140))
        var decoder = AMLDecoder(bytes: dsdt.bytes, offset: 36)
        return (dsdt, try decoder.terms(until: dsdt.bytes.count))
    }

    // MARK: AML encoder

    @Test func packageLengthUsesOneToFourBytes() throws {
        // At each boundary: the encoded length counts its own bytes too.
        let cases: [(content: Int, encoded: [UInt8])] = [
            (0, [0x01]),
            (62, [0x3F]),                                    // 63: the most one byte holds
            (63, [0x41, 0x04]),                              // 65 = 0x041
            (4093, [0x4F, 0xFF]),                            // 4095 = 0xFFF: the most two bytes hold
            (4094, [0x81, 0x00, 0x01]),                      // 4097 = 0x01001 in three
            ((1 << 20) - 4, [0x8F, 0xFF, 0xFF]),             // 0xFFFFF
            ((1 << 20) - 3, [0xC1, 0x00, 0x00, 0x01]),       // 0x100001 in four
            (AML.maximumPackageLength - 4, [0xCF, 0xFF, 0xFF, 0xFF]),
        ]
        for c in cases {
            let encoded = AML.packageLength(contentLength: c.content)
            #expect(encoded == c.encoded, "content \(c.content)")
            var decoder = AMLDecoder(bytes: encoded, offset: 0)
            #expect(try decoder.packageLength() == c.content + c.encoded.count)
        }
        // Lengths across the one-, two- and three-byte forms decode back.
        for content in stride(from: 0, to: 70_000, by: 7) {
            let encoded = AML.packageLength(contentLength: content)
            var decoder = AMLDecoder(bytes: encoded, offset: 0)
            #expect(try decoder.packageLength() == content + encoded.count)
        }
    }

    @Test func nestedPackageLengthsCountTheirContents() throws {
        // A device long enough for a two-byte PkgLength, in a scope.
        let names = (10..<30).map { AML.name("N0\($0)", AML.integer(0x1234_5678)) }
        let device = AML.device("BIG0", names)
        #expect(device[2] & 0xC0 == 0x40)                    // after 5B 82: a two-byte PkgLength
        let scope = AML.scope("\\_SB_", [device])
        var decoder = AMLDecoder(bytes: scope, offset: 0)
        let terms = try decoder.terms(until: scope.count)
        guard case .scope(_, let children) = terms.first, case .device(let name, let objects) = children.first else {
            Issue.record("not a scope holding a device")
            return
        }
        #expect(name == "BIG0" && objects.count == 20)
    }

    @Test func integersUseTheShortestEncoding() {
        #expect(AML.integer(0) == [0x00])
        #expect(AML.integer(1) == [0x01])
        #expect(AML.integer(5) == [0x0A, 0x05])
        #expect(AML.integer(0xFF) == [0x0A, 0xFF])
        #expect(AML.integer(0x100) == [0x0B, 0x00, 0x01])
        #expect(AML.integer(0x1_0000) == [0x0C, 0x00, 0x00, 0x01, 0x00])
        #expect(AML.integer(0x1_0000_0000) == [0x0E, 0, 0, 0, 0, 1, 0, 0, 0])
    }

    @Test func namesAndEISAIDsEncodeAsASLCompilersDo() {
        #expect(AML.nameString("_S5") == Array("_S5_".utf8))
        #expect(AML.nameString("\\_SB_") == [0x5C] + Array("_SB_".utf8))
        #expect(AML.nameString("_SB.PCI0") == [0x2E] + Array("_SB_PCI0".utf8))
        #expect(AML.nameString("\\_SB.PCI0.COM1") == [0x5C, 0x2F, 3] + Array("_SB_PCI0COM1".utf8))
        #expect(AML.eisaID("PNP0A03") == [0x0C, 0x41, 0xD0, 0x0A, 0x03])
        #expect(AML.eisaID("PNP0501") == [0x0C, 0x41, 0xD0, 0x05, 0x01])
    }

    @Test func resourceTemplatesEndWithAChecksummedEndTag() {
        let template = AML.resourceTemplate([ResourceDescriptor.irqNoFlags([4])])
        // BufferOp, PkgLength 8, BufferSize 5, IRQ descriptor, End Tag.
        #expect(Array(template.prefix(4)) == [0x11, 0x08, 0x0A, 0x05])
        let data = Array(template.dropFirst(4))
        #expect(data.prefix(4) == [0x22, 0x10, 0x00, 0x79])
        #expect(data.reduce(0, &+) == 0)
    }

    @Test func methodsAndControlFlowEncodeAsASLCompilersDo() {
        // Method (M000, 2, Serialized) { Return (Arg1) }: flags = 2 args | Serialized.
        #expect(AML.method("M000", arguments: 2, serialized: true, [AML.return(AML.arg(1))])
                == [0x14, 0x08] + Array("M000".utf8) + [0x0A, 0xA4, 0x69])
        #expect(AML.method("_STA", [AML.return(AML.integer(0x0F))]) == [0x14, 0x09] + Array("_STA".utf8) + [0x00, 0xA4, 0x0A, 0x0F])
        // If ((Local0 == One)) { Local1 = 0x0F }
        #expect(AML.if(AML.equal(AML.local(0), AML.integer(1)), [AML.store(AML.integer(0x0F), into: AML.local(1))])
                == [0xA0, 0x08, 0x93, 0x60, 0x01, 0x70, 0x0A, 0x0F, 0x61])
        // While ((Local0 < 4)) { Local0++ }
        #expect(AML.while(AML.less(AML.local(0), AML.integer(4)), [AML.increment(AML.local(0))])
                == [0xA2, 0x07, 0x95, 0x60, 0x0A, 0x04, 0x75, 0x60])
        #expect(AML.notify("C001", AML.integer(3)) == [0x86] + Array("C001".utf8) + [0x0A, 0x03])
        #expect(AML.call("CSTA", [AML.arg(0)]) == Array("CSTA".utf8) + [0x68])
        #expect(AML.index(AML.local(0), AML.integer(4)) == [0x88, 0x60, 0x0A, 0x04, 0x00])
        #expect(AML.and(AML.local(0), AML.integer(1)) == [0x7B, 0x60, 0x01, 0x00])
        #expect(AML.string("ACPI0007") == [0x0D] + Array("ACPI0007".utf8) + [0x00])
    }

    @Test func mutexesRegionsAndFieldsEncodeAsASLCompilersDo() {
        #expect(AML.mutex("CPLK") == [0x5B, 0x01] + Array("CPLK".utf8) + [0x00])
        #expect(AML.acquire("CPLK") == [0x5B, 0x23] + Array("CPLK".utf8) + [0xFF, 0xFF])
        #expect(AML.release("CPLK") == [0x5B, 0x27] + Array("CPLK".utf8))
        #expect(AML.operationRegion("PRST", space: .systemIO, offset: 0x610, length: 12)
                == [0x5B, 0x80] + Array("PRST".utf8) + [0x01, 0x0B, 0x10, 0x06, 0x0A, 0x0C])
        // Field (PRST, ByteAcc, NoLock, WriteAsZeros) { Offset (4), CPEN, 1, CINS, 1 }
        #expect(AML.field("PRST", access: .byte, [.reserved(bits: 32), .named("CPEN", bits: 1), .named("CINS", bits: 1)])
                == [0x5B, 0x81, 0x12] + Array("PRST".utf8) + [0x41, 0x00, 0x20] + Array("CPEN".utf8) + [0x01]
                   + Array("CINS".utf8) + [0x01])
        // A field's length counts bits only, not its own bytes (unlike a PkgLength).
        #expect(AML.encodedLength(63) == [0x3F])
        #expect(AML.encodedLength(64) == [0x40, 0x04])
        #expect(AML.encodedLength(0xFFF) == [0x4F, 0xFF])
        #expect(AML.encodedLength(0x1000) == [0x80, 0x00, 0x01])
        #expect(ResourceDescriptor.edgeInterrupt(gsi: 16) == [0x89, 0x06, 0x00, 0x03, 0x01, 0x10, 0x00, 0x00, 0x00])
    }

    // MARK: Dumping for iasl

    /// `XENOLITH_ACPI_DUMP=/some/dir swift test --filter ACPITests` writes
    /// each table there (dsdt.dat, facp.dat, ...) for `iasl -d`.
    @Test(.enabled(if: getenv("XENOLITH_ACPI_DUMP") != nil))
    func dumpTablesForIASL() throws {
        let directory = String(cString: try #require(getenv("XENOLITH_ACPI_DUMP")))
        let image = TableImage(ACPITables(config: ACPIConfig(possibleCPUs: 4, enabledCPUs: 2), base: Self.base))
        let xsdt = try image.xsdt()
        let entries = try xsdt.xsdtEntries().map { try image.table(at: $0) }
        let dsdt = try image.table(at: entries[0].bytes.u64(140))
        for table in [xsdt] + entries + [dsdt] {
            let path = directory + "/" + table.signature.lowercased() + ".dat"
            let file = try #require(fopen(path, "wb"), "cannot write \(path)")
            defer { fclose(file) }
            #expect(fwrite(table.bytes, 1, table.bytes.count, file) == table.bytes.count)
        }
        let rsdp = try image.bytes(at: image.rsdpAddress, count: 36)
        let file = try #require(fopen(directory + "/rsdp.dat", "wb"))
        defer { fclose(file) }
        #expect(fwrite(rsdp, 1, rsdp.count, file) == rsdp.count)
    }
}

// MARK: - Reading the tables back

private struct ParseError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The tables as the guest sees them: guest-physical addresses into `memory`.
private struct TableImage {
    let base: UInt64
    let memory: [UInt8]
    let rsdpAddress: UInt64

    init(_ tables: ACPITables) {
        base = tables.base
        memory = tables.bytes
        rsdpAddress = tables.rsdpAddress
    }

    func offsets(at address: UInt64, count: Int) throws -> Range<Int> {
        guard address >= base, address - base <= UInt64(memory.count), count >= 0,
              count <= memory.count - Int(address - base)
        else { throw ParseError("\(count) bytes at 0x\(String(address, radix: 16)) are outside the tables") }
        let start = Int(address - base)
        return start..<(start + count)
    }

    func bytes(at address: UInt64, count: Int) throws -> [UInt8] {
        Array(memory[try offsets(at: address, count: count)])
    }

    /// The table at `address`, as long as its header says.
    func table(at address: UInt64) throws -> Table {
        let header = try bytes(at: address, count: 36)
        let length = Int(header.u32(4))
        guard length >= 36 else { throw ParseError("\(header.ascii(0, 4)) is \(length) bytes long") }
        let range = try offsets(at: address, count: length)
        return Table(range: range, bytes: Array(memory[range]))
    }

    func xsdt() throws -> Table {
        try table(at: try bytes(at: rsdpAddress, count: 36).u64(24))
    }
}

private struct Table {
    /// Where in the image.
    let range: Range<Int>
    let bytes: [UInt8]
    var signature: String { bytes.ascii(0, 4) }
    var revision: UInt8 { bytes.u8(8) }

    func xsdtEntries() throws -> [UInt64] {
        guard signature == "XSDT", (bytes.count - 36) % 8 == 0 else { throw ParseError("not an XSDT") }
        return stride(from: 36, to: bytes.count, by: 8).map { bytes.u64($0) }
    }

    /// The interrupt controller structures after the MADT's fixed fields;
    /// they must exactly fill the table.
    func madtEntries() throws -> [MADTEntry] {
        var entries: [MADTEntry] = []
        var offset = 44
        while offset < bytes.count {
            guard offset + 2 <= bytes.count else { throw ParseError("MADT entry header cut at \(offset)") }
            let length = Int(bytes[offset + 1])
            guard length >= 2, offset + length <= bytes.count else { throw ParseError("MADT entry at \(offset) overruns") }
            entries.append(MADTEntry(type: bytes[offset], bytes: Array(bytes[offset..<(offset + length)])))
            offset += length
        }
        return entries
    }
}

private struct MADTEntry {
    let type: UInt8
    let bytes: [UInt8]
}

private struct GenericAddressFields: Equatable {
    var space, bitWidth, bitOffset, accessSize: UInt8
    var address: UInt64
}

/// Little-endian fields; a read past the end records an issue and reads 0.
private extension Array where Element == UInt8 {
    func field(_ offset: Int, size: Int) -> UInt64 {
        guard offset >= 0, offset <= count - size else {
            Issue.record("read of \(size) bytes at \(offset) in \(count)")
            return 0
        }
        return (0..<size).reversed().reduce(0) { $0 << 8 | UInt64(self[offset + $1]) }
    }

    func u8(_ offset: Int) -> UInt8 { UInt8(field(offset, size: 1)) }
    func u16(_ offset: Int) -> UInt16 { UInt16(field(offset, size: 2)) }
    func u32(_ offset: Int) -> UInt32 { UInt32(field(offset, size: 4)) }
    func u64(_ offset: Int) -> UInt64 { field(offset, size: 8) }

    func ascii(_ offset: Int, _ length: Int) -> String {
        guard offset >= 0, offset <= count - length else { return "" }
        return String(decoding: self[offset..<(offset + length)], as: UTF8.self)
    }

    /// The byte sum of `range` modulo 256: 0 for a good checksum.
    func sum(_ range: Range<Int>) -> UInt8 {
        guard range.upperBound <= count else { return 0xFF }
        return self[range].reduce(0, &+)
    }

    func genericAddress(_ offset: Int) -> GenericAddressFields {
        GenericAddressFields(space: u8(offset), bitWidth: u8(offset + 1), bitOffset: u8(offset + 2),
                             accessSize: u8(offset + 3), address: u64(offset + 4))
    }
}

// MARK: - Decoding the AML back

/// The AML objects the DSDT uses, decoded.
private indirect enum AMLObject: Equatable {
    case integer(UInt64)
    case package([AMLObject])
    case buffer([UInt8])
    case string(String)
    case name(String, AMLObject)
    case scope(String, [AMLObject])
    case device(String, [AMLObject])
    /// A method's name, flags and undecoded body.
    case method(String, flags: UInt8, body: [UInt8])
    case mutex(String)
    case region(String, space: UInt8, offset: UInt64, length: UInt64)
    /// A Field's region, flags and units: (name, bits), "" for reserved bits.
    case field(String, flags: UInt8, units: [FieldUnit])

    struct FieldUnit: Equatable {
        var name: String
        var bits: Int
    }

    var name: String? {
        switch self {
        case .name(let n, _), .scope(let n, _), .device(let n, _), .method(let n, _, _), .mutex(let n),
             .region(let n, _, _, _):
            n
        default: nil
        }
    }

    var children: [AMLObject] {
        switch self {
        case .scope(_, let c), .device(_, let c): c
        default: []
        }
    }

    /// In a device or scope: the method `name`'s flags and body.
    func method(_ name: String) -> (flags: UInt8, body: [UInt8])? {
        for case .method(let n, let flags, let body) in children where n == name { return (flags, body) }
        return nil
    }

    var bufferBytes: [UInt8]? {
        if case .buffer(let b) = self { b } else { nil }
    }

    /// In a device or scope: the object of `Name(name, object)`.
    func named(_ name: String) -> AMLObject? {
        let children: [AMLObject]
        switch self {
        case .scope(_, let c), .device(_, let c): children = c
        default: return nil
        }
        for case .name(let n, let object) in children where n == name { return object }
        return nil
    }
}

private extension Array where Element == AMLObject {
    func device(_ name: String, inScope scope: String) -> AMLObject? {
        for case .scope(let s, let children) in self where s == scope {
            for case .device(let d, let contents) in children where d == name { return .device(d, contents) }
        }
        return nil
    }
}

/// A decoder for exactly the AML subset the builder emits. It checks what
/// an interpreter relies on: every PkgLength ends where its contents end,
/// a Package holds NumElements elements, a Buffer's size is its byte count.
private struct AMLDecoder {
    let bytes: [UInt8]
    var offset: Int

    mutating func byte() throws -> UInt8 {
        guard offset < bytes.count else { throw ParseError("AML ends early at \(offset)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// The value of a PkgLength: its own bytes plus what follows.
    mutating func packageLength() throws -> Int {
        let lead = try byte()
        let following = Int(lead >> 6)
        if following == 0 { return Int(lead & 0x3F) }
        guard lead & 0x30 == 0 else { throw ParseError("PkgLength lead byte 0x\(String(lead, radix: 16)) has bits 5:4 set") }
        var length = Int(lead & 0x0F)
        for i in 0..<following { length |= Int(try byte()) << (4 + 8 * i) }
        return length
    }

    /// Reads a PkgLength and returns where its package ends.
    mutating func packageEnd() throws -> Int {
        let start = offset
        let end = start + (try packageLength())
        guard end <= bytes.count, end >= offset else { throw ParseError("PkgLength at \(start) overruns") }
        return end
    }

    mutating func nameString() throws -> String {
        var prefix = ""
        if bytes.indices.contains(offset), bytes[offset] == 0x5C {
            prefix = "\\"
            offset += 1
        }
        let segmentCount: Int
        switch try byte() {
        case 0x2E: segmentCount = 2
        case 0x2F: segmentCount = Int(try byte())
        default: segmentCount = 1; offset -= 1
        }
        var segments: [String] = []
        for _ in 0..<segmentCount {
            var segment: [UInt8] = []
            for _ in 0..<4 { segment.append(try byte()) }
            segments.append(String(decoding: segment, as: UTF8.self))
        }
        return prefix + segments.joined(separator: ".")
    }

    mutating func terms(until end: Int) throws -> [AMLObject] {
        var terms: [AMLObject] = []
        while offset < end { terms.append(try term()) }
        guard offset == end else { throw ParseError("terms overrun their package: \(offset) > \(end)") }
        return terms
    }

    mutating func term() throws -> AMLObject {
        switch try byte() {
        case 0x08:
            return .name(try nameString(), try dataObject())
        case 0x10:
            let end = try packageEnd()
            return .scope(try nameString(), try terms(until: end))
        case 0x14:
            let end = try packageEnd()
            let name = try nameString()
            let flags = try byte()
            guard offset <= end else { throw ParseError("method \(name) overruns its PkgLength") }
            defer { offset = end }
            return .method(name, flags: flags, body: Array(bytes[offset..<end]))
        case 0x5B:
            switch try byte() {
            case 0x82:
                let end = try packageEnd()
                return .device(try nameString(), try terms(until: end))
            case 0x01:
                let name = try nameString()
                _ = try byte()                                   // SyncFlags
                return .mutex(name)
            case 0x80:
                let name = try nameString()
                let space = try byte()
                guard case .integer(let start) = try dataObject(), case .integer(let length) = try dataObject() else {
                    throw ParseError("OperationRegion \(name): offset and length are not integers")
                }
                return .region(name, space: space, offset: start, length: length)
            case 0x81:
                let end = try packageEnd()
                let region = try nameString()
                let flags = try byte()
                var units: [AMLObject.FieldUnit] = []
                while offset < end {
                    if bytes[offset] == 0 {
                        offset += 1
                        units.append(.init(name: "", bits: try packageLength()))
                    } else {
                        var segment: [UInt8] = []
                        for _ in 0..<4 { segment.append(try byte()) }
                        units.append(.init(name: String(decoding: segment, as: UTF8.self), bits: try packageLength()))
                    }
                }
                guard offset == end else { throw ParseError("Field list overruns its PkgLength") }
                return .field(region, flags: flags, units: units)
            default:
                throw ParseError("unexpected extended opcode at \(offset - 1)")
            }
        case let op:
            throw ParseError("unexpected opcode 0x\(String(op, radix: 16)) at \(offset - 1)")
        }
    }

    mutating func dataObject() throws -> AMLObject {
        switch try byte() {
        case 0x00: return .integer(0)
        case 0x01: return .integer(1)
        case 0x0A: return .integer(try little(1))
        case 0x0B: return .integer(try little(2))
        case 0x0C: return .integer(try little(4))
        case 0x0E: return .integer(try little(8))
        case 0x0D:
            var chars: [UInt8] = []
            while true {
                let c = try byte()
                if c == 0 { break }
                chars.append(c)
            }
            return .string(String(decoding: chars, as: UTF8.self))
        case 0x11:
            let end = try packageEnd()
            guard case .integer(let size) = try dataObject(), size == UInt64(max(0, end - offset)) else {
                throw ParseError("Buffer size does not match its PkgLength")
            }
            defer { offset = end }
            return .buffer(Array(bytes[offset..<end]))
        case 0x12:
            let end = try packageEnd()
            let count = Int(try byte())
            var elements: [AMLObject] = []
            while offset < end { elements.append(try dataObject()) }
            guard offset == end, elements.count == count else { throw ParseError("Package of \(count) holds \(elements.count)") }
            return .package(elements)
        case let op:
            throw ParseError("unexpected data opcode 0x\(String(op, radix: 16)) at \(offset - 1)")
        }
    }

    private mutating func little(_ size: Int) throws -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<size { value |= UInt64(try byte()) << (8 * i) }
        return value
    }
}

/// Walks a resource template (ACPI 6.4 §6.4): small and large descriptors
/// up to the End Tag, which must close the buffer with a good checksum.
private enum ResourceWalk {
    struct AddressSpace: Equatable {
        var type, generalFlags: UInt8
        var minimum, maximum, length: UInt64
    }

    static func descriptors(_ data: [UInt8]) throws -> [[UInt8]] {
        var descriptors: [[UInt8]] = []
        var offset = 0
        while offset < data.count {
            let tag = data[offset]
            if tag == 0x79 {
                guard offset + 2 == data.count else { throw ParseError("End Tag at \(offset) is not last") }
                guard data[offset + 1] == 0 || data.reduce(0, &+) == 0 else { throw ParseError("bad template checksum") }
                return descriptors
            }
            let length: Int
            if tag & 0x80 == 0 {
                length = 1 + Int(tag & 0x07)
            } else {
                guard offset + 3 <= data.count else { throw ParseError("large descriptor header cut at \(offset)") }
                length = 3 + (Int(data[offset + 1]) | Int(data[offset + 2]) << 8)
            }
            guard offset + length <= data.count else { throw ParseError("descriptor at \(offset) overruns") }
            descriptors.append(Array(data[offset..<(offset + length)]))
            offset += length
        }
        throw ParseError("no End Tag")
    }

    /// A Word (0x88) or DWord (0x87) address space descriptor's fields.
    static func addressSpace(_ d: [UInt8]) -> AddressSpace {
        let size = d.first == 0x87 ? 4 : 2
        return AddressSpace(type: d.u8(3), generalFlags: d.u8(4), minimum: d.field(6 + size, size: size),
                            maximum: d.field(6 + 2 * size, size: size), length: d.field(6 + 4 * size, size: size))
    }
}
