import Foundation
import Testing

/// `xeno run --control PATH` and `xeno ctl`: the per-VM control socket, and
/// through it PV vCPU hot add/remove and the balloon, seen from inside the guest.
@Suite("the control socket: vCPU hotplug and the balloon", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"))
struct ControlSocketTests {
    static func socketPath(_ tag: String) -> String { NSTemporaryDirectory() + "xeno-ctl-\(tag)-\(getpid()).sock" }

    /// Sends raw bytes to the control socket; every reply line until it closes
    /// or `replies` lines have come.
    static func exchange(_ socket: String, _ bytes: [UInt8], replies: Int = 1, shutWrite: Bool = false) -> [String] {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return ["socket failed"] }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in socket.utf8.enumerated() { raw[i] = b }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return ["connect failed: errno \(errno)"] }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if shutWrite { shutdown(fd, Int32(SHUT_WR)) }
        var text: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while text.filter({ $0 == 10 }).count < replies {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            text += buffer[0..<n]
        }
        return String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    static func request(_ socket: String, _ line: String) -> String {
        exchange(socket, Array((line + "\n").utf8)).first ?? "no reply"
    }

    /// `xeno ctl` as a user runs it: status and stdout (through a file: a
    /// pipe would leak into the concurrently spawned xeno).
    static func ctl(_ args: [String]) -> (Int32, String) {
        let outPath = NSTemporaryDirectory() + "xeno-ctl-out-\(getpid())-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        defer { unlink(outPath) }
        guard let out = FileHandle(forWritingAtPath: outPath) else { return (-1, "") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Xeno.binary)
        p.arguments = ["ctl"] + args
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return (-1, "") }
        p.waitUntilExit()
        try? out.close()
        return (p.terminationStatus, (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "")
    }

    /// A guest command that runs `script` whole: the kernel hands init at
    /// most 32 words, so the script travels as one base64 word.
    static func guestCommand(_ script: String) -> String {
        "echo \(Data(script.utf8).base64EncodedString())|base64 -d >/tmp/script; . /tmp/script"
    }

    /// VmRSS of process `pid`, in KiB.
    static func residentKiB(_ pid: pid_t) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return -1 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
    }

    @Test("requests are parsed strictly: bad ones get one-line errors, the VMM carries on; xeno ctl's status follows the reply")
    func refusesBadRequests() throws {
        let socket = Self.socketPath("bad")
        let seen = Locked<[String: String]>([:])
        let r = try Xeno.run(["run", "--name", "ctl-guest", "--vcpus", "1", "--maxvcpus", "2", "--control", socket,
                              "--", "sleep 600"], timeout: 240, hostSteps: [
            (after: "XENOLITH-READY", run: { pid in
                var s: [String: String] = [:]
                s["mode"] = (try? FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int).map { String($0!, radix: 8) } ?? "none"
                let bad = ["", "bogus", "info extra", "vcpu-set", "vcpu-set -1", "vcpu-set 0", "vcpu-set 3",
                           "vcpu-set 99999999999999999999", "vcpu-set  1", " info", "mem-set 10", "mem-set 1T",
                           "mem-set 1024M", "mem-set", "INFO", "pause now", "unpause 1"]
                for b in bad { s["bad:" + b] = Self.request(socket, b) }
                s["binary"] = Self.exchange(socket, [0x69, 0x01, 0xff, 0x0a]).first ?? "no reply"
                s["long"] = Self.exchange(socket, [UInt8](repeating: 0x61, count: 5000)).first ?? "no reply"
                s["unended"] = Self.exchange(socket, Array("info".utf8), shutWrite: true).first ?? "no reply"
                // Two requests on one connection get two replies, in order.
                s["two"] = Self.exchange(socket, Array("info\nvcpu-set 1\n".utf8), replies: 2).joined(separator: "|")
                s["info"] = Self.request(socket, "info")
                let ok = Self.ctl([socket, "info"]), refused = Self.ctl([socket, "vcpu-set", "9"])
                s["ctl-ok"] = "\(ok.0) \(ok.1)"
                s["ctl-error"] = "\(refused.0) \(refused.1)"
                seen.set(s)
                kill(pid, SIGTERM)
            }),
        ])
        let s = seen.get()
        #expect(r.status == 143, "stderr: \(r.stderr)")
        #expect(s["mode"] == "600")
        for (key, reply) in s where key.hasPrefix("bad:") || key == "binary" || key == "long" || key == "unended" {
            #expect(reply.hasPrefix("error "), "\(key) -> \(reply)")
        }
        #expect(s["bad:vcpu-set 3"]?.contains("1 to 2") == true, "\(s["bad:vcpu-set 3"] ?? "")")
        #expect(s["bad:mem-set 1024M"]?.contains("maximum") == true, "\(s["bad:mem-set 1024M"] ?? "")")
        #expect(s["long"]?.contains("longer than") == true)
        let info = s["info"] ?? ""
        #expect(info.hasPrefix("ok name=ctl-guest mode=pv vcpus-online=1 vcpus-max=2"), "info: \(info)")
        #expect(info.contains("memory-target-kib=524288 memory-max-kib=524288"), "info: \(info)")
        #expect(s["two"]?.hasPrefix("ok name=ctl-guest") == true && s["two"]?.hasSuffix("|ok vcpus=1") == true, "\(s["two"] ?? "")")
        #expect(s["ctl-ok"]?.hasPrefix("0 ok name=ctl-guest") == true, "\(s["ctl-ok"] ?? "")")
        #expect(s["ctl-error"]?.hasPrefix("1 error vcpu-set 9") == true, "\(s["ctl-error"] ?? "")")
        #expect(!FileManager.default.fileExists(atPath: socket), "the socket is removed at exit")
    }

    @Test("bad --maxvcpus and a ctl with no guest behind it: one line on stderr, non-zero status")
    func badOptions() throws {
        for args in [["--vcpus", "4", "--maxvcpus", "2"], ["--maxvcpus", "33"], ["--maxvcpus", "x"]] {
            let r = try Xeno.run(["run"] + args, timeout: 30)
            #expect(r.status == 2, "\(args): status \(r.status)")
            #expect(r.stderr.hasPrefix("xeno: --maxvcpus") && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
        // HVM guests take --maxvcpus too (ACPI CPU hotplug), within the same bounds.
        let hvm = try Xeno.run(["run", "--hvm", "--vcpus", "2", "--maxvcpus", "1"], timeout: 30)
        #expect(hvm.status == 2 && hvm.stderr.hasPrefix("xeno: --maxvcpus"), "\(hvm.stderr)")
        let none = try Xeno.run(["ctl", NSTemporaryDirectory() + "xeno-no-such-\(getpid()).sock", "info"], timeout: 30)
        #expect(none.status == 1 && none.stderr.hasPrefix("xeno: ctl: cannot connect to"), "\(none.stderr)")
        let usage = try Xeno.run(["ctl", "only-a-path"], timeout: 30)
        #expect(usage.status == 2, "\(usage.stderr)")
    }

    /// The guest onlines CPUs the toolstack made available (what a udev
    /// rule does in a Xen guest; the kernel offlines removed ones itself)
    /// and prints nproc whenever it changes; each control request waits for
    /// the guest to show the previous count.
    @Test("vcpu-set while the guest runs: 1 → 8 → 2, each seen by nproc in the guest")
    func hotplugVCPUs() throws {
        let socket = Self.socketPath("cpu")
        let replies = Locked<[String]>([])
        let loop = "last=0; seen=0; while :; do for f in /sys/devices/system/cpu/cpu*/online; do read v < $f && [ $v = 0 ] && echo 1 > $f; done 2>/dev/null;"
            + " n=$(nproc); [ $n != $last ] && echo CPUS-NOW $n && last=$n; [ $n = 8 ] && seen=1; [ $seen = 1 ] && [ $n = 2 ] && break; sleep 1; done;"
            + " grep -c ^processor /proc/cpuinfo"
        func send(_ line: String) -> (pid_t) -> Void {
            { _ in replies.set(replies.get() + [Self.request(socket, line)]) }
        }
        let r = try Xeno.run(["run", "--vcpus", "1", "--maxvcpus", "8", "--control", socket, "--", Self.guestCommand(loop)], timeout: 300, hostSteps: [
            (after: "CPUS-NOW 1", run: send("vcpu-set 8")),
            (after: "CPUS-NOW 8", run: send("info")),
            (after: "", run: send("vcpu-set 2")),
            (after: "CPUS-NOW 2", run: send("info")),
        ])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let counts = r.consoleLines.filter { $0.hasPrefix("CPUS-NOW") }
        #expect(counts.first == "CPUS-NOW 1" && counts.contains("CPUS-NOW 8") && counts.last == "CPUS-NOW 2", "nproc: \(counts)")
        #expect(r.commandOutput.last == "2", "output: \(r.commandOutput.suffix(4))")
        #expect(r.exitLine == "XENOLITH-EXIT 0")
        let rs = replies.get()
        #expect(rs.count == 4, "replies: \(rs)")
        guard rs.count == 4 else { return }
        #expect(rs[0] == "ok vcpus=8")
        #expect(rs[1].contains("vcpus-online=8 vcpus-max=8"), "\(rs[1])")
        #expect(rs[2] == "ok vcpus=2")
        #expect(rs[3].contains("vcpus-online=2 vcpus-max=8"), "\(rs[3])")
    }

    /// The guest fills memory (so the host really holds it), then waits for
    /// its MemTotal to fall by about half and to come back; the host sets
    /// the target at each cue and reads xeno's resident size.
    @Test("mem-set 256M on a 512M guest: MemTotal and the VMM's RSS fall; mem-set 512M brings MemTotal back")
    func balloon() throws {
        let socket = Self.socketPath("mem")
        let seen = Locked<[String: Int]>([:])
        let replies = Locked<[String]>([])
        let script = "m() { while read k v u; do [ $k = MemTotal: ] && break; done < /proc/meminfo; echo $v; }; t0=$(m); p=MEM;"
            + " mkdir /fill; mount -t tmpfs -o size=400M tmpfs /fill; dd if=/dev/zero of=/fill/f bs=1M count=300 2>/dev/null; rm /fill/f;"
            + " echo $p-TOUCHED $t0; while [ $(m) -gt $((t0-250000)) ]; do sleep 1; done; echo $p-LOW $(m);"
            + " while [ $(m) -lt $((t0-8000)) ]; do sleep 1; done; echo $p-HIGH $(m)"
        let r = try Xeno.run(["run", "--memory", "512M", "--control", socket, "--", Self.guestCommand(script)], timeout: 300, hostSteps: [
            (after: "MEM-TOUCHED", run: { pid in
                seen.set(seen.get().merging(["rss-full": Self.residentKiB(pid)]) { $1 })
                replies.set(replies.get() + [Self.request(socket, "mem-set 256M")])
            }),
            (after: "MEM-LOW", run: { pid in
                seen.set(seen.get().merging(["rss-low": Self.residentKiB(pid)]) { $1 })
                replies.set(replies.get() + [Self.request(socket, "info"), Self.request(socket, "mem-set 512M")])
            }),
        ])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.exitLine == "XENOLITH-EXIT 0", "console: \(r.consoleLines.suffix(8))")
        func value(_ tag: String) -> Int? {
            r.consoleLines.first { $0.hasPrefix(tag + " ") }.flatMap { Int($0.split(separator: " ")[1]) }
        }
        let start = value("MEM-TOUCHED") ?? 0, low = value("MEM-LOW") ?? 0, high = value("MEM-HIGH") ?? 0
        #expect(start > 400_000 && low > 0 && start - low >= 250_000 && start - low <= 270_000, "MemTotal \(start) -> \(low) kB")
        #expect(high >= start - 8000, "MemTotal back to \(high) kB of \(start)")
        let s = seen.get()
        let full = s["rss-full"] ?? 0, reduced = s["rss-low"] ?? 0
        // The guest touched ~300 MiB before; giving 256 MiB back must free most of it on the host.
        #expect(full > 300_000 && reduced > 0 && full - reduced >= 150_000, "xeno VmRSS \(full) -> \(reduced) KiB")
        let rs = replies.get()
        #expect(rs.count == 3 && rs[0] == "ok memory-target-kib=262144" && rs[2] == "ok memory-target-kib=524288", "replies: \(rs)")
        if rs.count == 3 {
            #expect(rs[1].contains("memory-target-kib=262144 memory-max-kib=524288"), "\(rs[1])")
            // By the cue the guest has given back at least 250000 KiB of its 262144.
            let current = rs[1].split(separator: " ").first { $0.hasPrefix("memory-current-kib=") }
                .flatMap { Int($0.dropFirst("memory-current-kib=".count)) } ?? 0
            #expect(current >= 262_144 && current <= 524_288 - 250_000, "\(rs[1])")
        }
        print("balloon: MemTotal \(start) -> \(low) -> \(high) kB; xeno VmRSS \(full) -> \(reduced) KiB")
    }
}
