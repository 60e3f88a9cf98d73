import Foundation
import Testing

/// xenod's API on TCP: TLS only, every request with the bearer token; what
/// a client without it, a client that is not TLS at all, or a hostile one
/// gets. curl (Debian's) is the client, under a CA made for the test.
@Suite("xenod over TCP: TLS and a bearer token", .serialized,
       .enabled(if: httpsToolsPresent, "needs curl and openssl (scripts/setup.sh installs them)"))
final class XenodTLSTests {
    let daemon: TLSDaemon

    init() throws { daemon = try TLSDaemon() }

    func config(_ name: String) throws -> String {
        """
        name = "\(name)"
        memory = 256
        vcpus = 1
        kernel = "\(kitDirectory)/vmlinuz"
        ramdisk = "\(kitDirectory)/initrd.img"
        extra = "console=hvc0"
        """
    }

    func createBody(_ name: String) throws -> String {
        let object = ["config": try config(name), "path": "/tls/\(name).cfg"]
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    @Test("no token, a wrong one, or another scheme: 401 with WWW-Authenticate and a JSON error, and nothing happens")
    func unauthorized() throws {
        let none = try daemon.curl("GET", "/v1/domains", token: nil)
        #expect(none.status == 401, "\(none.headers) \(none.curlError)")
        #expect(none.headers.contains("WWW-Authenticate: Bearer realm=\"xenod\""), "\(none.headers)")
        #expect((none.json as? [String: Any])?["error"] is String, "body: \(none.body)")

        // Near misses: a prefix of the token, the token and more, another case, another scheme.
        let misses = [String(daemon.token.dropLast()), daemon.token + "x", daemon.token.uppercased(), "wrong-token-wrong-token"]
        for miss in misses {
            let r = try daemon.curl("POST", "/v1/domains", token: miss, body: try createBody("intruder"))
            #expect(r.status == 401 && r.headers.contains("error=\"invalid_token\""), "\(miss): \(r.headers)")
        }
        let basic = try daemon.curl("GET", "/v1/domains", token: nil, extra: ["-H", "Authorization: Basic \(daemon.token)"])
        #expect(basic.status == 401)
        // The refused create changed nothing: no domain, no record.
        #expect(try daemon.domainNames().isEmpty)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: daemon.directory + "/state/domains"))?.isEmpty ?? true)
        // Each refusal is logged, with the client's address.
        #expect(daemon.log.contains("401 to 127.0.0.1:"), "log: \(daemon.log.suffix(400))")
        let metrics = try daemon.curl("GET", "/metrics", token: "wrong-token-wrong-token")
        #expect(metrics.status == 401 && !metrics.body.contains("xenolith_"), "no metrics without the token")
    }

    @Test("the right token works over TLS; the Unix socket needs none; xeno --host reaches it and checks the certificate")
    func authorized() throws {
        let list = try daemon.curl("GET", "/v1/domains", token: daemon.token)
        #expect(list.status == 200 && (list.json as? [String: Any])?["domains"] is [Any], "\(list.headers) \(list.body)")
        // The request reaches the API: a broken configuration is refused by the parser, naming file and line.
        let broken = try daemon.curl("POST", "/v1/domains", token: daemon.token,
                                     body: #"{"config": "name = \"b\"\nvcpus = lots\n", "path": "b.cfg"}"#)
        #expect(broken.status == 400 && broken.body.contains("b.cfg:2:"), "\(broken.status) \(broken.body)")
        // A client that asks before sending its body (Expect: 100-continue, as
        // .NET's does by default, and older curls for bodies over 1 KiB) is told to go on.
        let padding = String(repeating: "# a comment line to make the body larger than a KiB\n", count: 40)
        let large = try daemon.curl("POST", "/v1/domains", token: daemon.token, body: String(decoding: try JSONSerialization.data(
            withJSONObject: ["config": padding + "name = \"b\"\nvcpus = lots\n", "path": "large.cfg"]), as: UTF8.self),
            extra: ["-H", "Expect: 100-continue"])
        #expect(large.headers.hasPrefix("HTTP/1.1 100 Continue") && large.status == 400 && large.body.contains("large.cfg:42:"),
                "\(large.headers) \(large.body)")
        #expect(try daemon.domainNames().isEmpty)

        let viaXeno = try daemon.xeno(["list"])
        #expect(viaXeno.status == 0 && viaXeno.stdout.hasPrefix("Name"), "stderr: \(viaXeno.stderr)")
        let wrongFile = daemon.directory + "/wrong-token"
        try "not-the-token-at-all\n".write(toFile: wrongFile, atomically: true, encoding: .utf8)
        let refused = try daemon.xeno(["list"], token: wrongFile)
        #expect(refused.status == 1 && refused.stderr.contains("not valid"), "stderr: \(refused.stderr)")
        // Without the test CA, xenod's certificate is not trusted and nothing is sent.
        let untrusted = try Xeno.runWithEnvironment(["list"], ["XENOD_URL": daemon.url, "XENOD_TOKEN_FILE": daemon.tokenFile])
        #expect(untrusted.status == 1 && untrusted.stderr.contains("not trusted"), "stderr: \(untrusted.stderr)")
        let plain = try Xeno.runWithEnvironment(["list"], ["XENOD_URL": "http://127.0.0.1:\(daemon.port)"])
        #expect(plain.status == 1 && plain.stderr.contains("HTTPS only"), "stderr: \(plain.stderr)")
    }

    @Test("xenod refuses TCP without TLS and a token, and a token file others can read")
    func refusesInsecureListeners() throws {
        let binary = URL(fileURLWithPath: Xeno.binary).deletingLastPathComponent().path + "/xenod"
        let base = ["--socket", daemon.directory + "/other.sock", "--state-dir", daemon.directory + "/other-state",
                    "--run-dir", daemon.directory + "/other-run", "--xeno", Xeno.binary]
        let noTLS = try Tool.run(binary, base + ["--listen", "127.0.0.1:0", "--token-file", daemon.tokenFile], timeout: 20)
        #expect(noTLS.status == 2 && noTLS.stderr.contains("--listen needs --tls-cert"), "stderr: \(noTLS.stderr)")
        let open = daemon.directory + "/open-token"
        FileManager.default.createFile(atPath: open, contents: Data("a-token-of-enough-length\n".utf8), attributes: [.posixPermissions: 0o644])
        let readable = try Tool.run(binary, base + ["--listen", "127.0.0.1:0", "--tls-cert", daemon.directory + "/server.pem",
                                                    "--tls-key", daemon.directory + "/server.key", "--token-file", open], timeout: 20)
        #expect(readable.status == 2 && readable.stderr.contains("readable by others"), "stderr: \(readable.stderr)")
        let wrongKey = try Tool.run(binary, base + ["--listen", "127.0.0.1:0", "--tls-cert", daemon.directory + "/server.pem",
                                                    "--tls-key", daemon.directory + "/ca.key", "--token-file", daemon.tokenFile], timeout: 20)
        #expect(wrongKey.status == 2 && wrongKey.stderr.contains("ca.key: "), "stderr: \(wrongKey.stderr)")
        #expect(!FileManager.default.fileExists(atPath: daemon.directory + "/other.sock"), "nothing was served")
    }

    @Test("plain HTTP, garbage, huge headers and slow clients neither crash xenod nor hold up other clients")
    func hostileClients() throws {
        let baseline = daemon.openFDs
        // Plain HTTP to the TLS port is told to use TLS, and nothing happens.
        let plain = try daemon.curl("POST", "/v1/domains", token: daemon.token, body: try createBody("plain"), scheme: "http")
        let plainError = (plain.json as? [String: Any])?["error"] as? String ?? ""
        #expect(plain.status == 400 && plainError.contains("use https://"), "curl: \(plain.curlStatus) \(plain.headers) \(plain.body)")
        #expect(try daemon.domainNames().isEmpty)

        // Garbage instead of a ClientHello: the connection is closed.
        let garbage = connectTCP(port: daemon.port)
        #expect(garbage >= 0)
        var noise = [UInt8](repeating: 0, count: 4096)
        for i in noise.indices { noise[i] = UInt8(truncatingIfNeeded: i &* 7919 &+ 13) }
        _ = send(garbage, noise, noise.count, Int32(MSG_NOSIGNAL))
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(garbage, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var reply = [UInt8](repeating: 0, count: 512)
        var total = 0
        while true {
            let n = recv(garbage, &reply, reply.count, 0)
            if n <= 0 { #expect(n == 0 || errno == ECONNRESET, "closed, not timed out (errno \(errno))"); break }
            total += n
        }
        #expect(!String(decoding: reply[0..<min(total, reply.count)], as: UTF8.self).contains("HTTP/"))
        close(garbage)

        // Headers past the limit: 431, after the handshake, with or without the token.
        let huge = try daemon.curl("GET", "/v1/domains", token: daemon.token, extra: ["-H", "X-Padding: " + String(repeating: "a", count: 20_000)])
        #expect(huge.status == 431, "\(huge.headers) \(huge.curlError)")

        // Slow clients: connections that never finish a handshake, and one
        // that finishes it and then trickles a request it never ends.
        var slow: [Int32] = []
        for i in 0..<40 {
            let fd = connectTCP(port: daemon.port)
            #expect(fd >= 0)
            // Half the TLS record header of a ClientHello, or nothing at all.
            if i % 2 == 0 { _ = send(fd, [UInt8]([0x16, 0x03]), 2, Int32(MSG_NOSIGNAL)) }
            slow.append(fd)
        }
        // One that trickles a ClientHello a byte a second: never idle, never done.
        let trickler = connectTCP(port: daemon.port)
        _ = send(trickler, [UInt8]([0x16, 0x03, 0x01, 0x02, 0x00]), 5, Int32(MSG_NOSIGNAL))
        let fifo = daemon.directory + "/slow-client"
        #expect(mkfifo(fifo, 0o600) == 0)
        let fifoFD = open(fifo, O_RDWR | O_CLOEXEC)
        defer { close(fifoFD) }
        let sClient = try Tool.spawn("/usr/bin/openssl", ["s_client", "-quiet", "-CAfile", daemon.caFile, "-connect", "127.0.0.1:\(daemon.port)"],
                                     stdin: fifo, stdout: daemon.directory + "/slow-client.out", stderr: daemon.directory + "/slow-client.err")
        _ = "GET /v1/domains HTTP/1.1\r\nHost: x\r\n".withCString { write(fifoFD, $0, strlen($0)) }

        // Meanwhile others are answered.
        for _ in 0..<5 {
            let r = try daemon.curl("GET", "/v1/domains", token: daemon.token)
            #expect(r.status == 200, "\(r.curlError)")
        }
        // xenod drops the slow ones once they are idle for 10 s or their
        // time for a request is up (20 s), so they hold no thread or
        // descriptor after.
        let start = Date()
        let deadline = start.addingTimeInterval(45)
        var closed = Set<Int32>()
        var trickled = 0
        slow.append(trickler)
        while Date() < deadline && closed.count < slow.count {
            if !closed.contains(trickler) && Date().timeIntervalSince(start) >= Double(trickled) {
                _ = send(trickler, [UInt8]([0x01]), 1, Int32(MSG_NOSIGNAL))
                trickled += 1
            }
            for fd in slow where !closed.contains(fd) {
                var byte: UInt8 = 0
                if recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0 || errno == ECONNRESET { closed.insert(fd) }
            }
            usleep(200_000)
        }
        #expect(trickled > 12, "the trickling client was cut off by the request deadline, after \(trickled) bytes")
        #expect(closed.count == slow.count, "xenod closed \(closed.count) of \(slow.count) slow connections")
        var status: Int32 = 0
        var sClientEnded = false
        while Date() < deadline && !sClientEnded {
            sClientEnded = waitpid(sClient, &status, WNOHANG) == sClient
            if !sClientEnded { usleep(200_000) }
        }
        if !sClientEnded { kill(sClient, SIGKILL); waitpid(sClient, &status, 0) }
        #expect(sClientEnded, "the trickling client was cut off")
        slow.forEach { close($0) }
        #expect(daemon.isRunning)
        #expect(try daemon.curl("GET", "/v1/domains", token: daemon.token).status == 200, "xenod still answers")
        let settle = Date().addingTimeInterval(10)
        while daemon.openFDs > baseline && Date() < settle { usleep(100_000) }
        #expect(daemon.openFDs <= baseline, "descriptors: \(daemon.openFDs), \(baseline) before")
    }

    @Test("one client address cannot take all the connections: past 128 it is closed at once, others are still served")
    func connectionsPerAddress() throws {
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        for _ in 0..<130 {
            let fd = connectTCP(port: daemon.port)
            try #require(fd >= 0)
            held.append(fd)
        }
        // The last two are closed by xenod without a word; the first 128 wait for their handshake.
        func closed(_ fd: Int32) -> Bool {
            var byte: UInt8 = 0
            return recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0 || errno == ECONNRESET
        }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline && !(closed(held[128]) && closed(held[129])) { usleep(50_000) }
        #expect(closed(held[128]) && closed(held[129]), "connections past the per-address limit are closed")
        // A client from another address (127.0.0.2: loopback too) is served meanwhile.
        let other = try daemon.curl("GET", "/v1/domains", token: daemon.token, extra: ["--interface", "127.0.0.2"])
        #expect(other.status == 200, "\(other.curlError)")
        #expect(held.prefix(128).filter(closed).isEmpty, "the first 128 are still open")
    }

    @Test("1,000 concurrent requests over TLS (curl, 100 connections at a time) are all answered, and no descriptor leaks")
    func concurrentTLSRequests() throws {
        let before = daemon.openFDs
        let started = Date()
        let r = try Tool.run("/usr/bin/curl", ["-s", "--no-progress-meter", "--parallel", "--parallel-max", "100", "--cacert", daemon.caFile,
                                               "-H", "Authorization: Bearer \(daemon.token)", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code}\n",
                                               "\(daemon.url)/v1/domains?n=[1-500]", "\(daemon.url)/metrics?n=[1-500]"], timeout: 300)
        let codes = r.stdout.split(separator: "\n")
        let elapsed = Date().timeIntervalSince(started)
        print("1,000 TLS requests in \(String(format: "%.2f", elapsed)) s")
        #expect(codes.count == 1000 && codes.allSatisfy { $0 == "200" },
                "\(codes.count) answers, not 200: \(Dictionary(grouping: codes, by: { $0 }).mapValues(\.count)) \(r.stderr.prefix(300))")
        let settle = Date().addingTimeInterval(10)
        while daemon.openFDs > before && Date() < settle { usleep(100_000) }
        #expect(daemon.openFDs <= before, "descriptors: \(daemon.openFDs), \(before) before")
    }

    @Test("a domain created over TLS with xeno --host; a DELETE with a wrong token leaves it running",
          .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
          .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"))
    func domainOverTLS() throws {
        let path = daemon.directory + "/remote.cfg"
        try config("remote").write(toFile: path, atomically: true, encoding: .utf8)
        let created = try daemon.xeno(["create", path])
        #expect(created.status == 0 && created.stdout.contains("domain remote created"), "stderr: \(created.stderr)")
        let denied = try daemon.curl("DELETE", "/v1/domains/remote", token: "wrong-token-wrong-token")
        #expect(denied.status == 401)
        #expect(try daemon.domainNames() == ["remote"], "the domain is still there")
        let one = try daemon.curl("GET", "/v1/domains/remote", token: daemon.token)
        #expect(one.status == 200 && (one.json as? [String: Any])?["state"] as? String == "running", "\(one.body)")
        #expect(try daemon.xeno(["destroy", "remote"]).status == 0)
        #expect(try daemon.domainNames().isEmpty)
    }
}
