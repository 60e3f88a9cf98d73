import Foundation

/// Runs the built `xeno` binary as a user would, with optional standard input.
struct Xeno {
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["XENO_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/xeno").path
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        /// Console lines the guest printed that are not kernel log lines.
        /// Every line the guest printed, kernel log lines included.
        var allLines: [String] {
            stdout.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: .whitespaces) }
        }
        /// The guest's lines without the kernel's "[ time ]" log lines.
        var consoleLines: [String] {
            stdout.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: .whitespaces) }
                .filter { !$0.hasPrefix("[") }
        }
        /// The lines between the kit's readiness line and its exit line.
        var commandOutput: [String] {
            let lines = consoleLines
            guard let start = lines.firstIndex(where: { $0.hasPrefix("XENOLITH-READY") }) else { return [] }
            let end = lines.firstIndex(where: { $0.hasPrefix("XENOLITH-EXIT") }) ?? lines.count
            return Array(lines[(start + 1)..<end]).filter { !$0.isEmpty }
        }
        var readiness: String? { consoleLines.first { $0.hasPrefix("XENOLITH-READY") } }
        var exitLine: String? { consoleLines.first { $0.hasPrefix("XENOLITH-EXIT") } }
    }

    /// Spawns xeno with stdin/stdout/stderr on temporary files (no pipes to
    /// leak into concurrently spawned children), waits up to `timeout`.
    /// `signal`: once the console shows `after`, send `signal` to xeno.
    static func run(_ arguments: [String], input: String? = nil, timeout: TimeInterval = 240,
                    signal: (after: String, signal: Int32)? = nil,
                    script: [(after: String, send: String)] = [],
                    hostSteps: [(after: String, run: (pid_t) -> Void)] = [],
                    environment: [String: String] = [:]) throws -> Result {
        let dir = NSTemporaryDirectory() + "xeno-test-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inPath = dir + "/in", outPath = dir + "/out", errPath = dir + "/err"
        FileManager.default.createFile(atPath: inPath, contents: (input ?? "").data(using: .utf8))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // A script types into the console through a FIFO, each line once its
        // cue has appeared; our end is close-on-exec, so no other child holds it.
        var scriptFD: Int32 = -1
        let fifoPath = dir + "/console"
        if !script.isEmpty {
            guard mkfifo(fifoPath, 0o600) == 0 else { throw NSError(domain: "mkfifo", code: Int(errno)) }
            scriptFD = open(fifoPath, O_RDWR | O_CLOEXEC)
        }
        defer { if scriptFD >= 0 { close(scriptFD) } }
        posix_spawn_file_actions_addopen(&actions, 0, !script.isEmpty ? fifoPath : input == nil ? "/dev/null" : inPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = ([binary] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // `environment` overrides this process's variables for xeno alone
        // (setenv would reach every test running in parallel).
        var env: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") }
        var e = environ
        while let entry = e.pointee {
            let text = String(cString: entry)
            if !environment.keys.contains(where: { text.hasPrefix($0 + "=") }) { env.append(strdup(text)) }
            e += 1
        }
        env.append(nil)
        defer { env.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, binary, &actions, nil, argv, env)
        guard rc == 0 else { throw NSError(domain: "posix_spawn", code: Int(rc)) }
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(timeout)
        var signalled = false
        var step = 0, searchFrom = 0
        var actionStep = 0, actionFrom = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if step < script.count, let out = try? String(contentsOfFile: outPath, encoding: .utf8) {
                let utf8 = Array(out.utf8)
                let cue = Array(script[step].after.utf8)
                if utf8.count >= searchFrom + cue.count,
                   let at = (searchFrom...(utf8.count - cue.count)).first(where: { utf8[$0..<($0 + cue.count)].elementsEqual(cue) }) {
                    _ = script[step].send.withCString { write(scriptFD, $0, strlen($0)) }
                    searchFrom = at + cue.count
                    step += 1
                }
            }
            // Host-side steps (control requests and the like), each once its
            // cue has appeared after the previous one's; given xeno's pid.
            if actionStep < hostSteps.count, let out = try? String(contentsOfFile: outPath, encoding: .utf8) {
                let utf8 = Array(out.utf8)
                let cue = Array(hostSteps[actionStep].after.utf8)
                if utf8.count >= actionFrom + cue.count,
                   let at = (actionFrom...(utf8.count - cue.count)).first(where: { utf8[$0..<($0 + cue.count)].elementsEqual(cue) }) {
                    actionFrom = at + cue.count
                    hostSteps[actionStep].run(pid)
                    actionStep += 1
                }
            }
            if let signal, !signalled,
               let out = try? String(contentsOfFile: outPath, encoding: .utf8), out.contains(signal.after) {
                kill(pid, signal.signal)
                signalled = true
            }
            if Date() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                break
            }
            usleep(50_000)
        }
        let exited = (status & 0x7f) == 0
        let code: Int32 = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return Result(status: code, stdout: out, stderr: err)
    }
}

final class Locked<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
}

let kvmUsable = access("/dev/kvm", R_OK | W_OK) == 0
let kitDirectory = (ProcessInfo.processInfo.environment["XENOLITH_CACHE"] ?? "/var/cache/xenolith") + "/kit"
let kitBuilt = FileManager.default.fileExists(atPath: kitDirectory + "/vmlinuz")
    && FileManager.default.fileExists(atPath: kitDirectory + "/initrd.img")
