import Foundation
import Testing

/// `mem-set` on an HVM guest, end to end: a guest program of our own
/// (Tests/guests/hvm/balloon.S) plays the virtio-balloon driver, since a
/// Linux HVM guest cannot reach user space on this host's software-nested
/// KVM. It fills 64 MiB, then follows num_pages: the host sees the VMM's RSS
/// fall as the balloon inflates, and the guest sees deflated pages read as
/// zeros.
@Suite("mem-set on an HVM guest through virtio-balloon",
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: binutilsPresent, "needs binutils (as, ld): run scripts/setup.sh"))
struct HVMBalloonTests {
    @Test("xeno ctl mem-set inflates the balloon (RSS falls by the ballooned size), deflates it again; info follows; above the boot size is refused")
    func memSet() throws {
        let elf = try ProbeRun.assemble("balloon")
        defer { try? FileManager.default.removeItem(atPath: elf) }
        let socket = ControlSocketTests.socketPath("hvm-balloon")
        let seen = Locked<[String: String]>([:])
        func note(_ key: String, _ value: String) { var s = seen.get(); s[key] = value; seen.set(s) }
        func ctl(_ args: String...) -> String {
            let (status, out) = ControlSocketTests.ctl([socket] + args)
            return "\(status) \(out.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
        let r = try Xeno.run(["run", "--hvm", "--kernel", elf, "--memory", "256M", "--control", socket], timeout: 120, hostSteps: [
            (after: "FILLED", run: { pid in
                note("rss-filled", String(ControlSocketTests.residentKiB(pid)))
                note("info-filled", ctl("info"))
                note("stats-filled", ctl("stats"))
                note("too-big", ctl("mem-set", "512M"))
                note("set-208", ctl("mem-set", "208M"))        // 48 MiB out: 12288 pages
            }),
            (after: "INFLATED", run: { pid in
                // The line's number and the driver's write of actual come
                // just before; give the VMM a moment to have served both.
                usleep(200_000)
                note("rss-inflated", String(ControlSocketTests.residentKiB(pid)))
                note("info-inflated", ctl("info"))
                note("set-240", ctl("mem-set", "240M"))        // 16 MiB out: 4096 pages
            }),
            (after: "DEFLATED", run: { pid in
                usleep(200_000)
                note("info-deflated", ctl("info"))
                note("stats-deflated", ctl("stats"))
                kill(pid, SIGTERM)
            }),
        ])
        let s = seen.get()
        #expect(r.status == 143, "stderr: \(r.stderr)")
        #expect(!r.allLines.contains("FAILED") && !r.allLines.contains("NONZERO"), "console: \(r.allLines.suffix(6))")
        #expect(r.allLines.contains("INFLATED 0000000000003000"), "console: \(r.allLines.suffix(6))")
        #expect(r.allLines.contains("DEFLATED 0000000000001000"), "console: \(r.allLines.suffix(6))")

        #expect(s["info-filled"]?.hasPrefix("0 ok name=xenolith mode=hvm vcpus-online=1 vcpus-max=1") == true, "\(s["info-filled"] ?? "")")
        #expect(s["info-filled"]?.hasSuffix("memory-target-kib=262144 memory-max-kib=262144 memory-current-kib=262144 balloon-actual-kib=0 state=running") == true,
                "\(s["info-filled"] ?? "")")
        #expect(s["too-big"] == "1 error mem-set: 512 MiB exceeds this guest's maximum of 256 MiB (its boot size)", "\(s["too-big"] ?? "")")
        #expect(s["set-208"] == "0 ok memory-target-kib=212992", "\(s["set-208"] ?? "")")
        #expect(s["info-inflated"]?.hasSuffix("memory-target-kib=212992 memory-max-kib=262144 memory-current-kib=212992 balloon-actual-kib=49152 state=running") == true,
                "\(s["info-inflated"] ?? "")")
        #expect(s["set-240"] == "0 ok memory-target-kib=245760", "\(s["set-240"] ?? "")")
        #expect(s["info-deflated"]?.hasSuffix("memory-target-kib=245760 memory-max-kib=262144 memory-current-kib=245760 balloon-actual-kib=16384 state=running") == true,
                "\(s["info-deflated"] ?? "")")

        // `stats`: the vCPU's VM exits so far (the port writes of its serial
        // lines at least), growing; no PV device counters for an HVM guest.
        func exits(_ key: String) -> Int? {
            guard let reply = s[key], reply.hasPrefix("0 ok exits="), !reply.contains("disks=") else { return nil }
            return Int(reply.dropFirst("0 ok exits=".count))
        }
        let early = exits("stats-filled") ?? 0, late = exits("stats-deflated") ?? 0
        #expect(early > 0 && late > early, "stats: \(s["stats-filled"] ?? "") then \(s["stats-deflated"] ?? "")")

        // 48 MiB of touched guest pages left the VMM: allow a little slack
        // for the VMM's own memory moving meanwhile.
        let filled = Int(s["rss-filled"] ?? "") ?? -1, inflated = Int(s["rss-inflated"] ?? "") ?? -1
        #expect(filled > 0 && inflated > 0 && filled - inflated >= 40 * 1024, "VmRSS \(filled) KiB filled, \(inflated) KiB inflated")
    }
}
