/// One request on the control socket: a line of printable ASCII words
/// separated by single spaces. Requests come from whoever can open the
/// socket, so parsing is strict and every refusal says why in one line.
enum ControlRequest: Equatable, Sendable {
    case info
    /// Counters for xenod's metrics: VM exits, and the PV devices' I/O.
    case stats
    case setVCPUs(Int)
    case setMemory(bytes: UInt64)
    case pause
    case unpause
    /// Suspends the guest, writes it to the file at this absolute path and ends the run.
    case save(path: String)
    /// Runs a command in the guest through its agent: the command as
    /// base64 (checked, not decoded: the guest agent decodes it), and a
    /// limit on its run time in seconds (0: none).
    case exec(base64Command: [UInt8], timeoutSeconds: Int)
    /// Asks the guest to power off or reboot itself, as Xen's toolstack
    /// does (GuestShutdown.swift).
    case shutdown(reboot: Bool)

    /// The longest request line accepted, without its newline.
    static let maxLength = 256

    /// `exec`'s command: at most 64 KiB once decoded.
    static let maxCommandBytes = 64 << 10
    /// The longest `exec` line: `exec`, a timeout of up to 6 digits, the command's base64.
    static let maxExecLength = "exec 999999 ".utf8.count + Base64.encodedLength(maxCommandBytes)

    /// The line limit for a line that starts with `prefix`.
    static func lengthLimit<C: Collection>(startingWith prefix: C) -> Int where C.Element == UInt8 {
        prefix.starts(with: "exec ".utf8) ? maxExecLength : maxLength
    }

    static let usage = "info, stats, vcpu-set N, mem-set SIZE, pause, unpause, save PATH, exec SECONDS BASE64, shutdown poweroff|reboot"

    /// Parses one line (without its newline).
    static func parse(_ line: [UInt8]) -> Result<ControlRequest, ControlError> {
        let limit = lengthLimit(startingWith: line)
        guard line.count <= limit else { return .failure(ControlError("request longer than \(limit) bytes")) }
        guard !line.isEmpty else { return .failure(ControlError("empty request (\(usage))")) }
        guard line.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
            return .failure(ControlError("request has a byte that is not printable ASCII"))
        }
        let words = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        guard !words.contains(where: \.isEmpty) else {
            return .failure(ControlError("malformed request: separate words with single spaces"))
        }
        let verb = words[0], args = Array(words.dropFirst())
        switch verb {
        case "info":
            guard args.isEmpty else { return .failure(ControlError("info takes no arguments")) }
            return .success(.info)
        case "stats":
            guard args.isEmpty else { return .failure(ControlError("stats takes no arguments")) }
            return .success(.stats)
        case "pause", "unpause":
            guard args.isEmpty else { return .failure(ControlError("\(verb) takes no arguments")) }
            return .success(verb == "pause" ? .pause : .unpause)
        case "save":
            guard args.count == 1 else { return .failure(ControlError("usage: save PATH (absolute, no spaces)")) }
            guard args[0].hasPrefix("/") else { return .failure(ControlError("save: '\(args[0].prefix(64))' is not an absolute path")) }
            return .success(.save(path: args[0]))
        case "vcpu-set":
            guard args.count == 1 else { return .failure(ControlError("usage: vcpu-set N")) }
            let n = args[0]
            // Digits only (Int() would take a sign), and few enough not to overflow.
            guard n.utf8.count <= 4, n.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let count = Int(n) else {
                return .failure(ControlError("vcpu-set: '\(n.prefix(32))' is not a vCPU count"))
            }
            return .success(.setVCPUs(count))
        case "mem-set":
            guard args.count == 1 else { return .failure(ControlError("usage: mem-set SIZE (like --memory: 512M, 1G)")) }
            do {
                return .success(.setMemory(bytes: try RunOptions.parseSize(args[0])))
            } catch {
                return .failure(ControlError("mem-set: \(error)"))
            }
        case "exec":
            guard args.count == 2 else { return .failure(ControlError("usage: exec SECONDS BASE64-COMMAND (0 seconds: no limit)")) }
            let t = args[0]
            guard t.utf8.count <= 6, t.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let seconds = Int(t) else {
                return .failure(ControlError("exec: '\(t.prefix(32))' is not a number of seconds"))
            }
            let command = Array(args[1].utf8)
            guard let length = Base64.decodedLength(command) else {
                return .failure(ControlError("exec: the command is not well-formed base64"))
            }
            guard length > 0 else { return .failure(ControlError("exec: empty command")) }
            guard length <= maxCommandBytes else {
                return .failure(ControlError("exec: the command is longer than \(maxCommandBytes) bytes"))
            }
            return .success(.exec(base64Command: command, timeoutSeconds: seconds))
        case "shutdown":
            guard args.count == 1, args[0] == "poweroff" || args[0] == "reboot" else {
                return .failure(ControlError("usage: shutdown poweroff|reboot"))
            }
            return .success(.shutdown(reboot: args[0] == "reboot"))
        default:
            return .failure(ControlError("unknown request '\(verb.prefix(32))' (\(usage))"))
        }
    }
}

/// A refused control request: the text after `error ` in the reply.
struct ControlError: Error, CustomStringConvertible, Sendable {
    let description: String
    init(_ description: String) { self.description = description }
}
