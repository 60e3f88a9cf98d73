import Foundation

/// glibc's accept4, which Swift's Glibc module does not export: the
/// connection must be close-on-exec from the start, or a VMM spawned by
/// another request in between would hold it open.
@_silgen_name("accept4")
private func acceptCloseOnExec(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?,
                               _ length: UnsafeMutablePointer<socklen_t>?, _ flags: Int32) -> Int32

/// What a connection's bytes go through: the socket itself, or TLS over it.
protocol HTTPStream {
    /// Bytes read (> 0), 0 at the end of the stream, < 0 on an error or timeout.
    func receive(_ buffer: UnsafeMutableRawBufferPointer) -> Int
    /// Bytes written (> 0), < 0 on an error.
    func send(_ bytes: UnsafeRawBufferPointer) -> Int
    func finish()
}

/// A plain connection: the Unix socket's.
struct SocketStream: HTTPStream {
    let fd: Int32
    func receive(_ buffer: UnsafeMutableRawBufferPointer) -> Int { recv(fd, buffer.baseAddress, buffer.count, 0) }
    func send(_ bytes: UnsafeRawBufferPointer) -> Int { Foundation.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
    func finish() {}
}

/// A small HTTP/1.1 server on a listening socket: one request per
/// connection (the reply says `Connection: close`), a thread per
/// connection up to a bound, strict limits on what it reads. Whoever can
/// open the socket can send anything, so every limit answers with a status
/// and a reason instead of failing. With a TLS context every connection is
/// TLS; with an `authenticate` check every request passes through it
/// before any route sees it.
final class HTTPServer: @unchecked Sendable {
    struct Request {
        let method: String
        let path: String
        let query: [String: String]
        let headers: [String: String]
        let body: Data
        /// The client's address (`IP:PORT`) on TCP; empty on the Unix socket.
        var peer = ""
    }

    struct Response: Error {
        var status: Int
        var contentType = "application/json"
        var body: Data
        /// Further header lines (WWW-Authenticate, Allow).
        var headers: [(String, String)] = []

        static func json(_ status: Int, _ object: Any) -> Response {
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            return Response(status: status, body: data + Data("\n".utf8))
        }

        static func error(_ status: Int, _ message: String) -> Response {
            json(status, ["error": message])
        }
    }

    static let maxHeaderBytes = 16 << 10
    static let maxBodyBytes = 1 << 20
    static let maxConnections = 256
    /// On TCP, one client address may hold at most half of them, so one
    /// host holding connections open cannot lock the others out.
    static let maxConnectionsPerAddress = maxConnections / 2
    static let idleSeconds = 10
    /// The whole request (TLS handshake, headers, body) must arrive within
    /// this: a client that trickles bytes (slowloris) cannot hold one of the
    /// connections for longer.
    static let requestSeconds = 20

    private let listener: Int32
    private let handler: @Sendable (Request) -> Response
    private let tls: TLSServerContext?
    private let authenticate: (@Sendable (Request) -> Response?)?
    private let active = NSLock()
    private var connections = 0
    /// TCP connections open per client address (IP without the port).
    private var perAddress: [String: Int] = [:]
    /// Each connection still reading its request: when it must be in by.
    private var deadlines: [Int32: Double] = [:]

    /// `authenticate`: nil to let a request through, or the refusal to send.
    init(listener: Int32, tls: TLSServerContext? = nil, authenticate: (@Sendable (Request) -> Response?)? = nil,
         handler: @escaping @Sendable (Request) -> Response) {
        self.listener = listener
        self.tls = tls
        self.authenticate = authenticate
        self.handler = handler
    }

