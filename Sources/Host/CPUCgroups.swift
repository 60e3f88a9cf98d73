import Foundation
import XLConfig

/// Xen's credit scheduler, as the host's cpu cgroup controller gives it:
/// each domain's VMM process (every thread of it: vCPUs, backends) lives in
/// a cgroup of its own, `GROUP/NAME` (GROUP is `xenolith` unless xenod is
/// told otherwise), where
///
/// - the domain's **weight** (Xen: 1–65535, default 256) is its share of a
///   contended CPU against its siblings: cgroup v1 `cpu.shares` = 4 × weight
///   (256 → 1024, the kernel's default share), v2 `cpu.weight` =
///   weight × 100 / 256 (256 → 100, the default), within 1–10000;
/// - the **cap** (percent of one CPU, 0 = none, above 100 for several vCPUs)
///   is a CFS bandwidth limit: quota = cap% of a 100 ms period (v1
///   `cpu.cfs_quota_us`/`cpu.cfs_period_us`, v2 `cpu.max`);
/// - xl's **cpus** (hard affinity, e.g. `cpus = "1"`) is the group's
///   cpuset, so all the domain's threads run only there.
///
/// The CPU time the host charged a domain is the group's `cpuacct.usage`
/// (v1) or `cpu.stat` `usage_usec` (v2).
public struct CPUCgroups: Sendable {
    public enum Version: String, Sendable { case v1, v2 }
    public let version: Version
    /// The group every domain's cgroup is made under (relative to each hierarchy's root).
    public let group: String
    /// Hierarchy roots: where cpu, cpuacct and cpuset are (v1: separate or
    /// co-mounted; v2: all one).
    let cpuRoot: String
    let cpuacctRoot: String
    let cpusetRoot: String?

    public static let defaultWeight = 256
    public static let weightRange = 1...65535
    static let periodMicroseconds = 100_000

    /// Finds the cpu controller (v1 first, as this host mounts it; then a
    /// unified hierarchy that offers it); nil where there is none.
    public static func detect(group: String, mountRoot: String = "/sys/fs/cgroup") -> CPUCgroups? {
        func exists(_ p: String) -> Bool { access(p, F_OK) == 0 }
        func real(_ p: String) -> String { (try? FileManager.default.destinationOfSymbolicLink(atPath: p)).map {
            $0.hasPrefix("/") ? $0 : mountRoot + "/" + $0 } ?? p }
        if exists(mountRoot + "/cpu/cpu.shares") {
            let cpu = real(mountRoot + "/cpu")
            let acct = exists(mountRoot + "/cpuacct/cpuacct.usage") ? real(mountRoot + "/cpuacct") : cpu
            let cpuset = exists(mountRoot + "/cpuset/cpuset.cpus") ? real(mountRoot + "/cpuset") : nil
            return CPUCgroups(version: .v1, group: group, cpuRoot: cpu, cpuacctRoot: acct, cpusetRoot: cpuset)
        }
        for root in [mountRoot, mountRoot + "/unified"] {
            guard let controllers = try? String(contentsOfFile: root + "/cgroup.controllers", encoding: .utf8) else { continue }
            let names = controllers.split(whereSeparator: \.isWhitespace)
            guard names.contains("cpu") else { continue }
            return CPUCgroups(version: .v2, group: group, cpuRoot: root, cpuacctRoot: root,
                              cpusetRoot: names.contains("cpuset") ? root : nil)
        }
        return nil
    }

    /// The controller if xenod can use it (it can make its group: root, a
    /// writable hierarchy); otherwise nil, said once in the log, and
    /// weights and caps are not applied.
    static func usable(group: String, log: (String) -> Void) -> CPUCgroups? {
        guard let found = detect(group: group) else {
            log("no cpu cgroup controller on this host: cpu_weight, cap and cpus are not applied")
            return nil
        }
        do { try found.prepareParent() } catch {
            log("cannot use the cpu cgroup controller (\(error)): cpu_weight, cap and cpus are not applied")
            return nil
        }
        return found
    }

    /// The domain's directory in each hierarchy it uses.
    func directories(_ domain: String) -> [String] {
        var roots = [cpuRoot]
        if cpuacctRoot != cpuRoot { roots.append(cpuacctRoot) }
        if let s = cpusetRoot, !roots.contains(s) { roots.append(s) }
        return roots.map { "\($0)/\(group)/\(domain)" }
    }

    func cpuDirectory(_ domain: String) -> String { "\(cpuRoot)/\(group)/\(domain)" }

    // MARK: Mapping

    static func shares(weight: Int) -> Int { weight * 4 }
    static func cgroupV2Weight(weight: Int) -> Int { min(10_000, max(1, weight * 100 / 256)) }
    /// CFS quota in microseconds per 100 ms period, or nil for no cap.
    static func quota(cap: Int) -> Int? { cap == 0 ? nil : cap * periodMicroseconds / 100 }

    // MARK: Lifecycle

