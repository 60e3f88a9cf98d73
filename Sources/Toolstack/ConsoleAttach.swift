import Glibc
import UnixSockets

/// `xeno console NAME`: attaches this terminal to a domain's console socket
/// (its VMM's NAME.console.sock, found through xenod), as `xl console`
/// does. On a terminal it is raw and Ctrl-] detaches, as in `xeno run`;
/// piped input is sent as it comes (a Ctrl-] byte in it detaches too).
/// Ends when the user detaches or the domain's VMM goes away.
enum ConsoleAttach {
    static let detachKey: UInt8 = 0x1d

    static func run(domain: String) throws -> Int32 {
        guard !Toolstack.socketPath.contains("://") else {
            throw ToolstackError("console: attach on xenod's own host (the console is a Unix socket there), not over --host")
        }
        let r = try HTTPClient.request(socket: Toolstack.socketPath, method: "GET",
                                       path: "/v1/domains/\(Toolstack.escape(domain))/console")
        guard let path = r["socket"]?.string else { throw ToolstackError("xenod did not say where the console is") }
        let fd: Int32
        do { fd = try UnixSocket.connect(path: path) } catch {
            throw ToolstackError("cannot attach to domain '\(domain)''s console: \(error)")
        }
        defer { close(fd) }
        var saved = termios()
        let isTTY = isatty(0) == 1 && tcgetattr(0, &saved) == 0
        if isTTY {
            var raw = saved
            cfmakeraw(&raw)
            raw.c_oflag |= tcflag_t(OPOST | ONLCR)
            tcsetattr(0, TCSANOW, &raw)
            let hint = "Attached to domain '\(domain)''s console; Ctrl-] detaches.\r\n"
            _ = hint.withCString { write(2, $0, strlen($0)) }
        }
        defer { if isTTY { tcsetattr(0, TCSANOW, &saved) } }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var inputOpen = true
        while true {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: inputOpen ? 0 : -1, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                throw ToolstackError("console: poll: \(String(cString: strerror(errno)))")
            }
            if fds[0].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return 0 }                   // the VMM went away
                guard writeAll(1, buffer[0..<n]) else { return 0 }
            }
            if inputOpen && fds[1].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { inputOpen = false; continue }
                if let at = buffer[0..<n].firstIndex(of: detachKey) {
                    _ = UnixSocket.sendAll(fd, Array(buffer[0..<at]))
                    return 0
                }
                guard UnixSocket.sendAll(fd, Array(buffer[0..<n])) else { return 0 }
            }
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var done = bytes.startIndex
        while done < bytes.endIndex {
            let n = bytes[done...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }
}
