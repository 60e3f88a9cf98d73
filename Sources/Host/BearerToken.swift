import Glibc

/// The secret a TCP client must present as `Authorization: Bearer TOKEN`
/// (RFC 6750). It is read once from a file only its owner may read, as
/// ssh treats a private key; the Unix socket needs none (its mode 0600 is
/// its access control).
public struct BearerToken: Sendable {
    let secret: [UInt8]

    /// Shorter tokens are refused: a guessable token is no protection.
    static let minimumLength = 16
    static let maximumLength = 4096

    public init(file path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HostError("token file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { throw HostError("token file \(path): not a regular file") }
        guard st.st_mode & 0o077 == 0 else {
            throw HostError("token file \(path): readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while bytes.count <= Self.maximumLength {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw HostError("token file \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        try self.init(secret: bytes, from: path)
    }

    init(secret raw: [UInt8], from path: String = "token") throws {
        var bytes = raw
        while let last = bytes.last, last == 10 || last == 13 { bytes.removeLast() }   // a file's trailing newline
        guard bytes.count >= Self.minimumLength, bytes.count <= Self.maximumLength else {
            throw HostError("token file \(path): the token must be \(Self.minimumLength) to \(Self.maximumLength) bytes")
        }
        // What may appear in an HTTP header value after "Bearer ".
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw HostError("token file \(path): the token must be printable ASCII without spaces")
        }
        secret = bytes
    }

    /// nil when the request carries the token; otherwise the 401 to send.
    /// Nothing else of the request is looked at, so nothing happens.
    func refusal(_ request: HTTPServer.Request) -> HTTPServer.Response? {
        guard let value = request.headers["authorization"] else {
            return Self.unauthorized("this API needs a bearer token (Authorization: Bearer TOKEN)", challenge: "Bearer realm=\"xenod\"")
        }
        let words = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard words.count == 2, words[0].lowercased() == "bearer",
              Self.constantTimeEqual(Array(words[1].utf8), secret) else {
            return Self.unauthorized("the bearer token is not valid",
                                     challenge: "Bearer realm=\"xenod\", error=\"invalid_token\"")
        }
        return nil
    }

    static func unauthorized(_ message: String, challenge: String) -> HTTPServer.Response {
        var response = HTTPServer.Response.error(401, message)
        response.headers.append(("WWW-Authenticate", challenge))
        return response
    }

    /// Equal without a data-dependent branch or early exit: the time taken
    /// depends on the secret's length only, never on where a guess differs.
    static func constantTimeEqual(_ given: [UInt8], _ secret: [UInt8]) -> Bool {
        var difference = UInt(bitPattern: given.count ^ secret.count)
        for i in 0..<secret.count {
            let g = i < given.count ? given[i] : 0
            difference |= UInt(g ^ secret[i])
        }
        return difference == 0
    }
}
