import Foundation
import Testing

/// `save` and `--restore` of an HVM guest, shown with a guest program of our
/// own (Tests/guests/hvm/ticker.S) that keeps time as a kernel does: its
/// local APIC timer interrupts it every 50 ms through its own IDT, it sleeps
/// in `hlt` between ticks, and it prints each tick with its wall clock read
/// from kvm-clock. Restoring must bring back its memory, registers,
/// interrupt descriptor table, local APIC (timer and all), the UART and
/// kvm-clock: the ticks go on from the next one, none lost or repeated, and
/// the wall clock the guest reads is the host's again, although the guest
/// spent seconds in the file; and the time it did not run (paused, or in
/// the file) is steal in its steal-time record, as Linux's /proc/stat shows it.
@Suite("save and restore of HVM guests", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: binutilsPresent, "needs binutils (as, ld): run scripts/setup.sh"))
struct HVMSaveRestoreTests {
    /// One line of ticker.S: its tick, its wall clock (s) and its steal time (s).
    struct Tick { let number: Int; let wall: Double; let steal: Double }

    static func ticks(_ output: String) -> [Tick] {
        output.split(separator: "\n").compactMap { line in
            let w = line.split(separator: " ")
            guard w.count == 6, w[0] == "TICK", w[2] == "WALL", w[4] == "STEAL", let n = Int(w[1], radix: 16),
                  let steal = Int(w[5], radix: 16) else { return nil }
            let parts = w[3].split(separator: ".")
            guard parts.count == 2, let s = Int(parts[0], radix: 16), let ms = Int(parts[1], radix: 16) else { return nil }
            return Tick(number: n, wall: Double(s) + Double(ms) / 1000, steal: Double(steal) / 1000)
        }
    }

    @Test("a ticking guest saved, kept 3 s in the file, restored: every tick once, in order; its wall clock right before and after")
    func tickingGuestGoesOn() throws {
        let elf = try ProbeRun.assemble("ticker")
        defer { try? FileManager.default.removeItem(atPath: elf) }
        let socket = ControlSocketTests.socketPath("hvm-save")
        let image = NSTemporaryDirectory() + "xeno-hvm-save-\(getpid()).img"
        defer { try? FileManager.default.removeItem(atPath: image) }
        let reply = Locked<String>("none")

        let firstStart = Date().timeIntervalSince1970
        let first = try Xeno.run(["run", "--hvm", "--kernel", elf, "--memory", "64M", "--control", socket], timeout: 120, hostSteps: [
            (after: "TICK 0010", run: { _ in reply.set(ControlSocketTests.request(socket, "save \(image)")) }),
        ])
        let firstEnd = Date().timeIntervalSince1970
        #expect(first.status == 0, "stderr: \(first.stderr)")
        #expect(reply.get().hasPrefix("ok saved=\(image) "), "save's reply: \(reply.get())")
        #expect(first.stderr.contains("saved to \(image)"), "stderr: \(first.stderr)")
        let before = Self.ticks(first.stdout)
        #expect(before.count >= 0x10 && before.count < 0x40, "ticks before the save: \(before.count)")

        // Time the guest spends in the file: its clock must make it good.
        sleep(3)
        let secondStart = Date().timeIntervalSince1970
        let second = try Xeno.run(["run", "--restore", image], timeout: 120)
        let secondEnd = Date().timeIntervalSince1970
        #expect(second.status == 0, "stderr: \(second.stderr)")
        // The save may land in the middle of a line ("...\nTI" then "CK 0011
        // ..."): the guest finishes writing it after the restore. That tick
        // read its clock in either run, so only its place in the order is checked.
        let unfinished = first.stdout.split(separator: "\n", omittingEmptySubsequences: false).last ?? ""
        let resumed = Self.ticks(unfinished + second.stdout)
        let split = unfinished.isEmpty ? [] : Array(resumed.prefix(1))
        let after = Array(resumed.dropFirst(split.count))

        // Every tick once, in order, across the two runs, to the last.
        #expect((before + split + after).map(\.number) == Array(1...0x40),
                "ticks: \(before.map(\.number)) then \(split.map(\.number)) split by the save, then \(after.map(\.number))")
        // The wall clock the guest reads lies within each run (0.5 s slack
        // for the host's own timestamps around the runs).
        for t in before { #expect(t.wall >= firstStart - 0.5 && t.wall <= firstEnd + 0.5, "tick \(t.number) before: wall \(t.wall), run \(firstStart)–\(firstEnd)") }
        for t in after { #expect(t.wall >= secondStart - 0.5 && t.wall <= secondEnd + 0.5, "tick \(t.number) after: wall \(t.wall), run \(secondStart)–\(secondEnd)") }
        // The time in the file is steal for the guest: at least the 3 s it
        // certainly spent there, at most the time between the two runs
        // (and a little the host's run queue adds).
        if let last = before.last, let next = after.first {
            let added = next.steal - last.steal
            #expect(added >= 3.0 && added <= secondStart - firstEnd + 2.0 + 0.5,
                    "steal before the save \(last.steal) s, after the restore \(next.steal) s")
        }
    }

