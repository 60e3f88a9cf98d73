import Glibc
import UnixSockets

/// `xeno`'s xl verbs: each one request to xenod's API on its Unix socket
/// (`$XENOD_SOCKET`, default /run/xenolith/xenod.sock), its answer printed
/// the way xl prints it.
public enum Toolstack {
    public static let verbs: Set<String> = Set(["create", "list", "destroy", "shutdown", "vcpu-set", "mem-set"]).union(hostVerbs)

    public static let usage = """
           xeno create CONFIG          start a domain from an xl.cfg file (through xenod)
           xeno list                   the domains: name, id, memory, vCPUs, state, CPU time
           xeno shutdown NAME          stop a domain's guest cleanly
           xeno destroy NAME           stop a domain at once
           xeno vcpu-set NAME N        set the vCPUs online (up to maxvcpus)
           xeno mem-set NAME SIZE      set the memory target (balloon)
           xeno [--host https://H:P --token-file F [--cacert CA]] VERB ...
                                       a remote xenod (or XENOD_URL, XENOD_TOKEN_FILE, XENOD_CACERT)

    """ + hostVerbsUsage

    /// Where xenod is, for `HTTPClient.request(socket:)`: its Unix socket
    /// or an https:// URL (XenodEndpoint says which variables choose).
    static var socketPath: String {
        XenodEndpoint.environment("XENOD_URL") ?? XenodEndpoint.environment("XENOD_SOCKET") ?? "/run/xenolith/xenod.sock"
    }

    /// `--host URL`, `--token-file FILE`, `--cacert FILE` before the verb:
    /// set into the environment; the rest of the arguments, or nil (said why).
    public static func takeConnectionOptions(_ args: [String]) -> [String]? {
        do { return try XenodEndpoint.takeOptions(args) } catch {
            let text = "xeno: \(error)\n"
            _ = text.withCString { write(2, $0, strlen($0)) }
            return nil
        }
    }

    /// Runs `verb` with its arguments; the process's exit status.
    public static func run(_ verb: String, _ arguments: [String]) -> Int32 {
        do {
            let args = try XenodEndpoint.takeOptions(arguments)
            switch (verb, args.count) {
            case ("create", 1):
                let text = try readConfig(args[0])
                let body = "{\"config\":\(JSONValue.quote(text)),\"path\":\(JSONValue.quote(args[0]))}"
                let r = try HTTPClient.request(socket: socketPath, method: "POST", path: "/v1/domains", body: body)
                print("domain \(r["name"]?.string ?? "?") created (id \(r["id"]?.int ?? 0))")
            case ("list", 0):
                let r = try HTTPClient.request(socket: socketPath, method: "GET", path: "/v1/domains")
                print(pad("Name", 24) + pad("ID", 6, right: true) + pad("Mem", 7, right: true) + pad("VCPUs", 6, right: true)
                      + "  " + pad("State", 13) + pad("Time(s)", 9, right: true))
                for d in r["domains"]?.array ?? [] {
                    let seconds = d["cpu_seconds"]?.number ?? 0
                    print(pad(d["name"]?.string ?? "?", 24) + pad(String(d["id"]?.int ?? 0), 6, right: true)
                          + pad(String(d["memory_mib"]?.int ?? 0), 7, right: true) + pad(String(d["vcpus"]?.int ?? 0), 6, right: true)
                          + "  " + pad(d["state"]?.string ?? "?", 13) + pad(String(Int(seconds * 10) / 10) + "." + String(Int(seconds * 10) % 10), 9, right: true))
                }
            case ("destroy", 1):
                _ = try HTTPClient.request(socket: socketPath, method: "DELETE", path: "/v1/domains/" + escape(args[0]))
            case ("shutdown", 1):
                _ = try HTTPClient.request(socket: socketPath, method: "POST", path: "/v1/domains/\(escape(args[0]))/shutdown")
            case ("vcpu-set", 2):
                guard let n = Int(args[1]) else { throw ToolstackError("vcpu-set: '\(args[1])' is not a number") }
                _ = try HTTPClient.request(socket: socketPath, method: "POST", path: "/v1/domains/\(escape(args[0]))/vcpu-set",
                                           body: "{\"vcpus\":\(n)}")
            case ("mem-set", 2):
                _ = try HTTPClient.request(socket: socketPath, method: "POST", path: "/v1/domains/\(escape(args[0]))/mem-set",
                                           body: "{\"memory\":\(JSONValue.quote(args[1]))}")
            default:
                if hostVerbs.contains(verb) { return try runHostVerb(verb, args) }
                throw ToolstackError("usage:\n" + usage)
            }
            return 0
        } catch {
            let text = "xeno \(verb): \(error)\n"
            _ = text.withCString { write(2, $0, strlen($0)) }
            return 1
        }
    }

