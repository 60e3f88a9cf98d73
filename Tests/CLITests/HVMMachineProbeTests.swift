import Foundation
import Testing

/// The HVM machine as a guest sees it, through a small guest program of our
/// own (Tests/guests/hvm/probe.S, assembled here with binutils): it reports
/// CPUID, the zero page's memory map and command line, and dumps the ACPI
/// tables it finds from the RSDP; it echoes a line typed on COM1 and powers
/// off through the FADT's sleep register. The tests parse all of it back.
/// Everything the probe runs is guest CPL0 code, which even a software-nested
/// KVM runs in well under a second.
@Suite("The HVM machine seen from a guest program of our own",
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: binutilsPresent, "needs binutils (as, ld): run scripts/setup.sh"))
struct HVMMachineProbeTests {
    @Test("2 vCPUs, 256 MiB: CPUID, e820, command line, ACPI tables, console input, ACPI power-off")
    func smallMachine() throws {
        let probe = try ProbeRun(vcpus: 2, memory: "256M", input: "hello xen\n")
        #expect(probe.status == 0, "stderr: \(probe.stderr)")

        // CPUID: our policy on vCPU 0.
        let leaf1 = try #require(probe.cpuid[ProbeRun.Leaf(0x1, 0)])
        #expect(leaf1[1] >> 24 == 0, "APIC ID of vCPU 0")
        #expect((leaf1[1] >> 16) & 0xff == 2, "logical processors per package")
        #expect(leaf1[2] & (1 << 31) != 0, "the hypervisor bit")
        let signature = try #require(probe.cpuid[ProbeRun.Leaf(0x4000_0000, 0)])
        #expect(ProbeRun.ascii(signature[1...3]) == "KVMKVMKVM\0\0\0")
        let features = try #require(probe.cpuid[ProbeRun.Leaf(0x4000_0001, 0)])
        for bit in [3, 5, 6] {              // kvm-clock (new MSRs), steal time, PV EOI
            #expect(features[0] & (1 << bit) != 0, "KVM feature bit \(bit)")
        }
        let coreLevel = try #require(probe.cpuid[ProbeRun.Leaf(0xb, 1)])
        #expect(coreLevel[1] == 2 && (coreLevel[2] >> 8) & 0xff == 2, "leaf 0xb core level: \(coreLevel)")

        // e820: ascending, disjoint, RAM adds up to the guest's memory.
        #expect(probe.e820.first?.address == 0 && probe.e820.first?.type == 1)
        for (a, b) in zip(probe.e820, probe.e820.dropFirst()) { #expect(a.address + a.size <= b.address) }
        let ram = probe.e820.filter { $0.type == 1 }
        #expect(ram.reduce(0) { $0 + $1.size } == 256 << 20 - (0x10_0000 - 0x9_fc00))
        #expect(ram.last.map { $0.address + $0.size } == 256 << 20)

        #expect(probe.commandLine.hasPrefix("console=ttyS0 probe me"), "command line: \(probe.commandLine)")

        // ACPI, parsed back from what the guest read.
        let madt = try probe.checkedACPI()
        #expect(madt.localAPICs == [0, 1], "enabled local APICs: \(madt.localAPICs)")
        #expect(madt.ioAPICs == 1)

        #expect(probe.lines.contains("ECHO HELLO XEN"), "console: \(probe.lines.suffix(5))")
        #expect(!probe.lines.contains("FAILED"))
    }

    @Test("32 vCPUs and 5 GiB: a local APIC for each, RAM split around the PCI hole")
    func largeMachine() throws {
        let probe = try ProbeRun(vcpus: 32, memory: "5G", input: "x\n")
        #expect(probe.status == 0, "stderr: \(probe.stderr)")
        let leaf1 = try #require(probe.cpuid[ProbeRun.Leaf(0x1, 0)])
        #expect((leaf1[1] >> 16) & 0xff == 32)
        let coreLevel = try #require(probe.cpuid[ProbeRun.Leaf(0xb, 1)])
        #expect(coreLevel[0] == 5 && coreLevel[1] == 32, "leaf 0xb core level: \(coreLevel)")
        let ram = probe.e820.filter { $0.type == 1 }
        #expect(ram.reduce(0) { $0 + $1.size } == 5 << 30 - (0x10_0000 - 0x9_fc00))
        #expect(!ram.contains { $0.address < 0x1_0000_0000 && $0.address + $0.size > 0xc000_0000 }, "no RAM in the PCI hole")
        #expect(ram.last.map { $0.address + $0.size } == 0x1_0000_0000 + (5 << 30 - 0xc000_0000))
        let madt = try probe.checkedACPI()
        #expect(madt.localAPICs == Array(0..<32))
        #expect(probe.lines.contains("ECHO X"))
    }
}

/// How an HVM guest's run ends, shown with guests that do one thing each.
@Suite("HVM lifecycle with guest programs of our own",
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: binutilsPresent, "needs binutils (as, ld): run scripts/setup.sh"))
struct HVMLifecycleTests {
    @Test("a triple fault ends the run with status 3 and the vCPU's registers")
    func tripleFault() throws {
        let elf = try ProbeRun.assemble("triple")
        defer { try? FileManager.default.removeItem(atPath: elf) }
        let r = try Xeno.run(["run", "--hvm", "--kernel", elf], timeout: 60)
        #expect(r.status == 3)
        #expect(r.stderr.contains("triple fault"), "stderr: \(r.stderr)")
        #expect(r.stderr.contains("r12=7e57ab1e") && r.stderr.contains("rip="), "stderr: \(r.stderr)")
    }

