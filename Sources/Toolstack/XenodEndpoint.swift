import CTLS
import Glibc
import UnixSockets

/// Where the verbs find xenod: its Unix socket (no token: the socket's
/// mode is the access control), or `https://HOST[:PORT]` with a bearer
/// token and the CA that signed xenod's certificate.
///
///     XENOD_URL / --host         https://HOST:PORT (default: the Unix socket)
///     XENOD_TOKEN_FILE / --token-file   the bearer token, one line
///     XENOD_CACERT / --cacert    CA certificates (PEM) to check xenod's certificate with
///                                (default: the system's)
///     XENOD_SOCKET               the Unix socket (default /run/xenolith/xenod.sock)
enum XenodEndpoint {
    case unix(path: String)
    case https(host: String, port: String, tokenFile: String?, caFile: String?)

    /// The options that set the variables above; they may come before the verb or right after it.
    static let options: [String: String] = ["--host": "XENOD_URL", "--token-file": "XENOD_TOKEN_FILE", "--cacert": "XENOD_CACERT"]

    /// Takes the leading connection options off `args` into the environment.
    static func takeOptions(_ args: [String]) throws -> [String] {
        var rest = args[...]
        while let flag = rest.first, let variable = options[flag] {
            rest = rest.dropFirst()
            guard let value = rest.first else { throw ToolstackError("\(flag) needs a value") }
            rest = rest.dropFirst()
            setenv(variable, value, 1)
        }
        return Array(rest)
    }

    static func environment(_ name: String) -> String? {
        guard let p = getenv(name), p.pointee != 0 else { return nil }
        return String(cString: p)
    }

    static func current() throws -> XenodEndpoint {
        guard let url = environment("XENOD_URL") else {
            return .unix(path: environment("XENOD_SOCKET") ?? "/run/xenolith/xenod.sock")
        }
        return try parse(url)
    }

    static func parse(_ url: String) throws -> XenodEndpoint {
        guard url.hasPrefix("https://") else {
            throw ToolstackError("'\(url)': xenod's TCP API is HTTPS only (https://HOST:PORT)")
        }
        var authority = Substring(url.dropFirst(8))
        if authority.hasSuffix("/") { authority = authority.dropLast() }
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("@") else {
            throw ToolstackError("'\(url)': give only https://HOST:PORT")
        }
        var host: Substring, port: Substring = "443"
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw ToolstackError("'\(url)': unclosed [") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw ToolstackError("'\(url)': expected :PORT after ]") }
                port = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            port = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty, let p = Int(port), p > 0, p < 65536 else { throw ToolstackError("'\(url)': bad host or port") }
        return .https(host: String(host), port: String(port),
                      tokenFile: environment("XENOD_TOKEN_FILE"), caFile: environment("XENOD_CACERT"))
    }

    /// A connection ready for one request, and the header lines this
    /// endpoint adds to it (the token).
    func open() throws -> (connection: any ClientConnection, extraHeaders: String) {
        switch self {
        case .unix(let path):
            do { return (SocketConnection(fd: try UnixSocket.connect(path: path)), "") } catch {
                throw ToolstackError("cannot reach xenod: \(error) (is xenod running? XENOD_SOCKET sets the path)")
            }
        case .https(let host, let port, let tokenFile, let caFile):
            var header = ""
            if let tokenFile { header = "Authorization: Bearer \(try Self.readToken(tokenFile))\r\n" }
            return (try TLSConnection(host: host, port: port, caFile: caFile), header)
        }
    }

    static func readToken(_ path: String) throws -> String {
        let text = try Toolstack.readFile(path, limit: 4096, what: "token file")
        var bytes = Array(text.utf8)
        while let last = bytes.last, last == 10 || last == 13 { bytes.removeLast() }
        guard !bytes.isEmpty, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw ToolstackError("token file \(path): not a token (one line of printable characters)")
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// One request's connection, plain or TLS.
protocol ClientConnection {
    func sendAll(_ bytes: [UInt8]) -> Bool
    /// Bytes read, 0 at the end, < 0 on an error.
    func receive(_ buffer: inout [UInt8]) -> Int
    func close()
}

struct SocketConnection: ClientConnection {
    let fd: Int32
    func sendAll(_ bytes: [UInt8]) -> Bool { UnixSocket.sendAll(fd, bytes) }
    func receive(_ buffer: inout [UInt8]) -> Int { buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
    func close() { Glibc.close(fd) }
}

/// HTTPS to xenod: TCP, then a TLS handshake that checks xenod's
/// certificate against the CA and the host name (or IP address) asked for.
final class TLSConnection: ClientConnection {
    private let fd: Int32
    private let context: OpaquePointer
    private let stream: OpaquePointer

    /// A create waits for the guest's VMM to answer (up to a minute on xenod's side).
    static let timeoutSeconds = 120

    init(host: String, port: String, caFile: String?) throws {
        // OpenSSL writes with write(2): a server that hangs up must not kill us with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        fd = try Self.connect(host: host, port: port)
        var error = [CChar](repeating: 0, count: 512)
        guard let context = ctls_client_context(caFile, &error, error.count) else {
            Glibc.close(fd)
            throw ToolstackError(Self.text(error))
        }
        guard let stream = ctls_connect(context, fd, host, &error, error.count) else {
            ctls_context_free(context)
            Glibc.close(fd)
            throw ToolstackError("https://\(host):\(port): \(Self.text(error))")
        }
        self.context = context
        self.stream = stream
    }

    static func text(_ buffer: [CChar]) -> String { buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } }

    static func connect(host: String, port: String) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, port, &hints, &list)
        guard rc == 0 else { throw ToolstackError("cannot reach xenod at \(host): \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(list) }
        var reason = "no address"
        var entry = list
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { reason = String(cString: strerror(errno)); continue }
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                UnixSocket.setReceiveTimeout(fd, seconds: timeoutSeconds)
                UnixSocket.setSendTimeout(fd, seconds: timeoutSeconds)
                return fd
            }
            reason = String(cString: strerror(errno))
            Glibc.close(fd)
        }
        throw ToolstackError("cannot reach xenod at \(host):\(port): \(reason)")
    }

    func sendAll(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { ctls_write(stream, $0.baseAddress, $0.count) }
            guard n > 0 else { return false }
            off += n
        }
        return true
    }

    func receive(_ buffer: inout [UInt8]) -> Int {
        buffer.withUnsafeMutableBytes { ctls_read(stream, $0.baseAddress, $0.count) }
    }

    func close() {
        ctls_close(stream)
        ctls_context_free(context)
        Glibc.close(fd)
    }
}
