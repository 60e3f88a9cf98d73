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

    """ + hostVerbsUsage

    static var socketPath: String {
        if let p = getenv("XENOD_SOCKET") { return String(cString: p) }
        return "/run/xenolith/xenod.sock"
    }

    /// Runs `verb` with its arguments; the process's exit status.
    public static func run(_ verb: String, _ args: [String]) -> Int32 {
        do {
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
            guard bytes.count <= 256 << 10 else { throw ToolstackError("\(path): larger than 256 KiB; not a domain configuration") }
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

/// One HTTP/1.1 request over a Unix socket, its JSON answer; an error
/// status becomes an error carrying the server's `error` text.
enum HTTPClient {
    static func request(socket path: String, method: String, path target: String, body: String? = nil) throws -> JSONValue {
        let fd: Int32
        do { fd = try UnixSocket.connect(path: path) } catch {
            throw ToolstackError("cannot reach xenod: \(error) (is xenod running? XENOD_SOCKET sets the path)")
        }
        defer { close(fd) }
        let payload = Array((body ?? "").utf8)
        var message = Array("\(method) \(target) HTTP/1.1\r\nHost: xenod\r\nContent-Length: \(payload.count)\r\n".utf8)
        if body != nil { message += Array("Content-Type: application/json\r\n".utf8) }
        message += Array("\r\n".utf8) + payload
        guard UnixSocket.sendAll(fd, message) else { throw ToolstackError("xenod hung up") }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while response.count < 8 << 20 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        guard let split = findHeaderEnd(response) else { throw ToolstackError("xenod sent no complete answer") }
        let head = String(decoding: response[0..<split], as: UTF8.self)
        let statusWords = head.split(separator: " ", maxSplits: 2)
        guard statusWords.count >= 2, let status = Int(statusWords[1]) else { throw ToolstackError("xenod's answer has no status") }
        let json = JSONValue.parse(Array(response[(split + 4)...])) ?? .null
        guard status < 300 else { throw ToolstackError(json["error"]?.string ?? "xenod answered \(status)") }
        return json
    }

    static func findHeaderEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }
}