    static func readConfig(_ path: String) throws -> String {
        try readFile(path, limit: 256 << 10, what: "not a domain configuration")
    }

    static func readFile(_ path: String, limit: Int, what: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ToolstackError("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw ToolstackError("\(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += buffer[0..<n]
            guard bytes.count <= limit else { throw ToolstackError("\(path): larger than \(limit >> 10) KiB; \(what)") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Percent-encodes everything but unreserved characters.
    static func escape(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || "-._~".utf8.contains(b) {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                let hex = String(b, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return out
    }

    static func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return right ? fill + s : s + fill
    }
}

struct ToolstackError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// One HTTP/1.1 request to xenod (its Unix socket, or HTTPS: see
/// XenodEndpoint), its JSON answer; an error status becomes an error
/// carrying the server's `error` text.
enum HTTPClient {
    /// `socket`: a Unix socket path or an https:// URL (`Toolstack.socketPath`).
    static func request(socket server: String, method: String, path target: String, body: String? = nil) throws -> JSONValue {
        let endpoint = server.hasPrefix("https://") || server.hasPrefix("http://") ? try XenodEndpoint.parse(server) : .unix(path: server)
        let (connection, extraHeaders) = try endpoint.open()
        defer { connection.close() }
        let payload = Array((body ?? "").utf8)
        var message = Array("\(method) \(target) HTTP/1.1\r\nHost: xenod\r\n\(extraHeaders)Content-Length: \(payload.count)\r\n".utf8)
        if body != nil { message += Array("Content-Type: application/json\r\n".utf8) }
        message += Array("\r\n".utf8) + payload
        guard connection.sendAll(message) else { throw ToolstackError("xenod hung up") }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while response.count < 8 << 20 {
            let n = connection.receive(&buffer)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        guard let split = findHeaderEnd(response) else { throw ToolstackError("xenod sent no complete answer") }
        let head = String(decoding: response[0..<split], as: UTF8.self)
        let statusWords = head.split(separator: " ", maxSplits: 2)
        guard statusWords.count >= 2, let status = Int(statusWords[1]) else { throw ToolstackError("xenod's answer has no status") }
        let body = Array(response[(split + 4)...])
        // A connection cut short (TLS without close_notify looks like an end) must not pass for an answer.
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            guard Int(line.dropFirst(15).trimmingCharacters(while: { $0 == " " })) == body.count else {
                throw ToolstackError("xenod's answer was cut short")
            }
        }
        let json = JSONValue.parse(body) ?? .null
        if status == 401, case .https(_, _, nil, _) = endpoint {
            throw ToolstackError((json["error"]?.string ?? "unauthorized") + " (XENOD_TOKEN_FILE or --token-file names the token's file)")
        }
        guard status < 300 else { throw ToolstackError(json["error"]?.string ?? "xenod answered \(status)") }
        return json
    }

    static func findHeaderEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }
}

extension Substring {
    func trimmingCharacters(while drop: (Character) -> Bool) -> Substring {
        var s = self
        while let f = s.first, drop(f) { s = s.dropFirst() }
        while let l = s.last, drop(l) { s = s.dropLast() }
        return s
    }
}