    @Test("an i8042 reset restarts the guest; with --no-reboot it ends the run with 0")
    func reboot() throws {
        let elf = try ProbeRun.assemble("reboot")
        defer { try? FileManager.default.removeItem(atPath: elf) }
        let once = try Xeno.run(["run", "--hvm", "--no-reboot", "--kernel", elf], timeout: 60)
        #expect(once.status == 0, "stderr: \(once.stderr)")
        #expect(once.allLines.filter { $0 == "BOOT" }.count == 1)
        // Without --no-reboot each reset boots the guest again, until SIGTERM.
        let again = try Xeno.run(["run", "--hvm", "--kernel", elf], timeout: 60,
                                 hostSteps: [(after: "BOOT", run: { _ in }), (after: "BOOT", run: { kill($0, SIGTERM) })])
        #expect(again.status == 143, "stderr: \(again.stderr)")
        #expect(again.allLines.filter { $0 == "BOOT" }.count >= 2)
        #expect(again.stderr.contains("SIGTERM"), "stderr: \(again.stderr)")
    }
}

let binutilsPresent = FileManager.default.isExecutableFile(atPath: "/usr/bin/as")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/ld")

/// One run of the probe through `xeno run --hvm`, its report parsed.
struct ProbeRun {
    struct Leaf: Hashable {
        let function: UInt64, index: UInt64
        init(_ f: UInt64, _ i: UInt64) { function = f; index = i }
    }
    struct MemoryRange { let address: UInt64, size: UInt64, type: UInt64 }

    let status: Int32
    let stderr: String
    let lines: [String]
    var cpuid: [Leaf: [UInt64]] = [:]
    var e820: [MemoryRange] = []
    var commandLine = ""
    var rsdpAddress: UInt64 = 0
    /// Guest-physical address → the bytes the guest read there.
    var dumps: [UInt64: [UInt8]] = [:]

    init(vcpus: Int, memory: String, input: String) throws {
        let elf = try Self.assemble()
        defer { try? FileManager.default.removeItem(atPath: elf) }
        let r = try Xeno.run(["run", "--hvm", "--kernel", elf, "--vcpus", String(vcpus), "--memory", memory,
                              "--cmdline", "console=ttyS0 probe me"], input: input, timeout: 120)
        status = r.status
        stderr = r.stderr
        lines = r.allLines
        var current: UInt64?
        for line in lines {
            let words = line.split(separator: " ").map(String.init)
            func hex(_ i: Int) -> UInt64 { i < words.count ? UInt64(words[i], radix: 16) ?? 0 : 0 }
            switch words.first {
            case "CPUID" where words.count == 7: cpuid[Leaf(hex(1), hex(2))] = (3...6).map(hex)
            case "E820" where words.count == 4: e820.append(MemoryRange(address: hex(1), size: hex(2), type: hex(3)))
            case "CMDLINE": commandLine = String(line.dropFirst("CMDLINE ".count))
            case "RSDP": rsdpAddress = hex(1)
            case "DUMP": current = hex(1); dumps[hex(1)] = []
            case "HEX" where words.count == 2:
                if let at = current {
                    let digits = Array(words[1].utf8)
                    for i in stride(from: 0, to: digits.count - 1, by: 2) {
                        dumps[at]!.append(UInt8(String(decoding: digits[i...(i + 1)], as: UTF8.self), radix: 16) ?? 0)
                    }
                }
            default: current = nil
            }
        }
    }

