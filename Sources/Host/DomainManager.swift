import Foundation
import UnixSockets
import XLConfig

/// The host's domains: each runs in a VMM process of its own (`xeno run`,
/// in a session of its own, so it outlives xenod), reached through its
/// control socket. xenod starts, watches, stops and re-adopts them.
/// Commands on one domain are serialized by that domain's lock; commands on
/// different domains run in parallel.
public final class DomainManager: @unchecked Sendable {
    public struct Paths: Sendable {
        public var stateDirectory = "/var/lib/xenolith"
        public var runDirectory = "/run/xenolith"
        /// The `xeno` binary that runs each VMM.
        public var xenoBinary: String
        /// The cgroup (in each controller's hierarchy) the domains' cgroups are made under.
        public var cgroupGroup = "xenolith"
        public init(xenoBinary: String) { self.xenoBinary = xenoBinary }
    }

    final class Domain: @unchecked Sendable {
        var record: DomainRecord
        let config: XLDomainConfig
        /// Our child (we can collect its exit status), or adopted after a
        /// restart (we can only see that it is gone).
        let isChild: Bool
        /// Serializes commands on this domain.
        let commandLock = NSLock()
        /// Set by the monitor once the VMM has ended (only the monitor writes it).
        var exitCode: Int32?
        init(record: DomainRecord, config: XLDomainConfig, isChild: Bool) {
            self.record = record
            self.config = config
            self.isChild = isChild
        }
    }

    let paths: Paths
    let store: DomainStore
    let lock = NSLock()
    var domains: [String: Domain] = [:]
    /// Names being created: a second create of the same name is refused at once.
    var reserved: Set<String> = []
    let log: @Sendable (String) -> Void
    /// Credit scheduling (weight, cap, cpus) through the cpu cgroup
    /// controller; nil on a host without one (then they are not applied).
    let cgroups: CPUCgroups?

