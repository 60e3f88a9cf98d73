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

    /// Save and restore of a real kernel in the middle of its boot: saved
    /// right after it brought up its second CPU (timers, both local APICs,
    /// the I/O APIC and kvm-clock live), kept in the file, restored; the
    /// kernel goes on through the rest of its boot (ACPI, PCI, the switch
    /// to kvm-clock) to the start of init. About 8 minutes here.
    @Test("saved after SMP bring-up and restored, the kernel boots on to the start of init (slow: XENOLITH_SLOW_TESTS=1)",
          .enabled(if: kvmIsSoftwareNested, "on hardware-assisted KVM the user-space test below covers this"),
          .enabled(if: ProcessInfo.processInfo.environment["XENOLITH_SLOW_TESTS"] == "1",
                   "slow test: set XENOLITH_SLOW_TESTS=1 (a boot of about 8 minutes on this host)"),
          .timeLimit(.minutes(40)))
    func savedMidBootGoesOnToInit() throws {
        let socket = ControlSocketTests.socketPath("hvm-boot-save")
        let image = NSTemporaryDirectory() + "xeno-hvm-boot-\(getpid()).save"
        defer { try? FileManager.default.removeItem(atPath: image) }
        let reply = Locked<String>("none")
        let first = try Xeno.run(["run", "--hvm", "--vcpus", "2", "--memory", "512M", "--control", socket, "--cmdline",
                                  "console=ttyS0 loglevel=7 i8042.noaux reboot=acpi"], timeout: 1200, hostSteps: [
            (after: "smp: Brought up 1 node, 2 CPUs", run: { _ in reply.set(ControlSocketTests.request(socket, "save \(image)")) }),
        ])
        #expect(first.status == 0 && reply.get().hasPrefix("ok saved="), "save: \(reply.get()); stderr: \(first.stderr)")
        #expect(!first.allLines.contains { $0.contains("Switched to clocksource kvm-clock") }, "saved before the clocksource switch")
        sleep(2)
        let second = try Xeno.run(["run", "--restore", image], timeout: 1800)
        let log = second.allLines
        func has(_ s: String) -> Bool { log.contains { $0.contains(s) } }
        #expect(has("clocksource: Switched to clocksource kvm-clock"), "console: \(log.suffix(20))")
        #expect(has("Run /init as init process"), "console: \(log.suffix(20))")
        #expect(second.status == 4 && second.stderr.contains("cannot run HVM guest user space"), "stderr: \(second.stderr)")
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

    @Test("save and restore: a counting shell loop in the HVM guest goes on from the next number",
          .disabled(if: kvmIsSoftwareNested, "needs hardware-assisted KVM: this KVM (kvm_pvm) cannot run HVM guest user space"))
    func counterGoesOnAcrossSaveOnHardwareKVM() throws {
        let socket = ControlSocketTests.socketPath("hvm-user-save")
        let image = NSTemporaryDirectory() + "xeno-hvm-user-\(getpid()).save"
        defer { try? FileManager.default.removeItem(atPath: image) }
        let loop = "i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo COUNT $i; sleep 0.2; done"
        let first = try Xeno.run(["run", "--hvm", "--vcpus", "2", "--control", socket, "--", loop], timeout: 300, hostSteps: [
            (after: "COUNT 5", run: { _ in _ = ControlSocketTests.request(socket, "save \(image)") }),
        ])
        #expect(first.status == 0, "stderr: \(first.stderr)")
        let second = try Xeno.run(["run", "--restore", image], timeout: 300)
        #expect(second.status == 0, "stderr: \(second.stderr)")
        func counts(_ r: Xeno.Result) -> [Int] { r.allLines.compactMap { $0.hasPrefix("COUNT ") ? Int($0.dropFirst(6)) : nil } }
        let all = counts(first) + counts(second)
        #expect(all == Array(1...40), "counts: \(counts(first)) then \(counts(second))")
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
