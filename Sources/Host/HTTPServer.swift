import Foundation

/// glibc's accept4, which Swift's Glibc module does not export: the
/// connection must be close-on-exec from the start, or a VMM spawned by
/// another request in between would hold it open.
@_silgen_name("accept4")
private func acceptCloseOnExec(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?,
                               _ length: UnsafeMutablePointer<socklen_t>?, _ flags: Int32) -> Int32

/// A small HTTP/1.1 server on a listening socket: one request per
/// connection (the reply says `Connection: close`), a thread per
/// connection up to a bound, strict limits on what it reads. Whoever can
/// open the socket can send anything, so every limit answers with a status
/// and a reason instead of failing.
final class HTTPServer: @unchecked Sendable {
    struct Request {
        let method: String
        let path: String
        let query: [String: String]
        let headers: [String: String]
        let body: Data
    }

    struct Response: Error {
        var status: Int
        var contentType = "application/json"
        var body: Data

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
    static let idleSeconds = 10

    private let listener: Int32
    private let handler: @Sendable (Request) -> Response
    private let active = NSLock()
    private var connections = 0

    init(listener: Int32, handler: @escaping @Sendable (Request) -> Response) {
        self.listener = listener
        self.handler = handler
    }

    /// Accepts connections until the process ends.
    func serve() {
        while true {
            let client = acceptCloseOnExec(listener, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE {
                    if errno == EMFILE || errno == ENFILE { usleep(10_000) }
                    continue
                }
                return
            }
            let admitted = active.withLock { () -> Bool in
                guard connections < Self.maxConnections else { return false }
                connections += 1
                return true
            }
            guard admitted else {
                send(client, .error(503, "too many connections"))
                close(client)
                continue
            }
            let thread = Thread { [self] in
                handle(client)
                close(client)
                active.withLock { connections -= 1 }
            }
            thread.stackSize = 512 << 10
            thread.start()
        }
    }

    private func handle(_ fd: Int32) {
        var timeout = timeval(tv_sec: Self.idleSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        switch read(fd) {
        case .success(let request): send(fd, handler(request))
        case .failure(let refusal): send(fd, refusal)
        }
    }

    private func read(_ fd: Int32) -> Result<Request, Response> {
        var buffer = [UInt8](repeating: 0, count: 8192)
        var received: [UInt8] = []
        var headerEnd: Int?
        while headerEnd == nil {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return .failure(.error(400, "connection closed before the request's headers ended")) }
            let searchFrom = max(0, received.count - 3)
            received += buffer[0..<n]
            if let r = Self.find([13, 10, 13, 10], in: received, from: searchFrom) { headerEnd = r }
            guard received.count <= Self.maxHeaderBytes || headerEnd != nil else {
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
        while body.count < length {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, length - body.count), 0) }
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

    private func send(_ fd: Int32, _ response: Response) {
        let head = "HTTP/1.1 \(response.status) \(Self.reason(response.status))\r\n"
            + "Content-Type: \(response.contentType)\r\nContent-Length: \(response.body.count)\r\nConnection: close\r\n\r\n"
        let bytes = Array(head.utf8) + Array(response.body)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
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
        case 409: "Conflict"
        case 413: "Payload Too Large"
        case 431: "Request Header Fields Too Large"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        default: "Error"
        }
    }
}
