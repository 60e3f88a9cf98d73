import Foundation
import Testing

/// `shutdown poweroff` of an HVM guest presses its ACPI power button, as
/// Xen does for an HVM guest without PV drivers: a guest program of our own
/// (Tests/guests/hvm/button.S) plays the OS's GED and button drivers. It
/// takes the GED's interrupt on the I/O APIC input the DSDT names, finds
/// the button's status bit, clears it and powers off. A reboot request is
/// refused with its reason.
@Suite("the ACPI power button of HVM guests", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: binutilsPresent, "needs binutils (as, ld): run scripts/setup.sh"))
struct HVMPowerButtonTests {
    @Test("shutdown poweroff: the GED interrupt comes, the button's status bit is set and clears, the guest powers off")
    func shutdownPressesThePowerButton() throws {
        let elf = try ProbeRun.assemble("button")
        defer { try? FileManager.default.removeItem(atPath: elf) }
        let socket = ControlSocketTests.socketPath("hvm-button")
        let replies = Locked<[String]>([])
        let r = try Xeno.run(["run", "--hvm", "--kernel", elf, "--memory", "64M", "--control", socket], timeout: 120, hostSteps: [
            (after: "READY", run: { _ in
                replies.set([ControlSocketTests.request(socket, "shutdown reboot"),
                             ControlSocketTests.request(socket, "shutdown poweroff")])
            }),
        ])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let got = replies.get()
        #expect(got.first?.hasPrefix("error reboot: an HVM guest cannot be asked to reboot") == true, "replies: \(got)")
        #expect(got.last == "ok shutdown=poweroff via=acpi-power-button", "replies: \(got)")
        #expect(r.allLines.contains("POWER BUTTON"), "console: \(r.allLines)")
        #expect(!r.allLines.contains("SPURIOUS EVENT"), "console: \(r.allLines)")
    }
}
