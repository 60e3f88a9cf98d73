import Foundation
import Glibc
import Testing

/// The guest's xenstore on a host Unix socket, driven by Debian's own
/// xenstore-utils.
@Suite("xenstore on a host socket, with Debian's xenstore-utils", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"),
       .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/xenstore-ls"), "needs xenstore-utils (scripts/setup.sh installs it)"))
struct XenStoreSocketTests {
    /// Runs a xenstore-utils tool against `socket`; its status and stdout.
    /// Output goes through a file, not a pipe: xeno is spawned concurrently
    /// and would inherit a pipe's write end, holding off its end of file.
    static func tool(_ name: String, _ args: [String], socket: String) -> (Int32, String) {
        // posix_spawn and waitpid on that pid, not Foundation's Process: under
        // the load of the full test run a Process's waitUntilExit from this
        // background thread once never returned.
        let outPath = NSTemporaryDirectory() + "xeno-xs-out-\(getpid())-\(UUID().uuidString)"
        defer { unlink(outPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let path = "/usr/bin/" + name
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = [strdup("XENSTORED_PATH=" + socket), nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, path, &actions, nil, argv, envp) == 0 else { return (-1, "") }
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(30)
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline { kill(pid, SIGKILL); waitpid(pid, &status, 0); return (-1, "") }
            usleep(10_000)
        }
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
        return (code, (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "")
    }

    /// Sends a header that claims a 1 MiB payload (the limit is 4 KiB);
    /// "closed" if the VMM hung up on it.
    static func sendGarbage(socket path: String) -> String {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else { return "no connection" }
        var header: [UInt32] = [2, 7, 0, 1 << 20]      // XS_READ, req 7, tx 0, len 1 MiB
        _ = write(fd, &header, 16)
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var byte: UInt8 = 0
        return read(fd, &byte, 1) == 0 ? "closed" : "still open"
    }

    @Test("xenstore-ls lists the running guest's nodes, write/read round-trip, and a control/sysrq write powers the guest off")
    func toolsDriveARunningGuest() throws {
        let socket = NSTemporaryDirectory() + "xeno-xs-\(getpid()).sock"
        let disk = NSTemporaryDirectory() + "xeno-xs-\(getpid()).img"
        FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        defer { unlink(disk) }
        let seen = Locked<[String: String]>([:])
        Thread.detachNewThread {
            // Wait for blkfront to connect: by then the guest kernel watches its control nodes.
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline {
                if Self.tool("xenstore-read", ["/local/domain/1/device/vbd/51712/state"], socket: socket).1 == "4\n" { break }
                usleep(100_000)
            }
            var s: [String: String] = [:]
            s["ls"] = Self.tool("xenstore-ls", ["/local/domain/1"], socket: socket).1
            s["write"] = String(Self.tool("xenstore-write", ["/local/domain/1/data/greeting", "hello-guest"], socket: socket).0)
            s["read"] = Self.tool("xenstore-read", ["/local/domain/1/data/greeting"], socket: socket).1
            s["garbage"] = Self.sendGarbage(socket: socket)
            s["after-garbage"] = Self.tool("xenstore-read", ["/local/domain/1/name"], socket: socket).1
            s["mode"] = (try? FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int).map { String($0!, radix: 8) } ?? "none"
            seen.set(s)
            _ = Self.tool("xenstore-write", ["/local/domain/1/control/sysrq", "o"], socket: socket)
        }
        let r = try Xeno.run(["run", "--name", "xs-guest", "--xenstore-socket", socket, "--disk", disk, "--", "sleep 600"], timeout: 300)
        let s = seen.get()
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.contains("sysrq: Power Off"), "console: \(r.consoleLines.suffix(8))")
        #expect(r.exitLine == nil)      // powered off from the host, not by the command ending
        #expect(s["ls"]?.contains("name = \"xs-guest\"") == true, "xenstore-ls: \(s["ls"] ?? "nothing")")
        #expect(s["ls"]?.contains("backend = \"/local/domain/0/backend/vbd/1/51712\"") == true)
        #expect(s["write"] == "0")
        #expect(s["read"] == "hello-guest\n")
        #expect(s["mode"] == "600")
        #expect(s["garbage"] == "closed", "a message claiming 1 MiB of payload must close that client only")
        #expect(s["after-garbage"] == "xs-guest\n")
    }
}
