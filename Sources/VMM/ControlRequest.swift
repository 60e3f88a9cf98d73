/// One request on the control socket: a line of printable ASCII words
/// separated by single spaces. Requests come from whoever can open the
/// socket, so parsing is strict and every refusal says why in one line.
enum ControlRequest: Equatable, Sendable {
    case info
    case setVCPUs(Int)
    case setMemory(bytes: UInt64)

    /// The longest request line accepted, without its newline.
    static let maxLength = 256

    static let usage = "info, vcpu-set N, mem-set SIZE"

    /// Parses one line (without its newline).
    static func parse(_ line: [UInt8]) -> Result<ControlRequest, ControlError> {
        guard line.count <= maxLength else { return .failure(ControlError("request longer than \(maxLength) bytes")) }
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
