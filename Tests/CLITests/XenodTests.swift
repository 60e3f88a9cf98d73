import Foundation
import Testing

/// xenod driven through the real `xeno` verbs: domains from xl.cfg files,
/// each a VMM process of its own that outlives a xenod restart.
@Suite("xenod and xl's verbs", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"))
final class XenodTests {
    let directory: String
    let socket: String
    var daemon: pid_t = 0
    /// Domains' cgroups go under a group of this test's own.
    let cgroupGroup = "xenolith-test-xenod-\(getpid())"

    init() throws {
        directory = NSTemporaryDirectory() + "xenod-test-\(getpid())-\(UUID().uuidString.prefix(8))"
        socket = directory + "/xenod.sock"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        setenv("XENOD_SOCKET", socket, 1)
        try startDaemon()
    }

    deinit {
        // Whatever a failed test left running goes with it.
        _ = try? xeno(["list"])
        if let domains = try? FileManager.default.contentsOfDirectory(atPath: directory + "/state/domains") {
            for f in domains where f.hasSuffix(".json") { _ = try? xeno(["destroy", String(f.dropLast(5))]) }
        }
        if daemon > 0 {
            kill(daemon, SIGTERM)
            var status: Int32 = 0
            waitpid(daemon, &status, 0)
        }
        try? FileManager.default.removeItem(atPath: directory)
        for controller in ["cpu", "cpuacct", "cpuset"] { rmdir("/sys/fs/cgroup/\(controller)/\(cgroupGroup)") }
    }

    /// Starts xenod (posix_spawn, as Xeno.run starts xeno) and waits until
    /// its socket answers.
    func startDaemon() throws {
        daemon = try startXenod(directory: directory, socket: socket, cgroupGroup: cgroupGroup)
    }

    /// Kills xenod at once, as a crash would.
    func killDaemon() {
        kill(daemon, SIGKILL)
        var status: Int32 = 0
        waitpid(daemon, &status, 0)
        daemon = 0
    }

    func xeno(_ args: [String]) throws -> Xeno.Result { try Xeno.run(args, timeout: 120) }

    func config(_ name: String, extra: String = "") throws -> String {
        let path = directory + "/\(name).cfg"
        let text = """
        # a test domain
        name = "\(name)"
        memory = 256
        vcpus = 1
        maxvcpus = 4
        kernel = "\(kitDirectory)/vmlinuz"
        ramdisk = "\(kitDirectory)/initrd.img"
        extra = "console=hvc0"
        \(extra)
        """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The row of `xeno list` for `name`, split into words.
    func row(_ name: String) throws -> [String]? {
        let r = try xeno(["list"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.hasPrefix("Name"), "list: \(r.stdout)")
        return r.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }.first { $0.first == name }
    }

    func console(_ name: String) -> String {
        (try? String(contentsOfFile: directory + "/run/\(name).console", encoding: .utf8)) ?? ""
    }

    func waitFor(_ what: String, timeout: TimeInterval = 120, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            usleep(100_000)
        }
        Issue.record("timed out waiting for \(what)")
        return false
    }

    @Test("create from an xl.cfg, list, vcpu-set; xenod restarts and finds the guest still running; shutdown ends it")
    func lifecycleAcrossADaemonRestart() throws {
        let created = try xeno(["create", try config("web")])
        #expect(created.status == 0, "stderr: \(created.stderr)")
        #expect(created.stdout.contains("domain web created"))
        let first = try #require(try row("web"))
        #expect(first[2] == "256" && first[3] == "1" && first[4] == "running", "row: \(first)")
        guard try waitFor("the guest's readiness line", { console("web").contains("XENOLITH-READY") }) else { return }

        // The domain's VMM listens where `xeno exec NAME` looks (here in the
        // test's run directory, so named by path).
        let exec = try Xeno.run(["exec", "--control", directory + "/run/web.ctl", "--", "echo from-web; exit 5"], timeout: 120)
        #expect(exec.status == 5 && exec.stdout == "from-web\n", "exec: \(exec.status) \(exec.stdout) \(exec.stderr)")

        #expect(try xeno(["vcpu-set", "web", "3"]).status == 0)
        let refused = try xeno(["vcpu-set", "web", "9"])
        #expect(refused.status == 1 && refused.stderr.contains("maxvcpus"), "stderr: \(refused.stderr)")

        // xenod dies without warning; the VMM does not notice.
        killDaemon()
        try startDaemon()
        let again = try #require(try row("web"))
        #expect(again[1] == first[1] && again[4] == "running", "row after the restart: \(again)")
        #expect(try xeno(["mem-set", "web", "200M"]).status == 0, "the re-adopted domain takes commands")

        #expect(try xeno(["shutdown", "web"]).status == 0)
        _ = try waitFor("the domain to go") { try row("web") == nil }
        // Xen's way: asked through xenstore, the guest powers itself off.
        #expect(console("web").contains("reboot: Power down") || console("web").contains("reboot: System halted"),
                "console: \(console("web").suffix(300))")
    }

    @Test("bad requests change nothing and say why: config errors name file and line, duplicates, unknown domains, disks")
    func badInput() throws {
        let broken = directory + "/broken.cfg"
        try "name = \"b\"\nmemory = 256\nvcpus = lots\n".write(toFile: broken, atomically: true, encoding: .utf8)
        let r1 = try xeno(["create", broken])
        #expect(r1.status == 1 && r1.stderr.contains("broken.cfg:3:"), "stderr: \(r1.stderr)")

        let missing = try xeno(["create", try config("nodisk", extra: "disk = [ '/nonexistent/x.img,,xvda,w' ]")])
        #expect(missing.status == 1 && missing.stderr.contains("/nonexistent/x.img"), "stderr: \(missing.stderr)")

        let disk = directory + "/shared.img"
        FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        #expect(try xeno(["create", try config("one", extra: "disk = [ '\(disk),,xvda,w' ]")]).status == 0)
        let dup = try xeno(["create", try config("one")])
        #expect(dup.status == 1 && dup.stderr.contains("already exists"), "stderr: \(dup.stderr)")
        let second = try xeno(["create", try config("two", extra: "disk = [ '\(disk),,xvda,w' ]")])
        #expect(second.status == 1 && second.stderr.contains("already writable"), "stderr: \(second.stderr)")

        let unknown = try xeno(["destroy", "nosuch"])
        #expect(unknown.status == 1 && unknown.stderr.contains("no domain named 'nosuch'"), "stderr: \(unknown.stderr)")
        let names = try xeno(["list"]).stdout.split(separator: "\n").dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) }
        #expect(names == ["one"], "list: \(names)")
        #expect(try xeno(["destroy", "one"]).status == 0)
        #expect(try row("one") == nil)
    }

    @Test("1,000 concurrent API requests are all answered, and xenod holds no more descriptors after")
    func concurrentRequests() throws {
        let pid = daemon
        func openFDs() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }
        let before = openFDs()
        let lock = NSLock()
        nonisolated(unsafe) var failures = 0
        let socket = self.socket
        DispatchQueue.concurrentPerform(iterations: 1000) { i in
            let answer = Self.rawRequest(socket: socket, i % 2 == 0 ? "GET /v1/domains" : "GET /metrics")
            if !(answer?.hasPrefix("HTTP/1.1 200") ?? false) { lock.withLock { failures += 1 } }
        }
        #expect(failures == 0)
        _ = waitFor("descriptors to be closed", timeout: 10) { openFDs() <= before }
        // Nonsense is refused with a status, not a crash.
        #expect(Self.rawRequest(socket: socket, "BREW /coffee")?.hasPrefix("HTTP/1.1 404") == true)
        #expect(Self.rawRequest(socket: socket, "garbage")?.hasPrefix("HTTP/1.1 400") == true)
        #expect(Self.rawRequest(socket: socket, "POST /v1/domains", body: "{\"config\": 3}")?.hasPrefix("HTTP/1.1 400") == true)
        #expect(Self.rawRequest(socket: socket, "GET /v1/domains")?.hasPrefix("HTTP/1.1 200") == true, "xenod still answers")
    }

    /// One request line (plus a body) over the socket; the whole answer.
    static func rawRequest(socket path: String, _ line: String, body: String = "") -> String? {
        let fd = Foundation.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8) + [0])
        }
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok == 0 else { return nil }
        let message = line.contains("HTTP/") || line == "garbage" ? line + "\r\n\r\n"
            : "\(line) HTTP/1.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        _ = message.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