    public init(paths: Paths, log: @escaping @Sendable (String) -> Void) throws {
        self.paths = paths
        self.log = log
        store = try DomainStore(directory: paths.stateDirectory)
        cgroups = CPUCgroups.usable(group: paths.cgroupGroup, log: log)
        try FileManager.default.createDirectory(atPath: paths.runDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        adoptRunningDomains()
        adoptCgroups()
        let monitor = Thread { [weak self] in
            while let self {
                self.reapEnded()
                usleep(200_000)
            }
        }
        monitor.start()
    }

    // MARK: Re-adoption

    /// Records whose VMM still runs (same pid, `run --name NAME` on its
    /// command line) are managed again; the others are gone and forgotten.
    private func adoptRunningDomains() {
        for record in store.loadAll() {
            guard let config = try? XLDomainConfig(path: record.configPath, text: record.configText) else {
                log("domain \(record.name): stored configuration no longer parses; forgetting it")
                store.remove(record.name)
                continue
            }
            if Self.isVMM(pid: record.pid, name: record.name) {
                domains[record.name] = Domain(record: record, config: config, isChild: false)
                log("domain \(record.name) (id \(record.id)): re-adopted VMM pid \(record.pid)")
            } else {
                log("domain \(record.name) (id \(record.id)): its VMM (pid \(record.pid)) is gone; forgetting it")
                store.remove(record.name)
            }
        }
    }

    static func isVMM(pid: Int32, name: String) -> Bool {
        guard pid > 0, kill(pid, 0) == 0,
              let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let words = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard words.count > 2, words[1] == "run", let at = words.firstIndex(of: "--name") else { return false }
        return at + 1 < words.count && words[at + 1] == name
    }

    // MARK: Create

    public struct Summary: Sendable {
        public let name: String
        public let id: Int
        public let pid: Int32
    }

    /// Creates and starts a domain from xl.cfg text; returns once its VMM
    /// answers on its control socket, or throws with the VMM's own words.
    public func create(configText: String, configPath: String) throws -> Summary {
        let config: XLDomainConfig
        do { config = try XLDomainConfig(path: configPath, text: configText) } catch {
            throw HostError(error.description, status: 400)
        }
        try lock.withLock {
            guard domains[config.name] == nil, !reserved.contains(config.name) else {
                throw HostError("a domain named '\(config.name)' already exists", status: 409)
            }
            reserved.insert(config.name)
        }
        defer { _ = lock.withLock { reserved.remove(config.name) } }
        for disk in config.disks where !disk.readOnly {
            if let owner = lock.withLock({ domains.values.first { $0.config.disks.contains { !$0.readOnly && $0.target == disk.target } } }) {
                throw HostError("\(configPath): disk \(disk.target) is already writable by domain '\(owner.record.name)'", status: 409)
            }
        }
        let id = try store.takeNextID()
        var record = DomainRecord(name: config.name, id: id, configPath: configPath, configText: configText,
                                  pid: 0, controlPath: "\(paths.runDirectory)/\(config.name).ctl",
                                  consolePath: "\(paths.runDirectory)/\(config.name).console", created: Date().timeIntervalSince1970)
        record.pid = try startVMM(config: config, record: record)
        record.weight = config.weight
        record.cap = config.cap
        do { try placeInCgroup(record, cpus: config.cpus) } catch {
            kill(record.pid, SIGKILL)
            var status: Int32 = 0
            waitpid(record.pid, &status, 0)
            removeCgroup(config.name)
            unlink(record.controlPath)
            throw error
        }
        let domain = Domain(record: record, config: config, isChild: true)
        do { try waitUntilAnswering(domain) } catch {
            removeCgroup(config.name)
            throw error
        }
        if config.memoryMiB < config.maxMemoryMiB {
            // Xen boots the guest with `memory` and lets it balloon up to
            // `maxmem`; here it boots with maxmem and the balloon takes the
            // difference at once.
            _ = try? control(domain, "mem-set \(config.memoryMiB)M")
        }
        try store.save(record)
        lock.withLock { domains[config.name] = domain }
        log("domain \(config.name) (id \(id)) created from \(configPath): VMM pid \(record.pid)")
        return Summary(name: config.name, id: id, pid: record.pid)
    }

    /// `xeno run`'s arguments for a configuration. With `--name` and
    /// XENOLITH_RUN_DIR set to xenod's run directory, the VMM's control
    /// socket is `RUN/NAME.ctl`, where `xeno exec NAME` also finds it.
    static func runArguments(_ c: XLDomainConfig) -> [String] {
        let bootMemory = max(c.memoryMiB, c.maxMemoryMiB)
        var a = ["run", "--name", c.name, "--memory", "\(bootMemory)M", "--vcpus", String(c.vcpus),
                 "--maxvcpus", String(c.maxVCPUs)]
        if c.type == .hvm { a.append("--hvm") }
        if let k = c.kernel { a += ["--kernel", k] }
        if let r = c.ramdisk { a += ["--initrd", r] }
        if let cmd = c.cmdline { a += ["--cmdline", cmd] }
        // Disks in vdev order, as the guest will name them.
        for d in c.disks.sorted(by: { (XLDiskSpec.diskIndex($0.vdev) ?? 0) < (XLDiskSpec.diskIndex($1.vdev) ?? 0) }) {
            a += ["--disk", d.target + (d.readOnly ? ",ro" : "")]
        }
        for v in c.vifs {
            var parts: [String] = []
            if let b = v.bridge { parts.append("bridge=\(b)") } else if let t = v.vifname { parts.append("tap=\(t)") }
            if let m = v.mac { parts.append("mac=\(m)") }
            a += ["--net", parts.isEmpty ? "bridge=xenbr0" : parts.joined(separator: ",")]
        }
        if c.onReboot != .restart { a.append("--no-reboot") }
        return a
    }

    /// glibc's POSIX_SPAWN_SETSIGDEF, _SETSIGMASK and _SETSID, which Swift does not import.
    static let spawnFlags: Int16 = 0x04 | 0x08 | 0x80

    func startVMM(config: XLDomainConfig, record: DomainRecord, extraArguments: [String] = []) throws -> Int32 {
        unlink(record.controlPath)
        let argv = [paths.xenoBinary] + Self.runArguments(config) + extraArguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, record.consolePath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A session of its own: the VMM outlives xenod and its terminal.
        // No signal blocked or ignored because xenod's thread had it so.
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Self.spawnFlags)
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var environment = ["XENOLITH_RUN_DIR=" + paths.runDirectory]
        var e = environ
        while let entry = e.pointee {
            let text = String(cString: entry)
            if !text.hasPrefix("XENOLITH_RUN_DIR=") { environment.append(text) }
            e += 1
        }
        let cEnvironment: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { cEnvironment.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, paths.xenoBinary, &actions, &attributes, cArgs, cEnvironment)
        guard rc == 0 else { throw HostError("cannot start \(paths.xenoBinary): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Waits for the control socket to answer `info`; if the VMM exits
    /// first, its error lines become the error.
    func waitUntilAnswering(_ domain: Domain) throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            var status: Int32 = 0
            if waitpid(domain.record.pid, &status, WNOHANG) == domain.record.pid {
                unlink(domain.record.controlPath)
                let output = (try? String(contentsOfFile: domain.record.consolePath, encoding: .utf8)) ?? ""
                let reasons = output.split(separator: "\n").filter { $0.hasPrefix("xeno: ") }.map { $0.dropFirst(6) }
                throw HostError(reasons.isEmpty ? "the VMM exited at once (status \(status))" : reasons.joined(separator: "; "),
                                status: 400)
            }
            if (try? control(domain, "info")) != nil { return }
            usleep(20_000)
        }
        kill(domain.record.pid, SIGKILL)
        throw HostError("the VMM did not answer on \(domain.record.controlPath) within 60 s")
    }

    // MARK: Commands

    func domain(_ name: String) throws -> Domain {
        guard let d = lock.withLock({ domains[name] }) else {
            throw HostError("no domain named '\(name)'", status: 404)
        }
        return d
    }

    /// Runs `body` with the domain's command lock held.
    func withDomain<T>(_ name: String, _ body: (Domain) throws -> T) throws -> T {
        let d = try domain(name)
        d.commandLock.lock()
        defer { d.commandLock.unlock() }
        return try body(d)
    }

    /// One request line on the domain's control socket; the text after `ok `.
    func control(_ d: Domain, _ request: String, timeoutSeconds: Int = 10) throws -> String {
        let reply = try ControlChannel.request(path: d.record.controlPath, line: request, timeoutSeconds: timeoutSeconds)
        if reply.hasPrefix("ok") { return String(reply.dropFirst(reply.hasPrefix("ok ") ? 3 : 2)) }
        let why = reply.hasPrefix("error ") ? String(reply.dropFirst(6)) : reply
        throw HostError(why, status: 400)
    }

    public func destroy(_ name: String) throws {
        try withDomain(name) { d in
            kill(d.record.pid, SIGKILL)
            if d.isChild { var s: Int32 = 0; waitpid(d.record.pid, &s, 0) }
            else { while kill(d.record.pid, 0) == 0 { usleep(10_000) } }
            forget(d, why: "destroyed")
        }
    }

    /// Stops the guest cleanly: cleanShutdown (DomainManager+Verbs.swift).
    public func shutdown(_ name: String) throws {
        _ = try cleanShutdown(name)
    }

    public func setVCPUs(_ name: String, _ count: Int) throws -> String {
        try withDomain(name) { d in
            guard count >= 1, count <= d.config.maxVCPUs else {
                throw HostError("vcpu-set: \(count) is outside 1–\(d.config.maxVCPUs) (maxvcpus)", status: 400)
            }
            return try control(d, "vcpu-set \(count)")
        }
    }

    public func setMemory(_ name: String, _ size: String) throws -> String {
        try withDomain(name) { d in
            guard size.utf8.count <= 32, size.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                throw HostError("mem-set: '\(size.prefix(32))' is not a size", status: 400)
            }
            try checkMemoryTarget(d, size)
            return try control(d, "mem-set \(size)")
        }
    }

