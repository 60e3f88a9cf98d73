import Foundation
import Testing

/// xl's remaining simple verbs through xenod, each as a user runs it.
@Suite("xl's host verbs: info, uptime, vcpu-list, mem-max, console, reboot, shutdown", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"),
       .enabled(if: isRoot, "needs root (creates cgroups and TAP devices)"))
final class HostVerbTests {
    let host: XenodInstance

    init() throws { host = try XenodInstance("verbs") }
    deinit { host.tearDown() }

    func createReady(_ name: String, extra: String = "") throws -> Bool {
        let r = try host.xeno(["create", try host.config(name, memory: 256, extra: extra)])
        #expect(r.status == 0, "create \(name): \(r.stderr)")
        return r.status == 0 && poll("\(name)'s readiness line", timeout: 180) { host.console(name).contains("XENOLITH-READY") }
    }

    @Test("info shows the host's CPUs, memory and versions; uptime and vcpu-list show the domain as xl does")
    func infoUptimeVCPUList() throws {
        let info = try host.xeno(["info"])
        #expect(info.status == 0, "info: \(info.stderr)")
        var facts: [String: String] = [:]
        for line in info.stdout.split(separator: "\n") {
            let kv = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if kv.count == 2 { facts[kv[0]] = kv[1] }
        }
        #expect(facts["nr_cpus"] == String(sysconf(Int32(_SC_NPROCESSORS_ONLN))), "info: \(info.stdout)")
        let memTotal = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8).split(separator: "\n")
            .first { $0.hasPrefix("MemTotal:") }.flatMap { $0.split(separator: " ").dropFirst().first.flatMap { Int($0) } } ?? 0
        #expect(facts["total_memory"] == String(memTotal >> 10), "info: \(info.stdout)")
        #expect(Int(facts["free_memory"] ?? "") ?? -1 > 0 && (Int(facts["free_memory"] ?? "") ?? 0) <= memTotal >> 10)
        #expect(facts["xen_version"]?.hasPrefix("4.17") == true && facts["release"] != nil && facts["xenolith_version"] != nil)

        guard try createReady("up", extra: "maxvcpus = 2") else { return }
        let uptime = try host.xeno(["uptime"])
        let row = uptime.stdout.split(separator: "\n").first { $0.hasPrefix("up ") }.map { $0.split(separator: " ").map(String.init) }
        #expect(uptime.stdout.hasPrefix("Name") && row?.count == 3, "uptime: \(uptime.stdout)")
        let clock = row?.last?.split(separator: ":").compactMap { Int($0) } ?? []
        #expect(clock.count == 3 && clock[0] * 3600 + clock[1] * 60 + clock[2] >= 1, "uptime: \(uptime.stdout)")

