import Foundation
import Testing

/// The cpu cgroup controller this host offers (v1 here; v2 where unified).
let cgroupCPUAvailable = access("/sys/fs/cgroup/cpu/cpu.shares", F_OK) == 0
    || ((try? String(contentsOfFile: "/sys/fs/cgroup/cgroup.controllers", encoding: .utf8))?.contains("cpu") ?? false)

/// A domain's cgroup files as the host's cpu controller shows them.
struct DomainCgroup {
    let group: String
    let name: String
    var isV1: Bool { access("/sys/fs/cgroup/cpu/cpu.shares", F_OK) == 0 }
    var cpuDirectory: String { isV1 ? "/sys/fs/cgroup/cpu/\(group)/\(name)" : "/sys/fs/cgroup/\(group)/\(name)" }
    var exists: Bool { access(cpuDirectory, F_OK) == 0 }

    func read(_ file: String) -> String {
        ((try? String(contentsOfFile: cpuDirectory + "/" + file, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// CPU time the host charged the group, in seconds.
    var usageSeconds: Double {
        if isV1 {
            let text = (try? String(contentsOfFile: "/sys/fs/cgroup/cpuacct/\(group)/\(name)/cpuacct.usage", encoding: .utf8)) ?? ""
            return Double(text.trimmingCharacters(in: .whitespacesAndNewlines)).map { $0 / 1e9 } ?? .nan
        }
        return statField("usage_usec").map { $0 / 1e6 } ?? .nan
    }

    /// Periods in which the cap held the group back.
    var throttledPeriods: Double { statField("nr_throttled") ?? .nan }

    private func statField(_ key: String) -> Double? {
        for line in read("cpu.stat").split(separator: "\n") where line.hasPrefix(key + " ") {
            return Double(line.dropFirst(key.count + 1))
        }
        return nil
    }

    var processes: [pid_t] { read("cgroup.procs").split(separator: "\n").compactMap { pid_t($0) } }
}

/// The busy guest: a busy loop in user space, and five times a second a
/// line with the guest's own /proc/stat cpu line and uptime. Only shell
/// builtins run once the loop does (a read that times out on an empty
/// FIFO is the wait): a fork and exec per line would take a guest given a
/// small share of a CPU seconds, and space its lines out. Lines come
/// often because a guest's running time between two of them is
/// interpolated: on a host whose other load comes and goes, the rate a
/// guest runs at changes within a second, and a sparse line put the
/// error of that interpolation at 15 % (a CI run under full load).
/// Written tight: the kernel hands init at most 32 words of its command line.
let busyCommand = "sh -c 'while :;do :;done'&mkfifo /tmp/t;exec 3<>/tmp/t;while :;do read -r l</proc/stat;read -r u</proc/uptime;echo STAT $l UP $u;read -t .2 x<&3;done"

/// One of those lines, and the host's accounting read when it appeared.
struct GuestSample {
    let hostUsage: Double
    let hostTime: Double
    /// user nice system idle iowait irq softirq steal, in USER_HZ ticks.
    let fields: [Double]
    let uptime: Double

    /// Seconds the guest says it ran (not idle, not stolen) since `earlier`,
    /// by its clock: its uptime less the idle and steal it counted.
    func guestRunning(since e: GuestSample) -> Double {
        (uptime - e.uptime) - (fields[3] - e.fields[3]) / 100 - (fields[4] - e.fields[4]) / 100 - (fields[7] - e.fields[7]) / 100
    }
    func steal(since e: GuestSample) -> Double { (fields[7] - e.fields[7]) / 100 }

    /// The guest's running time since it booted, by its own count.
    var running: Double { uptime - (fields[3] + fields[4] + fields[7]) / 100 }
}

/// A guest's running time at host time `t`, between the samples around it.
func guestRunning(_ samples: [GuestSample], at t: Double) -> Double? {
    guard let after = samples.firstIndex(where: { $0.hostTime >= t }), after > 0 else {
        return samples.first { $0.hostTime == t }?.running
    }
    let a = samples[after - 1], b = samples[after]
    return a.running + (b.running - a.running) * (t - a.hostTime) / (b.hostTime - a.hostTime)
}

func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// Watches domains' consoles for sample lines for at least `seconds` and
/// until every domain has printed `lines` (at most a minute: a guest given
/// little CPU prints them slowly), reading the domains' cgroup usage every
/// 10 ms meanwhile. A line reaches the host some time after the guest read
/// its figures (the guest may be held back in between, and so may this
/// process), so the host's usage for a sample is taken at the moment the
/// guest read them: the guest's uptime is the host's monotonic clock less
/// a constant, estimated from the line that arrived soonest.
func sampleGuests(_ host: XenodInstance, _ names: [String], seconds: Double, lines wanted: Int = 3) -> (start: [String: Double], end: [String: Double],
                                                                                   wall: Double, samples: [String: [GuestSample]]) {
    func lines(_ name: String) -> [Substring] {
        host.console(name).split(whereSeparator: \.isNewline).filter { $0.hasPrefix("STAT cpu ") }
    }
    var seen = Dictionary(uniqueKeysWithValues: names.map { ($0, lines($0).count) })
    var raw = Dictionary(uniqueKeysWithValues: names.map { ($0, [(arrived: Double, fields: [Double], uptime: Double)]()) })
    var timeline = Dictionary(uniqueKeysWithValues: names.map { ($0, [(t: Double, usage: Double)]()) })
    let groups = Dictionary(uniqueKeysWithValues: names.map { ($0, DomainCgroup(group: host.cgroupGroup, name: $0)) })
    let t0 = monotonicSeconds()
    let start = groups.mapValues(\.usageSeconds)
    while monotonicSeconds() - t0 < seconds || (raw.values.contains { $0.count < wanted } && monotonicSeconds() - t0 < 60) {
        for name in names {
            let usage = groups[name]!.usageSeconds
            timeline[name]!.append((monotonicSeconds(), usage))
            let l = lines(name)
            guard l.count > seen[name]! else { continue }
            seen[name] = l.count
            let words = l.last!.split(separator: " ")
            // STAT cpu u n s i w irq sirq steal g gn UP uptime idle
            guard words.count >= 14, let up = Double(words[13]) else { continue }
            raw[name]!.append((monotonicSeconds(), words[2..<12].compactMap { Double($0) }, up))
        }
        usleep(10_000)
    }
    let end = groups.mapValues(\.usageSeconds)
    var samples: [String: [GuestSample]] = [:]
    for name in names {
        let offset = raw[name]!.map { $0.arrived - $0.uptime }.min() ?? 0
        let line = timeline[name]!
        samples[name] = raw[name]!.compactMap { r in
            let t = r.uptime + offset
            // The usage at t, between the timeline's points around it.
            guard let after = line.firstIndex(where: { $0.t >= t }) else { return nil }
            let b = line[after], a = after > 0 ? line[after - 1] : b
            let usage = b.t > a.t ? a.usage + (b.usage - a.usage) * (t - a.t) / (b.t - a.t) : b.usage
            return GuestSample(hostUsage: usage, hostTime: t, fields: r.fields, uptime: r.uptime)
        }
    }
    return (start, end, monotonicSeconds() - t0, samples)
}

@Suite("credit scheduler: weight, cap and cpus through the host's cpu cgroups", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"),
       .enabled(if: isRoot, "needs root (creates cgroups)"),
       .enabled(if: cgroupCPUAvailable, "needs the cpu cgroup controller"))
final class CreditSchedulerTests {
    let host: XenodInstance

    init() throws { host = try XenodInstance("sched") }
    deinit { host.tearDown() }

    /// Waits until `name` has printed two sample lines (its busy loop runs).
    func waitBusy(_ name: String) -> Bool {
        poll("\(name)'s busy loop and sample lines", timeout: 180) {
            host.console(name).split(whereSeparator: \.isNewline).filter { $0.hasPrefix("STAT cpu ") }.count >= 2
        }
    }

    /// Both domains pinned to one host CPU with xl's `cpus` (the
    /// cpuset of their cgroups), as an operator pins guests to share a
    /// core: there the weights decide. They are compared with each other,
    /// so load from outside on that CPU slows both alike.
    @Test("weights 256 and 512 on one host CPU: CPU time 1:2 within 10 %, by the host's cgroups and inside the guests")
    func weightsShareOneCPU() throws {
        let hostCPU = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) - 1
        for (name, weight) in [("light", 256), ("heavy", 512)] {
            let r = try host.xeno(["create", try host.config(name, extra: "cpu_weight = \(weight)\ncpus = \"\(hostCPU)\"",
                                                             command: busyCommand)])
            #expect(r.status == 0, "create \(name): \(r.stderr)")
        }
        guard waitBusy("light"), waitBusy("heavy") else { return }
        let list = try host.xeno(["vcpu-list"])
        let rows = list.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
        #expect(rows.count == 2 && rows.allSatisfy { $0.last == String(hostCPU) && $0[3] == String(hostCPU) },
                "both vCPUs run on host CPU \(hostCPU) only: \(list.stdout)")

        let m = sampleGuests(host, ["light", "heavy"], seconds: 12)
        let light = m.end["light"]! - m.start["light"]!, heavy = m.end["heavy"]! - m.start["heavy"]!
        let ratio = heavy / light
        print("weights 256:512 on CPU \(hostCPU) over \(String(format: "%.2f", m.wall)) s: host light \(String(format: "%.3f", light)) s, heavy \(String(format: "%.3f", heavy)) s, ratio \(String(format: "%.3f", ratio))")
        #expect(ratio >= 1.8 && ratio <= 2.2, "host cgroup CPU time heavy/light = \(ratio) (light \(light) s, heavy \(heavy) s)")

        // Inside: each guest's running time by its own count, over the
        // same stretch of host time (its samples interpolated).
        let l = m.samples["light"]!, h = m.samples["heavy"]!
        guard l.count >= 3, h.count >= 3 else {
            Issue.record("sample lines in the window: light \(l.count), heavy \(h.count)"); return
        }
        let from = max(l.first!.hostTime, h.first!.hostTime), to = min(l.last!.hostTime, h.last!.hostTime)
        guard to - from >= 2, let l0 = guestRunning(l, at: from), let l1 = guestRunning(l, at: to),
              let h0 = guestRunning(h, at: from), let h1 = guestRunning(h, at: to) else {
            Issue.record("the guests' sample lines share less than 2 s"); return
        }
        let guestRatio = (h1 - h0) / (l1 - l0)
        for (n, x) in [("light", l), ("heavy", h)] {
            // Each guest's own count against what the host charged it,
            // between its first and last lines: tells a wrong runstate
            // from an interpolation error when the ratio is off.
            print("\(n): guest ran \(String(format: "%.3f", x.last!.guestRunning(since: x.first!))) s, host charged \(String(format: "%.3f", x.last!.hostUsage - x.first!.hostUsage)) s, \(x.count) lines in \(String(format: "%.2f", x.last!.uptime - x.first!.uptime)) s")
        }
        print("inside, over the same \(String(format: "%.2f", to - from)) s: light ran \(String(format: "%.3f", l1 - l0)) s, heavy \(String(format: "%.3f", h1 - h0)) s, ratio \(String(format: "%.3f", guestRatio))")
        #expect(guestRatio >= 1.8 && guestRatio <= 2.2, "guest-reported running heavy/light = \(guestRatio)")
    }

    @Test("cap 50 holds a busy domain at or below 55 % of a CPU; the guest's running time (less steal) matches the host's accounting within 10 %")
    func capAndRunstate() throws {
        let r = try host.xeno(["create", try host.config("capped", extra: "cap = 50", command: busyCommand)])
        #expect(r.status == 0, "create: \(r.stderr)")
        guard waitBusy("capped") else { return }
        let group = DomainCgroup(group: host.cgroupGroup, name: "capped")
        let throttledBefore = group.throttledPeriods
        expectCapHeldAndAccounted("capped")
        #expect(group.throttledPeriods > throttledBefore, "the cap held it back (nr_throttled rose)")

        // Changed at run time, as xl does.
        let set = try host.xeno(["sched-credit", "-d", "capped", "-w", "1024", "-c", "0"])
        #expect(set.status == 0, "sched-credit: \(set.stderr)")
        if group.isV1 {
            #expect(group.read("cpu.shares") == "4096" && group.read("cpu.cfs_quota_us") == "-1",
                    "shares \(group.read("cpu.shares")), quota \(group.read("cpu.cfs_quota_us"))")
        } else {
            #expect(group.read("cpu.max").hasPrefix("max"), "cpu.max \(group.read("cpu.max"))")
        }
        let listed = try host.xeno(["sched-credit"])
        #expect(listed.stdout.split(separator: "\n").first.map { $0.hasPrefix("Name") && $0.hasSuffix("Weight  Cap") } == true,
                "xl's header: \(listed.stdout)")
        let row = listed.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }.first { $0.first == "capped" }
        #expect(row.map { Array($0.suffix(2)) } == ["1024", "0"], "sched-credit: \(listed.stdout)")
    }

    /// The same for an HVM guest, whose steal is KVM's steal time: on
    /// hardware-assisted KVM only (run `swift test --filter CreditSchedulerTests`
    /// there, kit built).
    @Test("HVM: cap 50 holds a busy domain at or below 55 % of a CPU; the guest's running time (less steal) matches the host's within 10 %",
          .disabled(if: kvmIsSoftwareNested, "needs hardware-assisted KVM: this KVM (kvm_pvm) cannot run HVM guest user space"))
    func capAndStealHVM() throws {
        let r = try host.xeno(["create", try host.config("hcapped", extra: "cap = 50", command: busyCommand, hvm: true)])
        #expect(r.status == 0, "create: \(r.stderr)")
        guard waitBusy("hcapped") else { return }
        expectCapHeldAndAccounted("hcapped")
    }

    /// A busy domain with cap 50, sampled for 12 s: it used at most 55 % of
    /// a CPU by the host's cgroup, its own running time (its /proc/stat less
    /// steal) is the host's within 10 %, and it saw the cap as steal.
    func expectCapHeldAndAccounted(_ name: String) {
        let m = sampleGuests(host, [name], seconds: 12)
        let used = (m.end[name]! - m.start[name]!) / m.wall
        print("\(name), cap 50: \(String(format: "%.1f", used * 100)) % of a CPU over \(String(format: "%.2f", m.wall)) s")
        #expect(used <= 0.55, "the capped domain \(name) used \(used * 100) % of a CPU")
        let s = m.samples[name]!
        guard s.count >= 3, let first = s.first, let last = s.last else {
            Issue.record("the guest printed \(s.count) sample lines in the window"); return
        }
        let guestRan = last.guestRunning(since: first), hostRan = last.hostUsage - first.hostUsage
        let steal = last.steal(since: first), wall = last.uptime - first.uptime
        print("\(name): guest ran \(String(format: "%.3f", guestRan)) s (steal \(String(format: "%.3f", steal)) s of \(String(format: "%.3f", wall)) s), host charged \(String(format: "%.3f", hostRan)) s")
        #expect(abs(guestRan - hostRan) <= 0.1 * hostRan, "guest running \(guestRan) s against the host's \(hostRan) s")
        #expect(steal >= 0.3 * wall, "the guest saw the cap as steal: \(steal) s of \(wall) s")
    }

    @Test("bad weights, caps and names are refused with a clear message and change nothing")
    func badInput() throws {
        let r = try host.xeno(["create", try host.config("steady", extra: "cpu_weight = 300\ncap = 40")])
        #expect(r.status == 0, "create: \(r.stderr)")
        let group = DomainCgroup(group: host.cgroupGroup, name: "steady")
        let before = group.isV1 ? [group.read("cpu.shares"), group.read("cpu.cfs_quota_us")] : [group.read("cpu.weight"), group.read("cpu.max")]
        for (args, words) in [(["-d", "steady", "-w", "0"], "outside 1–65535"),
                              (["-d", "steady", "-w", "65536"], "outside 1–65535"),
                              (["-d", "steady", "-c", "-1"], "negative"),
                              (["-d", "steady", "-c", "101"], "above 100 × maxvcpus"),
                              (["-d", "nosuch", "-w", "300"], "no domain named 'nosuch'"),
                              (["-w", "300"], "need -d NAME"),
                              (["-d", "steady", "-w", "lots"], "not a number")] {
            let refused = try host.xeno(["sched-credit"] + args)
            #expect(refused.status == 1 && refused.stderr.contains(words), "\(args): \(refused.status) \(refused.stderr)")
        }
        let after = group.isV1 ? [group.read("cpu.shares"), group.read("cpu.cfs_quota_us")] : [group.read("cpu.weight"), group.read("cpu.max")]
        #expect(after == before && before == (group.isV1 ? ["1200", "40000"] : before), "cgroup before \(before), after \(after)")
        let row = try host.xeno(["sched-credit", "-d", "steady"]).stdout.split(separator: "\n").last?.split(separator: " ").map(String.init)
        #expect(row.map { Array($0.suffix(2)) } == ["300", "40"], "row: \(String(describing: row))")

        let cfg = try host.config("toomuch", extra: "cap = 150")
        let tooMuch = try host.xeno(["create", cfg])
        #expect(tooMuch.status == 1 && tooMuch.stderr.contains("toomuch.cfg:") && tooMuch.stderr.contains("cap"), "stderr: \(tooMuch.stderr)")
        let cpus = try host.xeno(["create", try host.config("nocpu", extra: "cpus = \"4000\"")])
        #expect(cpus.status == 1 && cpus.stderr.contains("CPU 4000"), "stderr: \(cpus.stderr)")
        #expect(!DomainCgroup(group: host.cgroupGroup, name: "nocpu").exists, "a refused domain leaves no cgroup")
    }

    @Test("a domain's cgroup holds its VMM, survives a xenod restart, and goes when the domain goes (also when its VMM dies)")
    func cgroupLifecycle() throws {
        #expect(try host.xeno(["create", try host.config("life")]).status == 0)
        let group = DomainCgroup(group: host.cgroupGroup, name: "life")
        let pid = try #require(host.vmmPID("life"))
        #expect(group.processes == [pid], "cgroup.procs \(group.processes), VMM \(pid)")
        // Every thread, including those started after it moved.
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        let tasks = Set(group.read("tasks").split(separator: "\n").map(String.init))
        #expect(!threads.isEmpty && threads.allSatisfy { tasks.contains($0) }, "threads \(threads), tasks \(tasks)")
        let metrics = XenodTests.rawRequest(socket: host.socket, "GET /metrics") ?? ""
        #expect(metrics.contains("xenolith_domain_weight{domain=\"life\"") && metrics.contains("xenolith_domain_cap_percent{domain=\"life\"")
                && metrics.contains("xenolith_domain_cgroup_cpu_seconds_total{domain=\"life\""), "metrics: \(metrics.suffix(600))")

        // A stale group (its domain ended while xenod was down) is removed on restart.
        host.kill9()
        let stale = DomainCgroup(group: host.cgroupGroup, name: "ghost")
        mkdir(stale.cpuDirectory, 0o755)
        try host.start()
        #expect(group.processes == [pid], "re-adopted, still in its cgroup")
        #expect(!stale.exists, "xenod removed the cgroup of a domain it no longer has")
        let row = try host.xeno(["sched-credit", "-d", "life"])
        #expect(row.status == 0 && row.stdout.contains("256"), "sched-credit after the restart: \(row.stdout) \(row.stderr)")

        // The VMM dies on its own: the domain and its cgroup go.
        kill(pid, SIGKILL)
        poll("the domain and its cgroup to go", timeout: 30) { (try? host.row("life")) == nil && !group.exists }

        #expect(try host.xeno(["create", try host.config("life")]).status == 0)
        #expect(group.exists)
        #expect(try host.xeno(["destroy", "life"]).status == 0)
        #expect(!group.exists, "destroy removed the cgroup")
    }
}
