import Foundation
import Testing

/// `xeno save` / `xeno restore` of a daemon-managed PV domain, seen from
/// inside the guest: the ticker of XenodPauseTests counts on the console.
extension XenodTests {
    @Test("save and restore: the guest's counting process goes on from where it was (same PID), a file written before is there, its clock is right")
    func saveAndRestore() throws {
        #expect(try xeno(["create", try config("sr")]).status == 0)
        guard try waitFor("the guest's readiness line", { console("sr").contains("XENOLITH-READY") }) else { return }
        let ctl = ["exec", "--control", directory + "/run/sr.ctl", "--"]
        let start = try Xeno.run(ctl + ["echo written-before > /root/before.txt; setsid sh -c '\(Self.ticker)' </dev/null >/dev/null 2>&1 & echo $!"],
                                 timeout: 120)
        #expect(start.status == 0, "exec: \(start.status) \(start.stdout) \(start.stderr)")
        let tickerPID = try #require(Int(start.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "exec: \(start.stdout)")
        guard waitFor("the ticker's lines", timeout: 60, { ticks("sr").count >= 3 }) else { return }
        let latest = try #require(ticks("sr").last)
        let before = try #require(offsetOfTick("sr", after: latest.n))

        let file = directory + "/sr.save"
        let saved = try xeno(["save", "sr", file])
        #expect(saved.status == 0, "stderr: \(saved.stderr)")
        #expect(saved.stdout.contains("saved to \(file)"), "stdout: \(saved.stdout)")
        #expect(try row("sr") == nil, "a saved domain leaves the host")
        #expect(FileManager.default.fileExists(atPath: file))
        let lastBefore = try #require(ticks("sr").last, "the console before the save")
        usleep(2_000_000)            // time passes while the guest is in the file

        let restored = try xeno(["restore", file])
        #expect(restored.status == 0, "stderr: \(restored.stderr)")
        #expect(restored.stdout.contains("domain sr restored"), "stdout: \(restored.stdout)")
        #expect(try row("sr")?[4] == "running")
        // The next line the restored guest prints carries on the count, and
        // its clock is as far from the host's as before (not the 2 s behind
        // a clock that stopped in the file would be).
        let (next, offset) = try #require(offsetOfTick("sr", after: lastBefore.n))
        #expect(next.n == lastBefore.n + 1)
        #expect(abs(offset - before.offset) <= 1.5,
                "guest clock minus host clock: \(before.offset) s before the save, \(offset) s after the restore")
        try expectClockRight("sr", "after restore")
        // `date` reads the clock through the vDSO (Xen pvclock: the
        // time area the guest registered again on resume), not a system call.
        let askedAt = Int(Date().timeIntervalSince1970)
        let check = try Xeno.run(ctl + ["cat /root/before.txt; kill -0 \(tickerPID) && echo ticker-alive; date +%s"], timeout: 120)
        let answeredAt = Int(Date().timeIntervalSince1970) + 1
        let lines = check.stdout.split(separator: "\n").map(String.init)
        #expect(check.status == 0 && lines.prefix(2) == ["written-before", "ticker-alive"], "exec: \(check.status) \(check.stdout) \(check.stderr)")
        let guestDate = lines.count == 3 ? Int(lines[2]) : nil
        #expect(guestDate.map { $0 >= askedAt && $0 <= answeredAt } == true,
                "the guest's date after the restore: \(lines.last ?? "none"), the host's \(askedAt)–\(answeredAt)")
        #expect(try xeno(["destroy", "sr"]).status == 0)

        // Bad files are refused with a line saying why; nothing is created.
        let missing = try xeno(["restore", directory + "/nosuch.save"])
        #expect(missing.status == 1 && missing.stderr.contains("nosuch.save"), "stderr: \(missing.stderr)")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        bytes[3] ^= 0xff                                       // the image's magic, the trailer intact
        let corrupt = directory + "/corrupt.save"
        try bytes.write(to: URL(fileURLWithPath: corrupt))
        let refused = try xeno(["restore", corrupt])
        #expect(refused.status == 1 && refused.stderr.contains("not a Xenolith save image"), "stderr: \(refused.stderr)")
        let cut = directory + "/cut.save"
        try Data(try Data(contentsOf: URL(fileURLWithPath: file)).prefix(1 << 20)).write(to: URL(fileURLWithPath: cut))
        let truncated = try Xeno.run(["run", "--restore", cut], timeout: 60)
        #expect(truncated.status == 1 && truncated.stderr.contains("truncated"), "stderr: \(truncated.stderr)")
        #expect(try row("sr") == nil)
        let unknown = try xeno(["save", "nosuch", file])
        #expect(unknown.status == 1 && unknown.stderr.contains("no domain named 'nosuch'"), "stderr: \(unknown.stderr)")
    }

    @Test("xl save and restore of an HVM domain: the ticking guest program goes on from the next tick",
          .enabled(if: binutilsPresent, "needs binutils (as, ld): run scripts/setup.sh"))
    func saveAndRestoreHVM() throws {
        let elf = try ProbeRun.assemble("ticker")
        defer { try? FileManager.default.removeItem(atPath: elf) }
        let path = directory + "/hvmsr.cfg"
        try """
        name = "hvmsr"
        type = "hvm"
        memory = 64
        kernel = "\(elf)"
        """.write(toFile: path, atomically: true, encoding: .utf8)
        func tickNumbers() -> [Int] {
            console("hvmsr").split(separator: "\n").compactMap { line in
                let w = line.split(separator: " ")
                return w.count >= 4 && w[0] == "TICK" ? Int(w[1], radix: 16) : nil
            }
        }
        #expect(try xeno(["create", path]).status == 0)
        guard try waitFor("the guest's eighth tick", { tickNumbers().count >= 8 }) else { return }
        let file = directory + "/hvmsr.save"
        let saved = try xeno(["save", "hvmsr", file])
        #expect(saved.status == 0, "stderr: \(saved.stderr)")
        #expect(try row("hvmsr") == nil, "a saved domain leaves the host")
        let before = tickNumbers()
        let restored = try xeno(["restore", file])
        #expect(restored.status == 0, "stderr: \(restored.stderr)")
        #expect(try row("hvmsr")?[4] == "running")
        guard try waitFor("ticks after the restore", { tickNumbers().count > 3 }) else { return }
        let after = tickNumbers()
        // The restored VMM's console log starts afresh: every tick once,
        // in order, from the one after the last before the save.
        let last = before.last ?? 0
        #expect(before == Array(1...max(1, last)) && after == Array((last + 1)..<(last + 1 + after.count)),
                "ticks before the save: \(before), after the restore: \(after)")
        _ = try? xeno(["destroy", "hvmsr"])          // it may have powered off already (after TICK 0040)
    }
}