    /// Makes `GROUP/domain` with the given settings and moves every thread
    /// of `pid` into it (writing the pid to `cgroup.procs` moves its whole
    /// thread group, and threads it starts later are born there).
    public func place(domain: String, pid: Int32, weight: Int, cap: Int, cpus: [Int]?) throws {
        try prepareParent()
        for dir in directories(domain) {
            if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw error("cannot create \(dir)") }
        }
        if let s = cpusetRoot {
            let parent = "\(s)/\(group)"
            let dir = "\(parent)/\(domain)"
            let allowed = cpus.map { CPUList.format($0) } ?? (read(parent + "/cpuset.cpus") ?? "")
            if version == .v1 {
                // v1 cpusets start empty: a group takes no task until both are set.
                try write(dir + "/cpuset.mems", read(parent + "/cpuset.mems") ?? "0")
            }
            if !allowed.isEmpty { try write(dir + "/cpuset.cpus", allowed) }
        } else if cpus != nil {
            throw HostError("this host has no cpuset cgroup controller, so 'cpus' cannot be applied", status: 400)
        }
        try set(domain: domain, weight: weight, cap: cap)
        for dir in directories(domain) { try write(dir + "/cgroup.procs", String(pid)) }
    }

    /// The group all domains' groups live in; on v1 cpuset it needs the
    /// root's CPUs and memory nodes before a child can take tasks, on v2
    /// the controllers must be enabled for its children.
    public func prepareParent() throws {
        var roots = [cpuRoot]
        if cpuacctRoot != cpuRoot { roots.append(cpuacctRoot) }
        if let s = cpusetRoot, !roots.contains(s) { roots.append(s) }
        for root in roots {
            let parent = "\(root)/\(group)"
            if mkdir(parent, 0o755) != 0 && errno != EEXIST { throw error("cannot create \(parent)") }
        }
        switch version {
        case .v1:
            if let s = cpusetRoot {
                let parent = "\(s)/\(group)"
                if (read(parent + "/cpuset.cpus") ?? "").isEmpty {
                    try write(parent + "/cpuset.cpus", read(s + "/cpuset.cpus") ?? "0")
                }
                if (read(parent + "/cpuset.mems") ?? "").isEmpty {
                    try write(parent + "/cpuset.mems", read(s + "/cpuset.mems") ?? "0")
                }
            }
        case .v2:
            let controllers = cpusetRoot == nil ? "+cpu" : "+cpu +cpuset"
            try write(cpuRoot + "/cgroup.subtree_control", controllers)
            try write("\(cpuRoot)/\(group)/cgroup.subtree_control", controllers)
        }
    }

    /// Applies weight and cap to the domain's group.
    public func set(domain: String, weight: Int, cap: Int) throws {
        let dir = cpuDirectory(domain)
        switch version {
        case .v1:
            try write(dir + "/cpu.shares", String(Self.shares(weight: weight)))
            try write(dir + "/cpu.cfs_period_us", String(Self.periodMicroseconds))
            try write(dir + "/cpu.cfs_quota_us", String(Self.quota(cap: cap) ?? -1))
        case .v2:
            try write(dir + "/cpu.weight", String(Self.cgroupV2Weight(weight: weight)))
            try write(dir + "/cpu.max", "\(Self.quota(cap: cap).map(String.init) ?? "max") \(Self.periodMicroseconds)")
        }
    }

    public func exists(domain: String) -> Bool { access(cpuDirectory(domain), F_OK) == 0 }

    /// Whether `pid` is in the domain's cpu group (re-adoption checks it).
    public func contains(domain: String, pid: Int32) -> Bool {
        guard let procs = read(cpuDirectory(domain) + "/cgroup.procs") else { return false }
        return procs.split(separator: "\n").contains { Int32($0) == pid }
    }

    /// CPU time the host charged the domain's group, in nanoseconds.
    public func usageNanoseconds(domain: String) -> UInt64? {
        switch version {
        case .v1:
            return (read("\(cpuacctRoot)/\(group)/\(domain)/cpuacct.usage")).flatMap { UInt64($0) }
        case .v2:
            guard let stat = read(cpuDirectory(domain) + "/cpu.stat") else { return nil }
            for line in stat.split(separator: "\n") where line.hasPrefix("usage_usec ") {
                return UInt64(line.dropFirst(11)).map { $0 * 1000 }
            }
            return nil
        }
    }

    /// Removes the domain's groups. They hold no task once the VMM has
    /// exited; a task still leaving (a thread being reaped) makes rmdir
    /// fail with EBUSY for a moment, so it is retried for up to a second.
    public func remove(domain: String) {
        for dir in directories(domain) where access(dir, F_OK) == 0 {
            var tries = 0
            while rmdir(dir) != 0 && errno == EBUSY && tries < 100 {
                tries += 1
                usleep(10_000)
            }
        }
    }

    /// Domain groups that exist under GROUP (to drop those whose domain is gone).
    public func existingDomains() -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "\(cpuRoot)/\(group)")) ?? []
        return entries.filter { access("\(cpuRoot)/\(group)/\($0)/cgroup.procs", F_OK) == 0 }.sorted()
    }

    /// The host CPUs a cpuset may name (the root's own set).
    public func hostCPUs() -> [Int]? {
        guard let s = cpusetRoot, let text = read(s + "/cpuset.cpus") else { return nil }
        return CPUList.parse(text)
    }

    // MARK: Files

    private func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func write(_ path: String, _ value: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw error("cannot open \(path)") }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else { throw error("cannot write '\(value)' to \(path)") }
    }

    private func error(_ what: String) -> HostError {
        HostError("\(what): \(String(cString: strerror(errno)))", status: 500)
    }
}
