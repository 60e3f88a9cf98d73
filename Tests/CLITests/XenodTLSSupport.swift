import Foundation
import Testing

/// A xenod serving its API on a Unix socket and on 127.0.0.1 (a port the
/// kernel picks) with TLS and a bearer token, under a test CA made here
/// with openssl (nothing of it is kept). `curl` is the HTTPS client.
final class TLSDaemon {
    let directory: String
    let socket: String
    let token: String
    /// Domains' cgroups go under a group of this daemon's own: a xenod that
    /// starts removes groups without a domain record, so daemons of tests
    /// running side by side must not share one.
    let cgroupGroup = "xenolith-test-tls-\(getpid())-\(UUID().uuidString.prefix(8))"
    var port = 0
    var pid: pid_t = 0
    var caFile: String { directory + "/ca.pem" }
    var tokenFile: String { directory + "/token" }
    var url: String { "https://127.0.0.1:\(port)" }

    init() throws {
        directory = NSTemporaryDirectory() + "xenod-tls-\(getpid())-\(UUID().uuidString.prefix(8))"
        socket = directory + "/xenod.sock"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        token = (UUID().uuidString + UUID().uuidString).lowercased()
        FileManager.default.createFile(atPath: tokenFile, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600])
        try makeCertificates()
        try start()
    }

    deinit {
        if let domains = try? FileManager.default.contentsOfDirectory(atPath: directory + "/state/domains") {
            for f in domains where f.hasSuffix(".json") {
                _ = try? Xeno.runWithEnvironment(["destroy", String(f.dropLast(5))], ["XENOD_SOCKET": socket])
            }
        }
        if pid > 0 {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        for controller in ["cpu", "cpuacct", "cpuset"] { rmdir("/sys/fs/cgroup/\(controller)/\(cgroupGroup)") }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A CA, and a server certificate it signed for 127.0.0.1 and localhost (P-256: quick handshakes).
    func makeCertificates() throws {
        let d = directory
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "\(d)/ca.key",
             "-out", "\(d)/ca.pem", "-days", "1", "-subj", "/CN=xenolith test CA"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "\(d)/server.key",
             "-out", "\(d)/server.csr", "-subj", "/CN=xenod"],
            ["x509", "-req", "-in", "\(d)/server.csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key", "-CAcreateserial",
             "-out", "\(d)/server.pem", "-days", "1", "-extfile", "\(d)/san.cnf"],
        ]
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(toFile: "\(d)/san.cnf", atomically: true, encoding: .utf8)
        for step in steps {
            let r = try Tool.run("/usr/bin/openssl", step, timeout: 30)
            guard r.status == 0 else { throw ProbeError("openssl \(step[0]): \(r.stderr)") }
        }
    }

    func start() throws {
        let log = directory + "/xenod.log"
        unlink(log)
        let binary = URL(fileURLWithPath: Xeno.binary).deletingLastPathComponent().path + "/xenod"
        pid = try Tool.spawn(binary, ["--socket", socket, "--state-dir", directory + "/state", "--run-dir", directory + "/run",
                                      "--xeno", Xeno.binary, "--listen", "127.0.0.1:0", "--tls-cert", directory + "/server.pem",
                                      "--tls-key", directory + "/server.key", "--token-file", tokenFile, "--cgroup", cgroupGroup],
                             stderr: log)
        // xenod logs the port it bound ("listening on https://127.0.0.1:PORT").
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, port == 0 {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let r = text.range(of: #"127\.0\.0\.1:([0-9]+)"#, options: .regularExpression) {
                port = Int(text[r].split(separator: ":")[1]) ?? 0
            }
            if port == 0 { usleep(50_000) }
        }
        guard port > 0 else { throw ProbeError("xenod did not say its port: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")") }
    }

    var log: String { (try? String(contentsOfFile: directory + "/xenod.log", encoding: .utf8)) ?? "" }

    /// The file descriptors xenod holds.
    var openFDs: Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }

    var isRunning: Bool { kill(pid, 0) == 0 && waitpid(pid, nil, WNOHANG) == 0 }

    struct Answer {
        let status: Int          // the HTTP status; 0 if none came
        let headers: String
        let body: String
        let curlStatus: Int32
        let curlError: String
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) }
    }

    /// One request with curl, checking xenod's certificate against the test CA.
    /// `token`: the bearer token to send (nil: none).
    func curl(_ method: String, _ path: String, token: String?, body: String? = nil, extra: [String] = [],
              scheme: String = "https") throws -> Answer {
        let headerFile = directory + "/headers-\(UUID().uuidString.prefix(8))"
        defer { unlink(headerFile) }
        var args = ["-s", "-S", "--max-time", "60", "--cacert", caFile, "-X", method, "-D", headerFile,
                    "\(scheme)://127.0.0.1:\(port)\(path)"]
        if let token { args += ["-H", "Authorization: Bearer \(token)"] }
        if let body { args += ["-H", "Content-Type: application/json", "--data-binary", body] }
        args += extra
        let r = try Tool.run("/usr/bin/curl", args, timeout: 90)
        let headers = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
        // The last status line: a 100 Continue may come first.
        let statusLine = headers.split(separator: "\r\n").last { $0.hasPrefix("HTTP/") } ?? ""
        let status = statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return Answer(status: status, headers: headers, body: r.stdout, curlStatus: r.status, curlError: r.stderr)
    }

    /// `xeno VERB...` against this xenod over HTTPS.
    func xeno(_ args: [String], token file: String? = nil) throws -> Xeno.Result {
        try Xeno.runWithEnvironment(["--host", url, "--cacert", caFile, "--token-file", file ?? tokenFile] + args,
                                    ["XENOD_SOCKET": directory + "/no-such-socket"])
    }

    /// The domain names xenod lists, asked on its Unix socket (no token).
    func domainNames() throws -> [String] {
        let r = try Xeno.runWithEnvironment(["list"], ["XENOD_SOCKET": socket])
        guard r.status == 0 else { throw ProbeError("list: \(r.stderr)") }
        return r.stdout.split(separator: "\n").dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) }
    }
}