    func forget(_ d: Domain, why: String) {
        unlink(d.record.controlPath)
        removeCgroup(d.record.name)
        unlink("\(paths.runDirectory)/\(d.record.name).console.sock")
        store.remove(d.record.name)
        lock.withLock { _ = domains.removeValue(forKey: d.record.name) }
        log("domain \(d.record.name) (id \(d.record.id)): \(why)")
    }

    /// Domains whose VMM has ended: their on_poweroff/on_crash says what next.
    private func reapEnded() {
        let all = lock.withLock { Array(domains.values) }
        for d in all {
            if d.exitCode == nil {
                if d.isChild {
                    var status: Int32 = 0
                    if waitpid(d.record.pid, &status, WNOHANG) == d.record.pid {
                        d.exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                    }
                } else if kill(d.record.pid, 0) != 0 && errno == ESRCH {
                    d.exitCode = 0                               // not our child: no status to read
                }
            }
            guard let code = d.exitCode else { continue }
            guard d.commandLock.try() else { continue }          // a command holds it; next round
            defer { d.commandLock.unlock() }
            guard lock.withLock({ domains[d.record.name] === d }) else { continue }
            let crashed = code == 3
            let action = crashed ? d.config.onCrash : d.config.onPoweroff
            forget(d, why: crashed ? "crashed (on_crash=\(action.rawValue))" : "ended with status \(code)")
            if action == .restart || action == .coredumpRestart || action == .renameRestart {
                do { _ = try create(configText: d.record.configText, configPath: d.record.configPath) } catch {
                    log("domain \(d.record.name): restart failed: \(error)")
                }
            }
        }
    }

