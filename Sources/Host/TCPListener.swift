import Glibc

/// xenod's TCP endpoint: `--listen ADDR:PORT` with TLS and a bearer token,
/// all three or none (xenod refuses a TCP listener without them: the API
/// creates and destroys domains, so plaintext or anonymous access to it
/// from the network would hand the host to whoever reaches the port).
public struct TCPListenerOptions: Sendable {
    public var address: String
    public var certificateChain: String
    public var privateKey: String
    public var tokenFile: String

    public init(address: String, certificateChain: String, privateKey: String, tokenFile: String) {
        self.address = address
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.tokenFile = tokenFile
    }
}

enum TCPListener {
    /// Splits `HOST:PORT` or `[IPV6]:PORT`; HOST must be a numeric address
    /// (an operator says which interface; no name is resolved).
    static func split(_ address: String) throws -> (host: String, port: UInt16) {
        var host: Substring, port: Substring
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]"), address[address.index(after: close)...].hasPrefix(":") else {
                throw HostError("--listen \(address): use [IPV6]:PORT")
            }
            host = address[address.index(after: address.startIndex)..<close]
            port = address[address.index(close, offsetBy: 2)...]
        } else {
            guard let colon = address.lastIndex(of: ":") else { throw HostError("--listen \(address): use ADDRESS:PORT (e.g. 0.0.0.0:8443)") }
            host = address[..<colon]
            port = address[address.index(after: colon)...]
        }
        guard let p = UInt16(port) else { throw HostError("--listen \(address): '\(port)' is not a port number") }
        return (String(host), p)
    }

    /// A listening socket (close-on-exec, SO_REUSEADDR) and the address it
    /// is bound to, as `HOST:PORT` with the port the kernel chose for 0.
    static func listen(_ address: String) throws -> (fd: Int32, bound: String) {
        let (host, port) = try split(address)
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let info = list else {
            throw HostError("--listen \(address): '\(host)' is not a numeric IP address (\(String(cString: gai_strerror(rc))))")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HostError("--listen \(address): \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, Glibc.listen(fd, 128) == 0 else {
            let e = errno
            close(fd)
            throw HostError("--listen \(address): \(String(cString: strerror(e)))")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var boundPort = port
        withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        if storage.ss_family == sa_family_t(AF_INET) {
            boundPort = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) } }
        } else if storage.ss_family == sa_family_t(AF_INET6) {
            boundPort = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) } }
        }
        return (fd, (host.contains(":") ? "[\(host)]" : host) + ":\(boundPort)")
    }
}
