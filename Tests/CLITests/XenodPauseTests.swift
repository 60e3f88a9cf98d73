import Foundation
import Testing

/// `xeno pause` / `xeno unpause` on a daemon-managed PV domain, seen from
/// inside the guest: a ticker in the guest writes one line per step to the
/// console with its count, its own `date +%s` and its /proc/stat steal.
extension XenodTests {
    /// `tick N SECONDS STEAL` lines on the domain's console, in order.
    func ticks(_ name: String) -> [(n: Int, seconds: Int, steal: Int)] {
        // Console lines end in "\r\n" (the guest's tty adds the "\r").
        console(name).split(whereSeparator: \.isNewline).compactMap { line in
            let w = line.split(whereSeparator: \.isWhitespace)
            guard w.count == 4, w[0] == "tick", let n = Int(w[1]), let s = Int(w[2]), let st = Int(w[3]) else { return nil }
            return (n, s, st)
        }
    }

    /// The guest clock's offset from the host's: the `date +%s` of tick
    /// `n + 1` less the host time it was seen at (polled every 100 ms).
    func offsetOfTick(_ name: String, after n: Int) -> (tick: (n: Int, seconds: Int, steal: Int), offset: Double)? {
        var found: (n: Int, seconds: Int, steal: Int)?
        var seenAt = Date()
        _ = waitFor("the ticker's line after \(n)", timeout: 30) {
            found = ticks(name).first { $0.n == n + 1 }
            seenAt = Date()
            return found != nil
        }
        return found.map { ($0, Double($0.seconds) - seenAt.timeIntervalSince1970) }
    }

    /// A shell loop for the guest, in a session of its own (so it outlives
    /// the exec that starts it): `tick N SECONDS STEAL` on the console about
    /// five times a second, with its count, `date +%s` and /proc/stat's steal.
    static let ticker = "i=0; while :; do i=$((i+1)); read -r c u n s d w q sq st rest < /proc/stat; "
        + "echo \"tick $i $(date +%s) $st\" > /dev/hvc0; sleep 0.2; done"

    /// How far the guest's wall clock is from the host's: the guest prints
    /// its clock (busybox `adjtimex`, to the microsecond) on the console 15
    /// times, 0.1 s apart, and the host notes when each line appears (the
    /// console file polled every 5 ms). A line cannot appear before the
    /// guest read its clock, so each reading less the host's time of
    /// arrival is at most the true offset, and the line that came soonest
    /// gives the best such bound.
    func clockOffset(_ name: String, _ tag: String) throws -> Double? {
        let burst = "for i in $(seq 15); do set -- $(adjtimex | grep tv_); echo CLOCK-\(tag) $2 $4 > /dev/hvc0; sleep 0.1; done"
        let start = try Xeno.run(["exec", "--control", directory + "/run/\(name).ctl", "--",
                                  "setsid sh -c '\(burst)' </dev/null >/dev/null 2>&1 & echo started"], timeout: 60)
        guard start.status == 0 else { Issue.record("exec: \(start.status) \(start.stderr)"); return nil }
        var arrived: [String: Double] = [:]
        var best: Double?
        let deadline = Date().addingTimeInterval(20)
        while arrived.count < 15 && Date() < deadline {
            let now = Date().timeIntervalSince1970
            for line in console(name).split(whereSeparator: \.isNewline) where line.hasPrefix("CLOCK-\(tag) ") {
                let key = String(line)
                guard arrived[key] == nil else { continue }
                arrived[key] = now
                let w = line.split(separator: " ")
                guard w.count == 3, let sec = Double(w[1]), let usec = Double(w[2]) else { continue }
                let bound = sec + usec / 1e6 - now
                best = max(best ?? bound, bound)
            }
            usleep(5_000)
        }
        return best
    }

    /// The guest's clock is the host's within 0.3 s. (Before the VMM made
    /// good the timer events a booting guest gets late, its clock ran 0.6 s
    /// behind after a quiet boot, 4.4 s after one under the CI's load.)
    func expectClockRight(_ name: String, _ when: String) throws {
        guard let offset = try clockOffset(name, String(when.filter(\.isLetter))) else {
            Issue.record("\(when): no clock lines from the guest"); return
        }
        print("\(name) \(when): guest clock minus host clock at least \(String(format: "%.3f", offset)) s")
        #expect(offset >= -0.3 && offset <= 0.3, "\(when): guest clock minus host clock \(offset) s")
    }