extension Xeno {
    /// `xeno` with some environment variables set for it (and for nothing else in the test process).
    static func runWithEnvironment(_ args: [String], _ variables: [String: String], timeout: TimeInterval = 120) throws -> Result {
        var env = ProcessInfo.processInfo.environment
        for k in ["XENOD_URL", "XENOD_TOKEN_FILE", "XENOD_CACERT", "XENOD_SOCKET"] { env.removeValue(forKey: k) }
        env.merge(variables) { $1 }
        let r = try Tool.run(binary, args, environment: env, timeout: timeout)
        return Result(status: r.status, stdout: r.stdout, stderr: r.stderr)
    }
}

/// Runs a program with its output in files (no pipes for concurrently
/// spawned children to inherit), bounded in time.
enum Tool {
    struct Output { let status: Int32; let stdout: String; let stderr: String }

    static func spawn(_ path: String, _ args: [String], environment: [String: String]? = nil,
                      stdin: String = "/dev/null", stdout: String = "/dev/null", stderr: String = "/dev/null") throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc: Int32
        if let environment {
            let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer { envp.forEach { free($0) } }
            rc = posix_spawn(&pid, path, &actions, nil, argv, envp)
        } else {
            rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
        }
        guard rc == 0 else { throw ProbeError("cannot start \(path): \(String(cString: strerror(rc)))") }
        return pid
    }

    static func run(_ path: String, _ args: [String], environment: [String: String]? = nil, timeout: TimeInterval) throws -> Output {
        let dir = NSTemporaryDirectory() + "tool-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pid = try spawn(path, args, environment: environment, stdout: dir + "/out", stderr: dir + "/err")
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(timeout)
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline { kill(pid, SIGKILL); waitpid(pid, &status, 0); break }
            usleep(10_000)
        }
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Output(status: code,
                      stdout: (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: dir + "/err", encoding: .utf8)) ?? "")
    }
}

/// A TCP connection to 127.0.0.1:port, or -1.
func connectTCP(port: Int) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return -1 }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let ok = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if ok != 0 { close(fd); return -1 }
    return fd
}

let httpsToolsPresent = FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")