    @Test("paused 2 s: the ticks show the gap in their wall clock, the guest's steal grows by the pause, its wall clock is right after")
    func pausedTimeIsSteal() throws {
        let elf = try ProbeRun.assemble("ticker")
        defer { try? FileManager.default.removeItem(atPath: elf) }
        let socket = ControlSocketTests.socketPath("hvm-steal")
        let pause = Locked<(Double, Double)>((0, 0))
        let start = Date().timeIntervalSince1970
        let r = try Xeno.run(["run", "--hvm", "--kernel", elf, "--memory", "64M", "--control", socket], timeout: 120, hostSteps: [
            (after: "TICK 0008", run: { _ in
                _ = ControlSocketTests.request(socket, "pause")
                let from = Date().timeIntervalSince1970
                usleep(2_000_000)
                let to = Date().timeIntervalSince1970
                _ = ControlSocketTests.request(socket, "unpause")
                pause.set((from, to))
            }),
        ])
        let end = Date().timeIntervalSince1970
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let ticks = Self.ticks(r.stdout)
        #expect(ticks.map(\.number) == Array(1...0x40), "ticks: \(ticks.map(\.number))")
        let (from, to) = pause.get()
        // The tick across the pause: the steal it shows has grown by the
        // pause at least, by not much more (the guest's own run-queue wait).
        let gaps = zip(ticks, ticks.dropFirst()).map { ($0, $1) }
        let widest = try #require(gaps.max { ($0.1.wall - $0.0.wall) < ($1.1.wall - $1.0.wall) })
        #expect(widest.1.wall - widest.0.wall >= to - from - 0.1, "the pause shows as a gap in the ticks' wall clock")
        let added = widest.1.steal - widest.0.steal
        #expect(added >= (to - from) - 0.1 && added <= (to - from) + 1.0, "steal across the pause: +\(added) s for a \(to - from) s pause")
        for t in ticks { #expect(t.wall >= start - 0.5 && t.wall <= end + 0.5, "tick \(t.number): wall \(t.wall), run \(start)–\(end)") }
    }

    @Test("a save that cannot write its file fails with the reason; the guest runs on, or stays paused if it was")
    func failedSaveLeavesTheGuestAsItWas() throws {
        let elf = try ProbeRun.assemble("ticker")
        defer { try? FileManager.default.removeItem(atPath: elf) }
        let socket = ControlSocketTests.socketPath("hvm-save-fail")
        let replies = Locked<[String]>([])
        let r = try Xeno.run(["run", "--hvm", "--kernel", elf, "--memory", "64M", "--control", socket], timeout: 120, hostSteps: [
            (after: "TICK 0004", run: { _ in
                func ask(_ line: String) -> String { ControlSocketTests.request(socket, line) }
                replies.set([ask("save /nonexistent-dir/guest.save"), ask("info"),
                             ask("pause"), ask("save /nonexistent-dir/guest.save"), ask("info"), ask("unpause")])
            }),
        ])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let got = replies.get()
        #expect(got.count == 6, "replies: \(got)")
        if got.count == 6 {
            #expect(got[0].hasPrefix("error save: ") && got[0].contains("nonexistent-dir"), "save: \(got[0])")
            #expect(got[1].contains("state=running"), "info after the failed save: \(got[1])")
            #expect(got[3].hasPrefix("error save: "), "save while paused: \(got[3])")
            #expect(got[4].contains("state=paused"), "info after the failed save of a paused guest: \(got[4])")
            #expect(got[5] == "ok state=running")
        }
        #expect(Self.ticks(r.stdout).map(\.number) == Array(1...0x40), "ticks: \(Self.ticks(r.stdout).map(\.number))")
    }

    @Test("restore refuses a file that is not an image, a truncated image, and one whose devices differ from the run's")
    func badImagesAreRefused() throws {
        let elf = try ProbeRun.assemble("ticker")
        defer { try? FileManager.default.removeItem(atPath: elf) }
        let socket = ControlSocketTests.socketPath("hvm-save-bad")
        let image = NSTemporaryDirectory() + "xeno-hvm-save-bad-\(getpid()).img"
        defer { try? FileManager.default.removeItem(atPath: image) }
        let first = try Xeno.run(["run", "--hvm", "--kernel", elf, "--memory", "64M", "--control", socket], timeout: 120, hostSteps: [
            (after: "TICK 0004", run: { _ in _ = ControlSocketTests.request(socket, "save \(image)") }),
        ])
        #expect(first.status == 0, "stderr: \(first.stderr)")
        let whole = try Data(contentsOf: URL(fileURLWithPath: image))

        // A disk the saved machine did not have: another PCI function.
        let disk = NSTemporaryDirectory() + "xeno-hvm-save-disk-\(getpid()).img"
        defer { try? FileManager.default.removeItem(atPath: disk) }
        FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        let extraDisk = try Xeno.run(["run", "--restore", image, "--disk", disk], timeout: 60)
        #expect(extraDisk.status != 0)
        #expect(extraDisk.stderr.contains("are not this machine's"), "stderr: \(extraDisk.stderr)")

        for (what, bytes) in [("truncated", whole.prefix(whole.count / 2)), ("header only", whole.prefix(40))] {
            try Data(bytes).write(to: URL(fileURLWithPath: image))
            let r = try Xeno.run(["run", "--restore", image], timeout: 60)
            #expect(r.status != 0, "\(what)")
            #expect(r.stderr.contains("--restore:") && r.stderr.split(separator: "\n").count <= 2, "\(what): \(r.stderr)")
        }
        // A PV-looking file given to --hvm is refused the same way.
        try Data("not an image at all".utf8).write(to: URL(fileURLWithPath: image))
        let junk = try Xeno.run(["run", "--restore", image], timeout: 60)
        #expect(junk.status != 0 && junk.stderr.contains("--restore:"), "stderr: \(junk.stderr)")
    }
}