    // MARK: Listing

    public struct Listing: Sendable {
        public let name: String
        public let id: Int
        public let pid: Int32
        public let mode: String
        public let memoryMiB: Int
        public let maxMemoryMiB: Int
        public let vcpus: Int
        public let maxVCPUs: Int
        public let state: String
        public let cpuSeconds: Double
        public let residentBytes: Int
        public let created: Double
    }

    public func list() -> [Listing] {
        let all = lock.withLock { domains.values.sorted { $0.record.id < $1.record.id } }
        return all.map(listing)
    }

    public func info(_ name: String) throws -> Listing { listing(try domain(name)) }

    private func listing(_ d: Domain) -> Listing {
        // Live figures from the VMM; the configuration where it cannot say.
        var fields: [String: String] = [:]
        if let text = try? control(d, "info") {
            for word in text.split(separator: " ") {
                let kv = word.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { fields[String(kv[0])] = String(kv[1]) }
            }
        }
        let usage = ProcessUsage(pid: d.record.pid)
        let state = fields.isEmpty ? (kill(d.record.pid, 0) == 0 ? "unresponsive" : "ended") : (fields["state"] ?? "running")
        return Listing(name: d.record.name, id: d.record.id, pid: d.record.pid,
                       mode: fields["mode"] ?? d.config.type.rawValue,
                       memoryMiB: fields["memory-target-kib"].flatMap(Int.init).map { $0 >> 10 } ?? d.config.memoryMiB,
                       maxMemoryMiB: d.record.maxMemoryMiB ?? d.config.maxMemoryMiB,
                       vcpus: fields["vcpus-online"].flatMap(Int.init) ?? d.config.vcpus,
                       maxVCPUs: d.config.maxVCPUs, state: state,
                       cpuSeconds: usage?.cpuSeconds ?? 0, residentBytes: usage?.residentBytes ?? 0,
                       created: d.record.created)
    }
}

/// CPU time and resident memory of a process, from /proc.
struct ProcessUsage {
    let cpuSeconds: Double
    let residentBytes: Int

    init?(pid: Int32) {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name: state is field 3; utime 14, stime 15; rss 24.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 22, let user = Double(fields[11]), let system = Double(fields[12]),
              let rss = Int(fields[21]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        cpuSeconds = (user + system) / ticks
        residentBytes = rss * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// One request line to a VMM's control socket and its one-line reply.
enum ControlChannel {
    static func request(path: String, line: String, timeoutSeconds: Int = 10) throws -> String {
        let fd: Int32
        do { fd = try UnixSocket.connect(path: path) } catch { throw HostError("VMM control socket: \(error)", status: 503) }
        defer { Glibc.close(fd) }
        UnixSocket.setReceiveTimeout(fd, seconds: timeoutSeconds)
        guard UnixSocket.sendAll(fd, Array((line + "\n").utf8)) else {
            throw HostError("VMM control socket \(path): send failed", status: 503)
        }
        var reply: [UInt8] = []
        var byte: UInt8 = 0
        while reply.count < 4096 {
            let n = recv(fd, &byte, 1, 0)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 || byte == UInt8(ascii: "\n") { break }
            reply.append(byte)
        }
        guard !reply.isEmpty else { throw HostError("VMM control socket \(path): no reply", status: 503) }
        return String(decoding: reply, as: UTF8.self)
    }
}
