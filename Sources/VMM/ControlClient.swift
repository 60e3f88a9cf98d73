import Glibc
import UnixSockets

/// `xeno ctl SOCKET REQUEST...`: sends one request line to a running
/// guest's control socket and prints the reply line.
public enum ControlClient {
    /// Exit status: 0 for an `ok` reply, 1 for `error` or no reply.
    public static func run(_ args: [String]) -> Int32 {
        guard args.count >= 2 else {
            Runner.fail("usage: xeno ctl SOCKET info | stats | vcpu-set N | mem-set SIZE")
            return 2
        }
        let request = args.dropFirst().joined(separator: " ")
        guard request.utf8.count <= ControlRequest.maxLength, !request.utf8.contains(UInt8(ascii: "\n")) else {
            Runner.fail("ctl: the request must be one line of at most \(ControlRequest.maxLength) bytes")
            return 2
        }
        let fd: Int32
        do { fd = try UnixSocket.connect(path: args[0]) } catch {
            Runner.fail("ctl: \(error)")
            return 1
        }
        defer { close(fd) }
        guard UnixSocket.sendAll(fd, Array((request + "\n").utf8)) else {
            Runner.fail("ctl: \(args[0]) hung up before the request was sent")
            return 1
        }
        // The reply is one line; read to its newline (bounded, like requests).
        var reply: [UInt8] = []
        var byte: UInt8 = 0
        while reply.count < 4096 {
            let n = read(fd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 || byte == UInt8(ascii: "\n") { break }
            reply.append(byte)
        }
        guard !reply.isEmpty else {
            Runner.fail("ctl: no reply from \(args[0])")
            return 1
        }
        let text = String(decoding: reply, as: UTF8.self)
        print(text)
        return text.hasPrefix("ok") ? 0 : 1
    }
}