    /// User plus system CPU time of a process, in clock ticks (all its threads).
    /// CPU time (USER_HZ ticks) of the VMM's vCPU threads ("vcpu N"): the
    /// guest's own. The VMM's other threads (control socket, xenstore,
    /// backends) answer xenod's polls while the guest is paused.
    static func cpuTicks(_ pid: Int) -> Int? {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return nil }
        var total = 0
        var vcpus = 0
        for task in tasks {
            guard let comm = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8),
                  comm.hasPrefix("vcpu "),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let f = stat[stat.index(after: close)...].split(separator: " ")
            guard f.count > 13, let u = Int(f[11]), let s = Int(f[12]) else { return nil }
            total += u + s
            vcpus += 1
        }
        return vcpus > 0 ? total : nil
    }

    @Test("pause stops the guest (no count, no host CPU), unpause resumes it with its clock right and the pause shown as steal")
    func pauseAndUnpause() throws {
        #expect(try xeno(["create", try config("pz")]).status == 0)
        guard try waitFor("the guest's readiness line", { console("pz").contains("XENOLITH-READY") }) else { return }
        let answer = try #require(Self.rawRequest(socket: socket, "GET /v1/domains/pz"))
        let body = try #require(answer.range(of: "\r\n\r\n").map { String(answer[$0.upperBound...]) })
        let pid = try #require((try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["pid"] as? Int)

        let start = try Xeno.run(["exec", "--control", directory + "/run/pz.ctl", "--",
                                  "setsid sh -c '\(Self.ticker)' </dev/null >/dev/null 2>&1 & echo started"], timeout: 120)
        #expect(start.status == 0 && start.stdout == "started\n", "exec: \(start.status) \(start.stdout) \(start.stderr)")
        guard waitFor("the ticker's lines", timeout: 60, { ticks("pz").count >= 3 }) else { return }
        let latest = try #require(ticks("pz").last)
        let before = try #require(offsetOfTick("pz", after: latest.n))
        try expectClockRight("pz", "after boot")

        let paused = try xeno(["pause", "pz"])
        #expect(paused.status == 0, "stderr: \(paused.stderr)")
        let pausedAt = Date()
        #expect(try row("pz")?[4] == "paused")
        #expect(try xeno(["pause", "pz"]).status == 0, "pausing a paused domain is no error")
        usleep(300_000)       // a line the guest wrote just before reaches the file
        let lastBefore = try #require(ticks("pz").last)
        let cpuBefore = try #require(Self.cpuTicks(pid), "the VMM's vCPU threads in /proc/\(pid)/task")
        let pauseSeconds = 5.0
        usleep(useconds_t((pauseSeconds - Date().timeIntervalSince(pausedAt)) * 1e6))
        let cpuAfter = try #require(Self.cpuTicks(pid), "the VMM's vCPU threads in /proc/\(pid)/task")
        #expect(ticks("pz").last?.n == lastBefore.n, "the guest counted while paused")
        #expect(cpuAfter - cpuBefore <= 2, "the paused guest's vCPU threads used \(cpuAfter - cpuBefore) ticks of CPU")

        #expect(try xeno(["unpause", "pz"]).status == 0)
        let unpausedAt = Date()
        let paused_s = unpausedAt.timeIntervalSince(pausedAt)
        #expect(try row("pz")?[4] == "running")
        // The next line, seen as soon as it comes: its count follows on, and
        // the guest's clock is as far from the host's as before the pause
        // (a guest clock that stopped while paused would be 5 s further;
        // `date +%s` whole seconds make each reading up to 1 s short).
        let (first, offset) = try #require(offsetOfTick("pz", after: lastBefore.n))
        #expect(abs(offset - before.offset) <= 1.5,
                "guest clock minus host clock: \(before.offset) s before the pause, \(offset) s after")
        try expectClockRight("pz", "after unpause")
        // Steal (USER_HZ ticks) grows by about the paused time within the
        // first lines after it: more than the time the guest ran in between
        // could give by itself, no more than the time that passed.
        var stealSeen = 0
        _ = waitFor("the pause in the guest's steal", timeout: 30) {
            let after = ticks("pz").filter { $0.n > lastBefore.n && $0.seconds <= first.seconds + 2 }
            stealSeen = (after.map(\.steal).max() ?? lastBefore.steal) - lastBefore.steal
            return stealSeen >= Int(paused_s * 90) || (after.last?.seconds ?? 0) >= first.seconds + 2
        }
        #expect(stealSeen >= Int(paused_s * 90), "steal grew by \(stealSeen) ticks over a \(paused_s) s pause")
        let span = (ticks("pz").last?.seconds ?? 0) - lastBefore.seconds + 1
        #expect(stealSeen <= span * 100, "steal grew by \(stealSeen) ticks in \(span) s")

        let unknown = try xeno(["pause", "nosuch"])
        #expect(unknown.status == 1 && unknown.stderr.contains("no domain named 'nosuch'"), "stderr: \(unknown.stderr)")
        #expect(try xeno(["destroy", "pz"]).status == 0)
    }
}
