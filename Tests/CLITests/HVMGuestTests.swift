import Foundation
import Testing

/// A KVM that emulates guest CPL0 code in software (this project's CI
/// machines): HVM guests boot their kernel there but cannot run user space.
let kvmIsSoftwareNested = FileManager.default.fileExists(atPath: "/sys/module/kvm_pvm")

/// Debian's kernel as an HVM guest on the Machine (direct 64-bit boot, ACPI,
/// COM1 console), checked through the kernel's own boot log.
@Suite("Debian's kernel as an HVM guest", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"))
struct HVMGuestTests {
    /// On a software-nested KVM every instruction of the guest kernel is
    /// emulated: this boot takes about 15 minutes (924 s measured here with
    /// other suites running beside it), and ends where the host's limits
    /// begin, at the start of init.
    @Test("boots paravirtualized on KVM with 2 vCPUs, its memory and kvm-clock, to the start of init",
          .enabled(if: kvmIsSoftwareNested, "on hardware-assisted KVM the user-space tests below cover this"),
          .timeLimit(.minutes(40)))
    func bootsToInitOnSoftwareNestedKVM() throws {
        let started = Date()
        let r = try Xeno.run(["run", "--hvm", "--vcpus", "2", "--memory", "512M", "--cmdline",
                              "console=ttyS0 loglevel=7 i8042.noaux reboot=acpi"], timeout: 1800)
        let log = r.allLines     // the kernel's own log lines are what this test reads
        func has(_ s: String) -> Bool { log.contains { $0.contains(s) } }
        #expect(has("Booting paravirtualized kernel on KVM"), "console: \(log.suffix(20))")
        #expect(has("smp: Brought up 1 node, 2 CPUs"), "console: \(log.suffix(20))")
        #expect(has("clocksource: Switched to clocksource kvm-clock"))
        #expect(has("Run /init as init process"))
        // "Memory: 452000K/523764K available (...)": the second figure is the RAM the kernel found.
        let memory = log.first { $0.contains("Memory: ") && $0.contains("K available") }
        let total = memory.flatMap { line -> Int? in
            guard let slash = line.range(of: "K/"), let end = line.range(of: "K available") else { return nil }
            return Int(line[slash.upperBound..<end.lowerBound])
        }
        #expect(total.map { $0 > 500 * 1024 && $0 <= 512 * 1024 } == true, "memory line: \(memory ?? "none")")
        #expect(r.status == 4, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("cannot run HVM guest user space") && r.stderr.contains("without --hvm"), "stderr: \(r.stderr)")
        print("HVM boot to the start of init (2 vCPUs): \(Int(Date().timeIntervalSince(started))) s")
    }

    /// The issue's slow test: 32 vCPUs on the 2-core host. Every AP's
    /// bring-up is emulated too, so it is not part of the default run:
    /// `XENOLITH_SLOW_TESTS=1 swift test --filter HVMGuestTests` runs it and
    /// prints its time (docs/BENCHMARKS.md has the figure).
    @Test("boots with 32 vCPUs to the start of init (slow: XENOLITH_SLOW_TESTS=1)",
          .enabled(if: kvmIsSoftwareNested, "on hardware-assisted KVM the user-space tests below cover this"),
          .enabled(if: ProcessInfo.processInfo.environment["XENOLITH_SLOW_TESTS"] == "1",
                   "slow test: set XENOLITH_SLOW_TESTS=1 (over an hour on this host; see docs/BENCHMARKS.md)"),
          .timeLimit(.minutes(120)))
    func bootsWith32VCPUsToInit() throws {
        let started = Date()
        let r = try Xeno.run(["run", "--hvm", "--vcpus", "32", "--memory", "1G", "--cmdline",
                              "console=ttyS0 loglevel=7 i8042.noaux reboot=acpi"], timeout: 7000)
        let log = r.allLines
        func has(_ s: String) -> Bool { log.contains { $0.contains(s) } }
        #expect(has("smp: Brought up 1 node, 32 CPUs"), "console: \(log.suffix(20))")
        #expect(has("Run /init as init process"))
        #expect(r.status == 4, "stderr: \(r.stderr)")
        print("HVM boot to the start of init (32 vCPUs): \(Int(Date().timeIntervalSince(started))) s")
    }

    /// On hardware-assisted KVM (VT-x/AMD-V): run these with
    /// `swift test --filter HVMGuestTests` on such a host, kit built.
    @Test("a shell command inside an HVM guest sees its vCPUs; poweroff ends the run with 0",
          .disabled(if: kvmIsSoftwareNested, "needs hardware-assisted KVM: this KVM (kvm_pvm) cannot run HVM guest user space"))
    func userSpaceOnHardwareKVM() throws {
        let r = try Xeno.run(["run", "--hvm", "--vcpus", "2", "--", "grep -c ^processor /proc/cpuinfo; nproc"], timeout: 300)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.readiness?.contains("mode=hvm") == true)
        #expect(r.commandOutput == ["2", "2"], "console: \(r.consoleLines.suffix(12))")
        #expect(r.exitLine == "XENOLITH-EXIT 0")
    }
}

@Suite("xeno run --hvm refuses bad input", .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"))
struct HVMBadInputTests {
    @Test("a kernel without the 64-bit boot protocol is refused")
    func no64BitEntry() throws {
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: kitDirectory + "/vmlinuz")))
        bytes[0x236] &= ~1                                      // clear XLF_KERNEL_64
        let path = NSTemporaryDirectory() + "xeno-no64-\(getpid())"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try Xeno.run(["run", "--hvm", "--kernel", path], timeout: 60)
        #expect(r.status != 0)
        #expect(r.stderr.contains("64-bit boot protocol"), "stderr: \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "stderr: \(r.stderr)")
    }
}
