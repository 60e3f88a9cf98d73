import Foundation
import Testing

/// `pause` / `unpause` on the control socket of an HVM guest: a guest
/// program of our own (Tests/guests/hvm/counter.S) counts on COM1 with a
/// busy loop between lines, so a vCPU that runs shows in its output and in
/// its thread's CPU time.
@Suite("pause and unpause of HVM guests", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"))
struct HVMPauseTests {
    /// COUNT lines so far in the output file of xeno `pid` (its stdout).
    static func counts(_ pid: pid_t) -> [Int] {
        guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/1"),
              let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            line.hasPrefix("COUNT ") ? Int(line.dropFirst(6), radix: 16) : nil
        }
    }

    @Test("paused: no count and no CPU on the vCPU thread, which sleeps outside KVM_RUN; unpaused: the count goes on",
          .enabled(if: binutilsPresent, "needs binutils (as, ld): run scripts/setup.sh"))
    func pauseStopsTheVCPU() throws {
        let elf = try ProbeRun.assemble("counter")
        defer { try? FileManager.default.removeItem(atPath: elf) }
        let socket = ControlSocketTests.socketPath("hvm-pause")
        let seen = Locked<[String: String]>([:])
        func record(_ key: String, _ value: String) { seen.set(seen.get().merging([key: value]) { $1 }) }
        func request(_ line: String) -> String { ControlSocketTests.request(socket, line) }

        let r = try Xeno.run(["run", "--hvm", "--kernel", elf, "--control", socket], timeout: 300, hostSteps: [
            (after: "COUNT 0008", run: { pid in
                record("pause", request("pause"))
                record("info", request("info"))
                usleep(300_000)
                let countBefore = Self.counts(pid).count
                let before = HVMHotplugTests.vcpuThread(pid, 0)
                sleep(3)
                let after = HVMHotplugTests.vcpuThread(pid, 0)
                record("counts", "\(countBefore) \(Self.counts(pid).count)")
                record("thread", "\(before?.syscall ?? "?") \(before?.ticks ?? -1) \(after?.syscall ?? "?") \(after?.ticks ?? -1)")
                record("unpause", request("unpause"))
            }),
        ])
        let s = seen.get()
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(s["pause"] == "ok state=paused")
        #expect(s["info"]?.contains("state=paused") == true, "info: \(s["info"] ?? "none")")
        #expect(s["unpause"] == "ok state=running")
        let counts = (s["counts"] ?? "").split(separator: " ")
        #expect(counts.count == 2 && counts[0] == counts[1], "COUNT lines before and after 3 s paused: \(s["counts"] ?? "none")")
        // 128: rt_sigtimedwait (the gate), not 16 (ioctl: KVM_RUN); no CPU.
        let t = (s["thread"] ?? "").split(separator: " ").map(String.init)
        #expect(t.count == 4 && t[0] == "128" && t[2] == "128" && t[1] == t[3], "vCPU thread (syscall ticks, twice): \(s["thread"] ?? "none")")
        // Every count once, in order, to the last: nothing lost or repeated.
        let all = r.stdout.split(separator: "\n").compactMap { $0.hasPrefix("COUNT ") ? Int($0.dropFirst(6), radix: 16) : nil }
        #expect(all == Array(1...0x40), "counts: \(all)")
    }
}
