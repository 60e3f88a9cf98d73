import Foundation
import Testing

let isRoot = getuid() == 0

/// A PV guest's NIC on a host TAP device (netfront ↔ the VMM's netback),
/// checked with real TCP both ways.
@Suite("PV networks on TAP devices", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: isRoot, "needs root (creates TAP devices)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"))
struct NetworkTests {
    static func sh(_ command: String) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try? p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// A persistent TAP with the host's address on it, removed afterwards.
    struct HostTap {
        let name: String, subnet: Int
        var hostIP: String { "10.\(subnet).0.1" }
        var guestIP: String { "10.\(subnet).0.2" }
        init() throws {
            subnet = 100 + Int(getpid() % 100)
            name = "xt\(getpid() % 100000)"
            try #require(NetworkTests.sh("ip tuntap add dev \(name) mode tap && ip addr add \(hostIP)/24 dev \(name) && ip link set \(name) up") == 0)
        }
        func remove() { _ = NetworkTests.sh("ip link del \(name)") }
    }

    /// A real TCP server on the host side: accepts one connection, reads a
    /// request line, answers `body`.
    final class OneShotServer: @unchecked Sendable {
        let fd: Int32
        let port: UInt16
        init(address: String) throws {
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var one: Int32 = 1
            setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, 4)
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = 0
            inet_pton(AF_INET, address, &sa.sin_addr)
            let ok = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            let listening = ok == 0 && listen(s, 4) == 0
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
            fd = s
            port = UInt16(bigEndian: sa.sin_port)
            try #require(listening)
        }
        func serve(body: String) {
            Thread.detachNewThread { [self] in
                let c = accept(fd, nil, nil)
                guard c >= 0 else { return }
                var buf = [UInt8](repeating: 0, count: 4096)
                _ = read(c, &buf, buf.count)
                let reply = "HTTP/1.0 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
                _ = reply.withCString { write(c, $0, strlen($0)) }
                close(c)
            }
        }
        deinit { close(fd) }
    }

    @Test("the guest fetches a page from a host server and receives 1 MiB from a host client, byte-exact")
    func tcpBothWays() throws {
        let tap = try HostTap()
        defer { tap.remove() }
        let server = try OneShotServer(address: tap.hostIP)
        server.serve(body: "served-by-the-host")

        // The host's client: connects once the guest listens (it retries a
        // refused connection until the guest's listener is up), sends 1 MiB.
        let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }
        let digest = md5Hex(payload)
        let sent = Locked(false)
        let guestIP = tap.guestIP
        Thread.detachNewThread {
            let deadline = Date().addingTimeInterval(200)
            while Date() < deadline {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var sa = sockaddr_in()
                sa.sin_family = sa_family_t(AF_INET)
                sa.sin_port = UInt16(9000).bigEndian
                inet_pton(AF_INET, guestIP, &sa.sin_addr)
                let rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                if rc == 0 {
                    var off = 0
                    while off < payload.count {
                        let n = payload[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                        if n <= 0 { break }
                        off += n
                    }
                    close(fd)
                    sent.set(off == payload.count)
                    return
                }
                close(fd)
                usleep(100_000)     // the guest is not listening yet: try again
            }
        }
        let r = try Xeno.run(["run", "--net", "tap=\(tap.name),mac=00:16:3e:aa:bb:cc", "--",
                              "ip link set eth0 up && ip addr add \(tap.guestIP)/24 dev eth0 && cat /sys/class/net/eth0/address;",
                              "wget -q -O - http://\(tap.hostIP):\(server.port)/; echo;",
                              "nc -l -p 9000 | md5sum | cut -d' ' -f1"], timeout: 300)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.commandOutput == ["00:16:3e:aa:bb:cc", "served-by-the-host", digest], "console: \(r.consoleLines.suffix(12))")
        #expect(sent.get())
    }

    @Test("a bad MAC address and a TAP name that is too long are refused in one line")
    func badNICOptions() throws {
        let r1 = try Xeno.run(["run", "--net", "tap=xtbad,mac=01:00:5e:00:00:01"], timeout: 60)
        #expect(r1.status == 1 && r1.stderr.contains("not a unicast MAC"), "stderr: \(r1.stderr)")
        let r2 = try Xeno.run(["run", "--net", "tap=this-name-is-too-long"], timeout: 60)
        #expect(r2.status == 1 && r2.stderr.contains("longer than 15"), "stderr: \(r2.stderr)")
    }
}

/// md5 of `bytes` as hex, by the host's md5sum (what the guest's busybox prints).
func md5Hex(_ bytes: [UInt8]) -> String {
    let path = NSTemporaryDirectory() + "xeno-md5-\(getpid())-\(UUID().uuidString)"
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
    defer { unlink(path) }
    let p = Process()
    let pipe = Pipe()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/md5sum")
    p.arguments = [path]
    p.standardOutput = pipe
    try? p.run()
    p.waitUntilExit()
    return String(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(32))
}