        let list = try host.xeno(["vcpu-list", "up"])
        let rows = list.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
        #expect(list.stdout.hasPrefix("Name") && rows.count == 2, "vcpu-list: \(list.stdout)")
        guard rows.count == 2 else { return }
        // vCPU 0 ran on a host CPU of ours, for some time; vCPU 1 is offline.
        let cpu = Int(rows[0][3]) ?? -1
        #expect(rows[0][2] == "0" && cpu >= 0 && cpu < Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), "vcpu 0: \(rows[0])")
        #expect(["r--", "-b-"].contains(rows[0][4]) && (Double(rows[0][5]) ?? 0) > 0, "vcpu 0: \(rows[0])")
        #expect(rows[1][2] == "1" && rows[1][3] == "-" && rows[1][4] == "--p", "vcpu 1: \(rows[1])")
        #expect(try host.xeno(["vcpu-set", "up", "2"]).status == 0)
        // The guest onlines it itself (the kit has no udev): then it runs.
        _ = try Xeno.run(["exec", "--control", host.controlPath("up"), "--", "echo 1 > /sys/devices/system/cpu/cpu1/online"])
        poll("vCPU 1 to be listed online", timeout: 60) {
            let r = (try? host.xeno(["vcpu-list", "up"]))?.stdout ?? ""
            return r.split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
                .contains { $0.count > 4 && $0[2] == "1" && $0[4] != "--p" && $0[3] != "-" }
        }
        let none = try host.xeno(["vcpu-list", "nosuch"])
        #expect(none.status == 1 && none.stderr.contains("no domain named 'nosuch'"))
    }

    @Test("mem-max lowers the most a domain may have (the guest's memory follows); above the boot size is refused")
    func memMax() throws {
        guard try createReady("mm") else { return }
        let above = try host.xeno(["mem-max", "mm", "512M"])
        #expect(above.status == 1 && above.stderr.contains("boot size"), "stderr: \(above.stderr)")
        let bad = try host.xeno(["mem-max", "mm", "lots"])
        #expect(bad.status == 1 && bad.stderr.contains("not a size"), "stderr: \(bad.stderr)")
        #expect(try host.row("mm")?[2] == "256", "refusals changed nothing")

        let set = try host.xeno(["mem-max", "mm", "200M"])
        #expect(set.status == 0, "mem-max: \(set.stderr)")
        #expect(try host.row("mm")?[2] == "200", "the target followed the new maximum")
        let over = try host.xeno(["mem-set", "mm", "220M"])
        #expect(over.status == 1 && over.stderr.contains("mem-max of 200 MiB"), "stderr: \(over.stderr)")
        // Inside the guest: its balloon gave the memory back.
        poll("the guest's MemTotal to fall below 200 MiB", timeout: 60) {
            let r = try? Xeno.run(["exec", "--control", host.controlPath("mm"), "--", "grep MemTotal /proc/meminfo"], timeout: 60)
            let kib = r?.stdout.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? .max
            return kib <= 200 << 10
        }
    }

    @Test("console attaches to the guest's shell: what is typed runs there, its output comes back, Ctrl-] detaches")
    func console() throws {
        guard try createReady("tty") else { return }
        let r = try host.xeno(["console", "tty"], timeout: 120,
                              script: [(after: "", send: "echo $((6*7))-from-the-guest\n"),
                                       (after: "42-from-the-guest", send: "\u{1d}")])
        #expect(r.status == 0 && r.stdout.contains("42-from-the-guest"), "console: \(r.status) \(r.stdout.suffix(300)) \(r.stderr)")
        // Detached, not stopped: the domain still runs and takes a second client.
        #expect(try host.row("tty")?[4] == "running")
        let again = try host.xeno(["console", "tty"], timeout: 120,
                                  script: [(after: "", send: "echo second-$((1+1))\n"), (after: "second-2", send: "\u{1d}")])
        #expect(again.status == 0 && again.stdout.contains("second-2"), "second attach: \(again.stdout.suffix(300))")
        let none = try host.xeno(["console", "nosuch"])
        #expect(none.status == 1 && none.stderr.contains("no domain named 'nosuch'"))
    }

    @Test("reboot and shutdown go through the PV guest's xenstore: it reboots in the same VMM, then powers itself off")
    func rebootAndShutdown() throws {
        guard try createReady("cycle") else { return }
        let pid = host.vmmPID("cycle")
        #expect(try host.xeno(["reboot", "cycle"]).status == 0)
        poll("a second boot", timeout: 180) { host.console("cycle").components(separatedBy: "XENOLITH-READY").count >= 3 }
        #expect(host.console("cycle").contains("reboot: Restarting system"), "the guest rebooted itself")
        #expect(host.vmmPID("cycle") == pid && pid.map { kill($0, 0) == 0 } == true, "the same VMM runs the new boot")

        #expect(try host.xeno(["shutdown", "cycle"]).status == 0)
        poll("the domain to go", timeout: 120) { (try? host.row("cycle")) == nil }
        let console = host.console("cycle")
        #expect(console.contains("reboot: Power down") || console.contains("reboot: System halted"), "console: \(console.suffix(300))")
        #expect(!console.contains("stopped by SIGTERM"), "the guest went down by itself, not by a signal")
        let log = (try? String(contentsOfFile: host.directory + "/xenod.log", encoding: .utf8)) ?? ""
        #expect(log.contains("domain cycle") && log.contains("ended with status 0"), "xenod log: \(log.suffix(400))")
        let none = try host.xeno(["reboot", "nosuch"])
        #expect(none.status == 1 && none.stderr.contains("no domain named 'nosuch'"))
    }
}

@Suite("100 create/destroy cycles leave nothing behind", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"),
       .enabled(if: isRoot, "needs root (creates cgroups and TAP devices)"))
final class CreateDestroyCycleTests {
    let host: XenodInstance
    init() throws { host = try XenodInstance("cycles") }
    deinit { host.tearDown() }

    @Test("no VMM process, xenod descriptor, TAP device or cgroup remains")
    func hundredCycles() throws {
        let daemon = host.pid
        func openFDs() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon)/fd").count) ?? -1 }
        let tap = "xcy\(getpid() % 100_000)"
        let cfg = try host.config("cyc", memory: 128, extra: "vif = [ 'vifname=\(tap)' ]")
        // One cycle first, so what xenod opens once (its log, libraries) is counted before.
        #expect(try host.xeno(["create", cfg]).status == 0)
        #expect(try host.xeno(["destroy", "cyc"]).status == 0)
        let before = openFDs()
        let started = monotonicSeconds()
        for i in 0..<100 {
            let c = try host.xeno(["create", cfg])
            guard c.status == 0 else { Issue.record("cycle \(i): create: \(c.stderr)"); return }
            #expect(access("/sys/class/net/\(tap)", F_OK) == 0, "cycle \(i): the TAP exists while the domain runs")
            let d = try host.xeno(["destroy", "cyc"])
            guard d.status == 0 else { Issue.record("cycle \(i): destroy: \(d.stderr)"); return }
        }
        print("100 create/destroy cycles in \(String(format: "%.1f", monotonicSeconds() - started)) s")
        poll("the TAP device to go", timeout: 10) { access("/sys/class/net/\(tap)", F_OK) != 0 }
        #expect(openFDs() <= before, "xenod holds \(openFDs()) descriptors, \(before) before the cycles")
        // No VMM of this xenod is left: none has its run directory in its environment.
        let vmms = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { entry in
            guard Int(entry) != nil,
                  let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return false }
            let words = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return words.count > 3 && words[1] == "run" && words.contains("--net") && words.contains { $0.contains(tap) }
        }
        #expect(vmms.isEmpty, "VMM processes left: \(vmms)")
        let group = "/sys/fs/cgroup/cpu/\(host.cgroupGroup)"
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: group)) ?? []).filter { access("\(group)/\($0)/cgroup.procs", F_OK) == 0 }
        #expect(left.isEmpty, "cgroups left under \(group): \(left)")
        #expect(try host.xeno(["list"]).stdout.split(separator: "\n").count == 1, "no domain listed")
    }
}
