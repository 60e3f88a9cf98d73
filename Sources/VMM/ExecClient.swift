import Glibc
import UnixSockets

/// `xeno exec [--timeout SECONDS] (NAME | --control PATH) [--] COMMAND...`:
/// runs COMMAND (words joined by spaces, as ssh does) with `sh -c` in a
/// running PV guest through its agent, prints its output (stdout and stderr,
/// merged) on stdout and exits with its status. The command's stdin is
/// /dev/null.
///
/// Exit status: the command's; 127 when it could not be run (no guest by
/// that name, no agent answering); 124 when `--timeout` stopped it; 2 for a
/// usage error; 1 for any other refusal. Every failure is one line on stderr.
public enum ExecClient {
    public static let usage = "usage: xeno exec [--timeout SECONDS] (NAME | --control PATH) [--] COMMAND..."

    public static func run(_ args: [String]) -> Int32 {
        var i = 0
        var socket: String?
        var name: String?
        var timeout = 0
        while i < args.count {
            let a = args[i]
            if a == "--control", i + 1 < args.count {
                socket = args[i + 1]
                i += 2
            } else if a == "--timeout", i + 1 < args.count {
                guard let t = Int(args[i + 1]), t >= 1, t <= 999_999 else {
                    Runner.fail("exec: --timeout '\(args[i + 1])' is not a number of seconds (1 to 999999)")
                    return 2
                }
                timeout = t
                i += 2
            } else if a.hasPrefix("--") && a != "--" {
                Runner.fail("exec: unknown option '\(a)' (\(usage))")
                return 2
            } else if socket == nil && name == nil && a != "--" {
                name = a
                i += 1
            } else {
                break
            }
        }
        if i < args.count && args[i] == "--" { i += 1 }
        let words = args[i...]
        guard socket != nil || name != nil, !words.isEmpty else {
            Runner.fail(usage)
            return 2
        }
        if let name, socket == nil, let why = RunDirectory.checkName(name) {
            Runner.fail("exec: '\(name)' is not a guest name: \(why)")
            return 2
        }
        let command = Array(words.joined(separator: " ").utf8)
        guard command.count <= ControlRequest.maxCommandBytes else {
            Runner.fail("exec: the command is longer than \(ControlRequest.maxCommandBytes) bytes")
            return 2
        }
        let path = socket ?? RunDirectory.controlPath(name!)
        let fd: Int32
        do { fd = try UnixSocket.connect(path: path) } catch {
            if let name, socket == nil {
                Runner.fail("exec: no guest named '\(name)' is running (nothing listens at \(path))")
            } else {
                Runner.fail("exec: \(error)")
            }
            return 127
        }
        defer { close(fd) }
        guard UnixSocket.sendAll(fd, Array("exec \(timeout) ".utf8) + Base64.encode(command) + [UInt8(ascii: "\n")]) else {
            Runner.fail("exec: \(path) hung up before the request was sent")
            return 127
        }
        return readReply(fd, from: path)
    }

    /// Reads `data` lines (decoded to stdout) up to the final `ok status=N` or `error ...`.
    private static func readReply(_ fd: Int32, from path: String) -> Int32 {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var line: [UInt8] = []
        var output: [UInt8] = []
        output.reserveCapacity(64 << 10)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                flush(&output)
                Runner.fail("exec: \(path) closed the connection before the command's status came")
                return 127
            }
            var start = 0
            while start < n {
                guard let nl = buffer[start..<n].firstIndex(of: UInt8(ascii: "\n")) else {
                    line += buffer[start..<n]
                    if line.count > 1 << 20 {
                        Runner.fail("exec: the reply from \(path) is not line-based")
                        return 1
                    }
                    break
                }
                line += buffer[start..<nl]
                start = nl + 1
                if line.starts(with: "data ".utf8) {
                    guard Base64.decode(line.dropFirst(5), into: &output) else {
                        Runner.fail("exec: malformed output line from \(path)")
                        return 1
                    }
                } else if line.starts(with: "ok status=".utf8) {
                    flush(&output)
                    guard let status = Int32(String(decoding: line.dropFirst(10), as: UTF8.self)), status >= 0, status <= 255 else {
                        Runner.fail("exec: malformed status from \(path)")
                        return 1
                    }
                    return status
                } else {
                    flush(&output)
                    let text = String(decoding: line, as: UTF8.self)
                    let why = text.hasPrefix("error ") ? String(text.dropFirst(6)) : text
                    Runner.fail("exec: \(why)")
                    if why.hasPrefix("agent:") { return 127 }
                    if why.hasPrefix("timeout:") { return 124 }
                    return 1
                }
                line.removeAll(keepingCapacity: true)
            }
            flush(&output)      // as it comes: a command may print slowly
        }
    }

    private static func flush(_ output: inout [UInt8]) {
        var off = 0
        while off < output.count {
            let n = output[off...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; break }
            off += n
        }
        output.removeAll(keepingCapacity: true)
    }
}
