import Foundation
import Testing
@testable import Host

/// The pieces every TCP request passes through: the bearer token check,
/// the route table, the --listen address.
@Suite("xenod's access checks")
struct HostAccessTests {
    func request(_ headers: [String: String], method: String = "GET", path: String = "/v1/domains") -> HTTPServer.Request {
        HTTPServer.Request(method: method, path: path, query: [:], headers: headers, body: Data())
    }

    @Test("the token: equal only when every byte and the length match")
    func constantTimeEqual() {
        let secret = Array("0123456789abcdef-secret".utf8)
        #expect(BearerToken.constantTimeEqual(secret, secret))
        #expect(!BearerToken.constantTimeEqual(Array(secret.dropLast()), secret))
        #expect(!BearerToken.constantTimeEqual(secret + [0], secret))
        #expect(!BearerToken.constantTimeEqual([], secret))
        for i in secret.indices {
            var other = secret
            other[i] ^= 1
            #expect(!BearerToken.constantTimeEqual(other, secret), "differs at \(i)")
        }
    }

    @Test("401 without the token, with another scheme or a wrong one; through with it")
    func refusals() throws {
        let token = try BearerToken(secret: Array("s3cret-token-of-24-bytes\n".utf8))
        #expect(token.refusal(request(["authorization": "Bearer s3cret-token-of-24-bytes"])) == nil)
        #expect(token.refusal(request(["authorization": "bearer s3cret-token-of-24-bytes"])) == nil, "the scheme is case-insensitive")
        for value in [nil, "", "Bearer", "Bearer ", "Basic s3cret-token-of-24-bytes", "Bearer s3cret-token-of-24-byte",
                      "Bearer s3cret-token-of-24-bytes2", "Bearer S3CRET-TOKEN-OF-24-BYTES"] as [String?] {
            let refusal = token.refusal(request(value.map { ["authorization": $0] } ?? [:]))
            #expect(refusal?.status == 401, "\(String(describing: value))")
            #expect(refusal?.headers.contains { $0.0 == "WWW-Authenticate" && $0.1.hasPrefix("Bearer realm=\"xenod\"") } == true)
        }
    }

    @Test("tokens that are short, have spaces or control bytes are refused; so is a file others can read")
    func tokenFiles() throws {
        #expect(throws: HostError.self) { try BearerToken(secret: Array("short".utf8)) }
        #expect(throws: HostError.self) { try BearerToken(secret: Array("has a space in the token".utf8)) }
        #expect(throws: HostError.self) { try BearerToken(secret: Array("tab\there-in-the-token-xx".utf8)) }
        let path = NSTemporaryDirectory() + "xenod-token-\(getpid())"
        defer { unlink(path) }
        FileManager.default.createFile(atPath: path, contents: Data("a-long-enough-token-0123\n".utf8), attributes: [.posixPermissions: 0o640])
        #expect(throws: HostError.self) { try BearerToken(file: path) }
        chmod(path, 0o600)
        #expect(try BearerToken(file: path).secret == Array("a-long-enough-token-0123".utf8))
    }

    @Test("routes: {name} takes one non-empty segment; 405 lists the methods a path takes")
    func routes() {
        #expect(HostRoutes.refusal(method: "GET", path: "/v1/domains") == nil)
        #expect(HostRoutes.refusal(method: "POST", path: "/v1/domains/web/mem-set") == nil)
        #expect(HostRoutes.refusal(method: "GET", path: "/v1/domains//mem-set")?.status == 404)
        #expect(HostRoutes.refusal(method: "GET", path: "/v1/domains/web/")?.status == 404)
        #expect(HostRoutes.refusal(method: "GET", path: "v1/domains")?.status == 404)
        let put = HostRoutes.refusal(method: "PUT", path: "/v1/domains/web")
        #expect(put?.status == 405 && put?.headers.first { $0.0 == "Allow" }?.1 == "GET, DELETE")
    }

    @Test("--listen takes HOST:PORT and [IPV6]:PORT")
    func listenAddresses() throws {
        #expect(try TCPListener.split("127.0.0.1:8443") == ("127.0.0.1", 8443))
        #expect(try TCPListener.split("[::1]:0") == ("::1", 0))
        #expect(try TCPListener.split("0.0.0.0:65535") == ("0.0.0.0", 65535))
        for bad in ["8443", "host:", "1.2.3.4:65536", "[::1]8443", "[::1:80", "1.2.3.4:-1"] {
            #expect(throws: HostError.self, "\(bad)") { try TCPListener.split(bad) }
        }
        #expect(throws: HostError.self) { try TCPListener.listen("localhost:0") }   // numeric addresses only
        let (fd, bound) = try TCPListener.listen("127.0.0.1:0")
        defer { close(fd) }
        #expect(bound.hasPrefix("127.0.0.1:") && bound != "127.0.0.1:0")
    }
}