    /// Accepts connections until the process ends.
    func serve() {
        let reaper = Thread { [self] in reapLateRequests() }
        reaper.stackSize = 64 << 10
        reaper.start()
        while true {
            var address = sockaddr_storage()
            var addressLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    acceptCloseOnExec(listener, $0, &addressLength, Int32(SOCK_CLOEXEC.rawValue))
                }
            }
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE {
                    if errno == EMFILE || errno == ENFILE { usleep(10_000) }
                    continue
                }
                return
            }
            let peer = Self.numeric(&address, addressLength)
            let host = peer.lastIndex(of: ":").map { String(peer[..<$0]) } ?? ""
            let admitted = active.withLock { () -> Bool in
                guard connections < Self.maxConnections else { return false }
                if !host.isEmpty {
                    guard perAddress[host, default: 0] < Self.maxConnectionsPerAddress else { return false }
                    perAddress[host, default: 0] += 1
                }
                connections += 1
                return true
            }
            guard admitted else {
                // On the TLS port a plain answer could not be read, and a
                // handshake would spend what the limit saves: just close.
                if tls == nil { send(SocketStream(fd: client), .error(503, "too many connections")) }
                close(client)
                continue
            }
            let thread = Thread { [self] in
                handle(client, peer: peer)
                close(client)
                active.withLock {
                    connections -= 1
                    if !host.isEmpty {
                        perAddress[host, default: 1] -= 1
                        if perAddress[host] == 0 { perAddress[host] = nil }
                    }
                }
            }
            thread.stackSize = 512 << 10
            thread.start()
        }
    }

    /// `IP:PORT` of an IPv4 or IPv6 peer; empty for a Unix socket's.
    static func numeric(_ address: inout sockaddr_storage, _ length: socklen_t) -> String {
        guard address.ss_family == sa_family_t(AF_INET) || address.ss_family == sa_family_t(AF_INET6) else { return "" }
        var host = [CChar](repeating: 0, count: 64), port = [CChar](repeating: 0, count: 8)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), &port, socklen_t(port.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard rc == 0 else { return "" }
        let h = host.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let p = port.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return (h.contains(":") ? "[\(h)]" : h) + ":" + p
    }

    private func handle(_ fd: Int32, peer: String) {
        var timeout = timeval(tv_sec: Self.idleSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        active.withLock { deadlines[fd] = Self.now() + Double(Self.requestSeconds) }
        defer { active.withLock { _ = deadlines.removeValue(forKey: fd) } }
        let stream: any HTTPStream
        if let tls {
            if Self.startsWithPlainHTTP(fd) {
                refusePlainHTTP(fd)
                return
            }
            // A peer that does not speak TLS (garbage) fails here and is
            // closed without an answer: it could not read one.
            guard case .success(let s) = tls.accept(fd) else { return }
            stream = s
        } else {
            stream = SocketStream(fd: fd)
        }
        defer { stream.finish() }
        let request = read(stream)
        // The request is in: what the handler takes (a create waits for its VMM) is not bounded here.
        active.withLock { deadlines[fd] = .infinity }
        switch request {
        case .success(var request):
            request.peer = peer
            if let refusal = authenticate?(request) { send(stream, refusal); return }
            send(stream, handler(request))
        case .failure(let refusal): send(stream, refusal)
        }
    }

    /// Whether the first byte is an upper-case letter (GET, POST, ...) where
    /// TLS would start with a handshake record (0x16).
    static func startsWithPlainHTTP(_ fd: Int32) -> Bool {
        var first: UInt8 = 0
        return recv(fd, &first, 1, Int32(MSG_PEEK)) == 1 && first >= 0x41 && first <= 0x5A
    }

    /// Says so in plain HTTP, then reads what the client sent (up to 64 KiB,
    /// a second at most) so that closing does not reset the connection
    /// before the client has read the answer. Nothing is acted on.
    private func refusePlainHTTP(_ fd: Int32) {
        send(SocketStream(fd: fd), .error(400, "this port speaks TLS only: use https://"))
        shutdown(fd, Int32(SHUT_WR))
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var sink = [UInt8](repeating: 0, count: 4096)
        var drained = 0
        while drained < 64 << 10 {
            let n = recv(fd, &sink, sink.count, 0)
            if n <= 0 { break }
            drained += n
        }
    }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Ends the reading of requests that are past their deadline: shutdown
    /// wakes the thread blocked in recv (or in the TLS handshake), which
    /// then answers nothing and closes. A connection leaves `deadlines`
    /// (under the lock) before its descriptor is closed, so a number reused
    /// by a newer connection is never shut down here.
    private func reapLateRequests() {
        while true {
            sleep(1)
            let now = Self.now()
            active.withLock {
                for (fd, deadline) in deadlines where deadline < now {
                    shutdown(fd, Int32(SHUT_RDWR))
                    deadlines[fd] = .infinity
                }
            }
        }
    }

    private func read(_ stream: any HTTPStream) -> Result<Request, Response> {
        var buffer = [UInt8](repeating: 0, count: 8192)
        var received: [UInt8] = []
        var headerEnd: Int?
        while headerEnd == nil {
            let n = buffer.withUnsafeMutableBytes { stream.receive($0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return .failure(.error(400, "connection closed before the request's headers ended")) }
            let searchFrom = max(0, received.count - 3)
            received += buffer[0..<n]
            if let r = Self.find([13, 10, 13, 10], in: received, from: searchFrom) { headerEnd = r }
            // The limit holds wherever the end falls (a TLS record brings up to 16 KiB at once).
            guard (headerEnd ?? received.count) <= Self.maxHeaderBytes else {
                return .failure(.error(431, "request headers exceed \(Self.maxHeaderBytes) bytes"))
            }
        }
        let head = String(decoding: received[0..<headerEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else {
            return .failure(.error(400, "malformed request line"))
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { return .failure(.error(400, "malformed header line")) }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        if headers["transfer-encoding"] != nil { return .failure(.error(501, "chunked request bodies are not supported")) }
        let length: Int
        if let text = headers["content-length"] {
            guard let n = Int(text), n >= 0 else { return .failure(.error(400, "bad Content-Length")) }
            guard n <= Self.maxBodyBytes else { return .failure(.error(413, "request body exceeds \(Self.maxBodyBytes) bytes")) }
            length = n
        } else {
            length = 0
        }
        var body = Array(received[(headerEnd! + 4)...])
        guard body.count <= length else { return .failure(.error(400, "more body than Content-Length says")) }
        // curl asks before sending a body over 1 KiB, and waits a second for the answer otherwise.
        if body.count < length, headers["expect"]?.lowercased() == "100-continue" {
            _ = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8).withUnsafeBytes { stream.send($0) }
        }
        while body.count < length {
            let want = min(buffer.count, length - body.count)
            let n = buffer.withUnsafeMutableBytes { stream.receive(UnsafeMutableRawBufferPointer(rebasing: $0[0..<want])) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return .failure(.error(400, "connection closed inside the request body")) }
            body += buffer[0..<n]
        }
        let target = String(requestLine[1])
        let pathPart = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query: [String: String] = [:]
        if pathPart.count == 2 {
            for pair in pathPart[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                query[String(kv[0])] = kv.count == 2 ? String(kv[1]).removingPercentEncoding ?? String(kv[1]) : ""
            }
        }
        let path = String(pathPart[0]).removingPercentEncoding ?? String(pathPart[0])
        return .success(Request(method: String(requestLine[0]), path: path, query: query, headers: headers, body: Data(body)))
    }

    private func send(_ stream: any HTTPStream, _ response: Response) {
        let extra = response.headers.map { "\($0.0): \($0.1)\r\n" }.joined()
        let head = "HTTP/1.1 \(response.status) \(Self.reason(response.status))\r\n"
            + "Content-Type: \(response.contentType)\r\nContent-Length: \(response.body.count)\r\n\(extra)Connection: close\r\n\r\n"
        let bytes = Array(head.utf8) + Array(response.body)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { stream.send($0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            sent += n
        }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in from...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 413: "Payload Too Large"
        case 431: "Request Header Fields Too Large"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        default: "Error"
        }
    }
}