    static func ascii(_ registers: ArraySlice<UInt64>) -> String {
        String(decoding: registers.flatMap { r in (0..<4).map { UInt8(truncatingIfNeeded: r >> (8 * $0)) } }, as: UTF8.self)
    }

    /// Assembles and links the probe at 2 MiB, its entry the ELF entry.
    static func assemble(_ name: String = "probe") throws -> String {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("guests/hvm/\(name).S").path
        let base = NSTemporaryDirectory() + "xeno-probe-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base + ".o") }
        for argv in [["/usr/bin/as", "-I", URL(fileURLWithPath: source).deletingLastPathComponent().path, "-o", base + ".o", source],
                     ["/usr/bin/ld", "-N", "-static", "-e", "_start", "-Ttext=0x200000", "-o", base + ".elf", base + ".o"]] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: argv[0])
            p.arguments = Array(argv.dropFirst())
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw ProbeError("\(argv[0]) failed with \(p.terminationStatus)") }
        }
        return base + ".elf"
    }

    struct MADTSummary { var localAPICs: [Int] = []; var ioAPICs = 0 }

    /// RSDP → XSDT → every table, each with its signature and checksum, the
    /// FADT hardware-reduced and naming the DSDT, the DSDT with \_S5; the
    /// MADT's enabled local APIC IDs and I/O APIC count.
    func checkedACPI() throws -> MADTSummary {
        func sum(_ b: ArraySlice<UInt8>) -> UInt8 { b.reduce(0, &+) }
        func u32(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<4).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * $1) } }
        func u64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * $1) } }
        func table(_ address: UInt64, _ signature: String) throws -> [UInt8] {
            let b = try #require(dumps[address], "the guest dumped nothing at \(String(address, radix: 16))")
            #expect(b.count >= 36 && String(decoding: b[0..<4], as: UTF8.self) == signature)
            #expect(u32(b, 4) == UInt64(b.count), "\(signature) length")
            #expect(sum(b[...]) == 0, "\(signature) checksum")
            return b
        }
        let rsdp = try #require(dumps[rsdpAddress])
        #expect(rsdp.count == 36 && String(decoding: rsdp[0..<8], as: UTF8.self) == "RSD PTR ")
        #expect(sum(rsdp[0..<20]) == 0 && sum(rsdp[...]) == 0 && rsdp[15] == 2, "RSDP checksums and revision")
        let xsdt = try table(u64(rsdp, 24), "XSDT")
        var summary = MADTSummary()
        var signatures: [String] = []
        for at in stride(from: 36, to: xsdt.count, by: 8) {
            let address = u64(xsdt, at)
            let b = try #require(dumps[address])
            let signature = String(decoding: b[0..<4], as: UTF8.self)
            signatures.append(signature)
            _ = try table(address, signature)
            switch signature {
            case "FACP":
                #expect(u32(b, 112) & (1 << 20) != 0, "FADT: hardware-reduced")
                let dsdt = try table(u64(b, 140), "DSDT")
                #expect(dsdt.firstRange(of: Array("_S5_".utf8)) != nil, "DSDT names \\_S5")
            case "APIC":
                var i = 44
                while i + 2 <= b.count, b[i + 1] >= 2, i + Int(b[i + 1]) <= b.count {
                    if b[i] == 0, b[i + 1] == 8, u32(b, i + 4) & 1 != 0 { summary.localAPICs.append(Int(b[i + 3])) }
                    if b[i] == 1 { summary.ioAPICs += 1 }
                    i += Int(b[i + 1])
                }
            default: break
            }
        }
        #expect(signatures.contains("FACP") && signatures.contains("APIC"), "tables: \(signatures)")
        return summary
    }
}

struct ProbeError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
