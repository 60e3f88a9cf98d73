import Foundation
import Testing

/// A xenod of a test's own (socket, state, run directory and cgroup group
/// under one temporary directory), driven through the real `xeno` verbs.
final class XenodInstance {
    let directory: String
    let socket: String
    /// The cgroup domains' cgroups are made under (one per instance, so
    /// tests never see each other's domains).
    let cgroupGroup: String
    private(set) var pid: pid_t = 0

    init(_ tag: String) throws {
        directory = NSTemporaryDirectory() + "xenod-\(tag)-\(getpid())-\(UUID().uuidString.prefix(8))"
        socket = directory + "/xenod.sock"
        cgroupGroup = "xenolith-test-\(tag)-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try start()
    }

    /// Destroys what a failed test left running, stops xenod, removes its
    /// files and its cgroup group.
    func tearDown() {
        if let records = try? FileManager.default.contentsOfDirectory(atPath: directory + "/state/domains") {
            for f in records where f.hasSuffix(".json") { _ = try? xeno(["destroy", String(f.dropLast(5))]) }
        }
        if pid > 0 {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            pid = 0
        }
        for controller in ["cpu", "cpuacct", "cpuset", "unified", ""] {
            let dir = "/sys/fs/cgroup/\(controller.isEmpty ? "" : controller + "/")\(cgroupGroup)"
            if let children = try? FileManager.default.contentsOfDirectory(atPath: dir) {
                for c in children where access("\(dir)/\(c)/cgroup.procs", F_OK) == 0 { rmdir("\(dir)/\(c)") }
                rmdir(dir)
            }
        }
        // XENOLITH_KEEP_TEST_FILES=1 keeps configurations, logs and consoles for a look.
        if getenv("XENOLITH_KEEP_TEST_FILES") == nil { try? FileManager.default.removeItem(atPath: directory) }
    }

    func start() throws {
        pid = try startXenod(directory: directory, socket: socket, cgroupGroup: cgroupGroup)
    }

    /// Kills xenod at once, as a crash would.
    func kill9() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        pid = 0
    }

    /// A `xeno` verb against this xenod.
    func xeno(_ args: [String], input: String? = nil, timeout: TimeInterval = 120,
              script: [(after: String, send: String)] = []) throws -> Xeno.Result {
        try Xeno.run(args, input: input, timeout: timeout, script: script, environment: ["XENOD_SOCKET": socket])
    }

    /// Writes an xl.cfg for a small kit domain; `command` runs as the kit's command.
    /// The kit's kernel as a domain (PV, or HVM with its console on COM1).
    func config(_ name: String, memory: Int = 128, extra: String = "", command: String? = nil, hvm: Bool = false) throws -> String {
        let path = directory + "/\(name).cfg"
        let text = """
        name = "\(name)"
        \(hvm ? "type = \"hvm\"" : "")
        memory = \(memory)
        vcpus = 1
        kernel = "\(kitDirectory)/vmlinuz"
        ramdisk = "\(kitDirectory)/initrd.img"
        extra = "\(hvm ? "console=ttyS0" : "console=hvc0")\(command.map { " -- " + $0 } ?? "")"
        \(extra)
        """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func console(_ name: String) -> String {
        (try? String(contentsOfFile: directory + "/run/\(name).console", encoding: .utf8)) ?? ""
    }

    func controlPath(_ name: String) -> String { directory + "/run/\(name).ctl" }

    /// The row of `xeno list` for `name`, split into words.
    func row(_ name: String) throws -> [String]? {
        let r = try xeno(["list"])
        return r.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }.first { $0.first == name }
    }

    /// The VMM pid xenod has for `name` (from its record).
    func vmmPID(_ name: String) -> pid_t? {
        guard let data = FileManager.default.contents(atPath: directory + "/state/domains/\(name).json"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return (object["pid"] as? NSNumber).map { pid_t($0.int32Value) }
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
@discardableResult
func poll(_ what: String, timeout: TimeInterval = 120, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(50_000)
    }
    Issue.record("timed out after \(Int(timeout)) s waiting for \(what)")
    return false
}

/// Starts a xenod whose socket, state, run directory and log are under
/// `directory` (posix_spawn, as Xeno.run starts xeno) and waits until its
/// socket answers; returns its pid.
func startXenod(directory: String, socket: String, cgroupGroup: String) throws -> pid_t {
    unlink(socket)
    let binary = URL(fileURLWithPath: Xeno.binary).deletingLastPathComponent().path + "/xenod"
    let argv = [binary, "--socket", socket, "--state-dir", directory + "/state", "--run-dir", directory + "/run",
                "--xeno", Xeno.binary, "--cgroup", cgroupGroup]
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, directory + "/xenod.log", O_WRONLY | O_CREAT | O_APPEND, 0o600)
    let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, binary, &actions, nil, cArgs, environ)
    guard rc == 0 else { throw ProbeError("cannot start xenod: \(rc)") }
    let deadline = Date().addingTimeInterval(20)
    while Date() < deadline {
        if XenodTests.rawRequest(socket: socket, "GET /v1/domains")?.hasPrefix("HTTP/1.1 200") == true { return pid }
        usleep(50_000)
    }
    throw ProbeError("xenod did not answer on \(socket) within 20 s")
}
