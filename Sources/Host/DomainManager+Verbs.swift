import Foundation
import XLConfig

/// xl's simpler verbs: shutdown and reboot the Xen way, mem-max, vcpu-list.
extension DomainManager {
    /// `xl shutdown`: PV guests are asked through xenstore (control/shutdown)
    /// and power themselves off; HVM guests get an ACPI power button press
    /// (their OS powers off if something listens, as on Xen); a VMM that
    /// cannot ask at all is stopped with SIGTERM, as a user's ^C stops it.
    /// Returns how: "xenstore", "acpi-power-button" or "signal".
    public func cleanShutdown(_ name: String) throws -> String {
        try withDomain(name) { d in
            if let reply = try? control(d, "shutdown poweroff") {
                return reply.split(separator: " ").first { $0.hasPrefix("via=") }.map { String($0.dropFirst(4)) } ?? "xenstore"
            }
            guard kill(d.record.pid, SIGTERM) == 0 else {
                throw HostError("shutdown: the VMM of domain '\(name)' is gone", status: 409)
            }
            return "signal"
        }
    }

    /// `xl reboot`: the guest reboots itself; with on_reboot=restart its VMM
    /// boots it again in the same process (otherwise the domain ends).
    public func reboot(_ name: String) throws {
        try withDomain(name) { d in
            do { _ = try control(d, "shutdown reboot") } catch let e as HostError {
                throw HostError("reboot: \(e.description)", status: e.status)
            }
        }
    }

    /// `xl mem-max`: the most memory the domain may be given from now on.
    /// The guest booted with its `maxmem` and there is no memory hotplug, so
    /// it can be lowered (the balloon target follows at once if above it)
    /// but not raised past the boot size.
    public func setMaxMemory(_ name: String, _ size: String) throws -> Int {
        guard let mib = Self.parseMiB(size) else {
            throw HostError("mem-max: '\(size.prefix(32))' is not a size (like 512M or 1G)", status: 400)
        }
        return try withDomain(name) { d in
            let boot = max(d.config.memoryMiB, d.config.maxMemoryMiB)
            guard mib >= 64 else { throw HostError("mem-max: \(mib) MiB is below the 64 MiB a domain needs", status: 400) }
            guard mib <= boot else {
                throw HostError("mem-max: \(mib) MiB is above domain '\(name)''s boot size of \(boot) MiB (no memory hotplug)", status: 400)
            }
            var record = d.record
            record.maxMemoryMiB = mib
            if let target = targetMiB(d), target > mib { _ = try control(d, "mem-set \(mib)M") }
            try store.save(record)
            d.record = record
            log("domain \(name): mem-max \(mib) MiB")
            return mib
        }
    }

    /// Refuses a mem-set above the domain's mem-max.
    func checkMemoryTarget(_ d: Domain, _ size: String) throws {
        guard let max = d.record.maxMemoryMiB, let mib = Self.parseMiB(size, roundUp: true), mib > max else { return }
        throw HostError("mem-set: \(size) is above domain '\(d.record.name)''s mem-max of \(max) MiB", status: 400)
    }

    /// The balloon target the VMM reports, in MiB.
    func targetMiB(_ d: Domain) -> Int? {
        guard let info = try? control(d, "info") else { return nil }
        for word in info.split(separator: " ") where word.hasPrefix("memory-target-kib=") {
            return Int(word.dropFirst(18)).map { $0 >> 10 }
        }
        return nil
    }

    /// Sizes as `xeno run --memory` takes them: a number of MiB, or with
    /// K/M/G (KiB/MiB/GiB) after it.
    static func parseMiB(_ s: String, roundUp: Bool = false) -> Int? {
        guard s.utf8.count <= 32 else { return nil }
        var digits = Substring(s)
        var unitKiB = 1024
        for (suffix, u) in [("KiB", 1), ("MiB", 1024), ("GiB", 1 << 20), ("K", 1), ("M", 1024), ("G", 1 << 20),
                            ("k", 1), ("m", 1024), ("g", 1 << 20)] where digits.hasSuffix(suffix) {
            digits = digits.dropLast(suffix.count)
            unitKiB = u
            break
        }
        guard !digits.isEmpty, digits.utf8.count <= 12, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let n = Int(digits) else { return nil }
        let kib = n * unitKiB
        return roundUp ? (kib + 1023) / 1024 : kib / 1024
    }

    /// Where `xeno console` attaches (the VMM's socket) and the log it keeps.
    public func consoleEndpoints(_ name: String) throws -> [String: String] {
        let d = try domain(name)
        return ["socket": "\(paths.runDirectory)/\(d.record.name).console.sock", "log": d.record.consolePath]
    }

    // MARK: vcpu-list

    public struct VCPUState: Sendable {
        public let domain: String
        public let id: Int
        public let vcpu: Int
        /// The host CPU its thread last ran on; nil for an offline vCPU.
        public let hostCPU: Int?
        /// xl's letters: r (running), b (blocked), p (paused/offline).
        public let state: String
        public let cpuSeconds: Double
        public let affinity: String
    }

    /// Each vCPU thread of each (or one) domain's VMM: the threads named
    /// "vcpu N" in /proc/PID/task.
    public func vcpuList(_ name: String?) throws -> [VCPUState] {
        let chosen = try name.map { [try domain($0)] } ?? lock.withLock { domains.values.sorted { $0.record.id < $1.record.id } }
        var out: [VCPUState] = []
        for d in chosen {
            let online = (try? control(d, "info")).flatMap { info in
                info.split(separator: " ").first { $0.hasPrefix("vcpus-online=") }.flatMap { Int($0.dropFirst(13)) }
            } ?? d.config.vcpus
            for thread in Self.vcpuThreads(pid: d.record.pid) {
                let isOnline = thread.vcpu < online
                out.append(VCPUState(domain: d.record.name, id: d.record.id, vcpu: thread.vcpu,
                                     hostCPU: isOnline ? thread.processor : nil,
                                     state: !isOnline ? "--p" : thread.state == "R" ? "r--" : "-b-",
                                     cpuSeconds: thread.cpuSeconds, affinity: thread.affinity))
            }
        }
        return out
    }

    struct VCPUThread {
        let vcpu: Int
        let state: String
        let processor: Int
        let cpuSeconds: Double
        let affinity: String
    }

    static func vcpuThreads(pid: Int32) -> [VCPUThread] {
        let taskDir = "/proc/\(pid)/task"
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var threads: [VCPUThread] = []
        for tid in (try? FileManager.default.contentsOfDirectory(atPath: taskDir)) ?? [] {
            guard let comm = try? String(contentsOfFile: "\(taskDir)/\(tid)/comm", encoding: .utf8),
                  comm.hasPrefix("vcpu "), let vcpu = Int(comm.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)),
                  let stat = try? String(contentsOfFile: "\(taskDir)/\(tid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // After the name: state is field 3, utime 14, stime 15, processor 39.
            let f = stat[stat.index(after: close)...].split(separator: " ")
            guard f.count > 36, let user = Double(f[11]), let system = Double(f[12]), let cpu = Int(f[36]) else { continue }
            let status = (try? String(contentsOfFile: "\(taskDir)/\(tid)/status", encoding: .utf8)) ?? ""
            let affinity = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
                .map { $0.dropFirst(18).trimmingCharacters(in: .whitespaces) } ?? "all"
            threads.append(VCPUThread(vcpu: vcpu, state: String(f[0]), processor: cpu,
                                      cpuSeconds: (user + system) / ticks, affinity: affinity))
        }
        return threads.sorted { $0.vcpu < $1.vcpu }
    }
}
