import Foundation
import Testing

/// The stock Debian kernel as a Xen PV guest, checked from inside the guest.
@Suite("Debian's kernel as a PV guest", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"))
struct LinuxGuestTests {
    @Test("boots to the readiness line and a command's output: Xen PV, xen clocksource, memory as configured")
    func bootsParavirtualized() throws {
        let r = try Xeno.run(["run", "--memory", "512M", "--",
                              "cat /sys/hypervisor/type; cat /sys/devices/system/clocksource/clocksource0/current_clocksource;",
                              "grep MemTotal /proc/meminfo; dmesg | grep -q 'Hypervisor detected: Xen PV' && echo xen-pv; nproc"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.readiness?.contains("mode=pv") == true)
        let out = r.commandOutput
        #expect(out.count == 5, "output: \(out)")
        guard out.count == 5 else { return }
        #expect(out[0] == "xen")
        #expect(out[1] == "xen")
        let kb = Int(out[2].split(separator: " ").dropFirst().first ?? "") ?? 0
        // MemTotal is the configured size less what the kernel reserves.
        #expect(kb > 512 * 1024 * 85 / 100 && kb <= 512 * 1024, "MemTotal \(kb) kB")
        #expect(out[3] == "xen-pv")
        #expect(out[4] == "1")
        #expect(r.exitLine == "XENOLITH-EXIT 0")
    }

    @Test("a shell on the console takes piped input; poweroff ends the run with status 0")
    func pipedShellWithFourVCPUs() throws {
        let r = try Xeno.run(["run", "--vcpus", "4"],
                             input: "grep -c ^processor /proc/cpuinfo\nnproc\npoweroff -f\n")
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let lines = r.consoleLines
        let counts = lines.enumerated().filter { $0.element.hasSuffix("# grep -c ^processor /proc/cpuinfo") || $0.element.hasSuffix("# nproc") }
            .compactMap { lines.indices.contains($0.offset + 1) ? lines[$0.offset + 1] : nil }
        #expect(counts == ["4", "4"], "console: \(lines.suffix(12))")
    }

    @Test("a command's failure status comes back from inside the guest")
    func commandStatus() throws {
        let r = try Xeno.run(["run", "--", "exit 7"])
        #expect(r.status == 0)
        #expect(r.exitLine == "XENOLITH-EXIT 7")
    }

    @Test("with --no-reboot a guest that reboots ends the run instead of starting again")
    func noReboot() throws {
        let r = try Xeno.run(["run", "--no-reboot", "--", "reboot -f"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.consoleLines.filter { $0.hasPrefix("XENOLITH-READY") }.count == 1)
        #expect(r.exitLine == nil)
    }
}
