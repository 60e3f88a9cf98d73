import Foundation
import Testing

/// `xeno exec`: commands run in a PV guest through the kit's agent on the
/// second PV console, found by the guest's name (`/run/xenolith/NAME.ctl`).
@Suite("xeno exec: commands in a running PV guest over the agent console", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"))
struct ExecTests {
    struct Outcome {
        let status: Int32
        let stdout: Data
        let stderr: String
        var text: String { String(decoding: stdout, as: UTF8.self) }
        var seconds: Double
    }

    /// Runs `xeno ARGS` to its end (or `timeout`), output through files.
    static func xeno(_ args: [String], timeout: Double = 120) -> Outcome {
        let base = NSTemporaryDirectory() + "xeno-exec-\(getpid())-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: base + ".out", contents: nil)
        _ = FileManager.default.createFile(atPath: base + ".err", contents: nil)
        defer { unlink(base + ".out"); unlink(base + ".err") }
        guard let out = FileHandle(forWritingAtPath: base + ".out"), let err = FileHandle(forWritingAtPath: base + ".err") else {
            return Outcome(status: -1, stdout: Data(), stderr: "no temporary files", seconds: 0)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Xeno.binary)
        p.arguments = args
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = out
        p.standardError = err
        let start = Date()
        do { try p.run() } catch { return Outcome(status: -1, stdout: Data(), stderr: "\(error)", seconds: 0) }
        while p.isRunning {
            if Date().timeIntervalSince(start) > timeout { p.terminate() }
            usleep(20_000)
        }
        try? out.close(); try? err.close()
        return Outcome(status: p.terminationStatus,
                       stdout: (try? Data(contentsOf: URL(fileURLWithPath: base + ".out"))) ?? Data(),
                       stderr: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "",
                       seconds: Date().timeIntervalSince(start))
    }

    @Test("exec by name: output and status, 1 MiB of binary output, stdin at EOF, --timeout, --control, one guest per name")
    func execInGuest() throws {
        let name = "exec-guest-\(getpid())"
        let socket = "/run/xenolith/\(name).ctl"
        let kernelVersion = (try? String(contentsOfFile: kitDirectory + "/kernel-version", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        let seen = Locked<[String: Outcome]>([:])
        let mode = Locked<String>("none")
        let r = try Xeno.run(["run", "--name", name, "--", "sleep 600"], timeout: 400, hostSteps: [
            (after: "XENOLITH-READY", run: { pid in
                var s: [String: Outcome] = [:]
                mode.set((try? FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int)
                    .map { String($0!, radix: 8) } ?? "none")
                s["basic"] = Self.xeno(["exec", name, "--", "echo hello; uname -r; exit 7"])
                s["words"] = Self.xeno(["exec", name, "echo", "two", "words;", "echo", "err", ">&2"])
                s["big"] = Self.xeno(["exec", name, "--", "head -c 1048576 /bin/busybox >/tmp/big; cat /tmp/big; md5sum /tmp/big"], timeout: 180)
                // The longest command there may be: 64 KiB.
                let long = ": " + String(repeating: "x", count: 65536 - 2 - 14) + "; echo long-ok"
                s["long"] = Self.xeno(["exec", name, "--", long], timeout: 120)
                s["stdin"] = Self.xeno(["exec", name, "--", "cat; read x; echo read=$?"], timeout: 60)
                s["timeout"] = Self.xeno(["exec", "--timeout", "3", name, "--", "sleep 1000 & sleep 1000"], timeout: 60)
                s["after"] = Self.xeno(["exec", "--control", socket, "--",
                                         "n=0; for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' <$p/cmdline 2>/dev/null); [ \"$c\" = 'sleep 1000 ' ] && n=$((n+1)); done; echo left=$n"],
                                        timeout: 60)
                s["twice"] = Self.xeno(["run", "--name", name, "--", "true"], timeout: 30)
                seen.set(s)
                kill(pid, SIGTERM)
            }),
        ])
        #expect(r.status == 143, "stderr: \(r.stderr)")
        let s = seen.get()
        #expect(mode.get() == "600")

        let basic = s["basic"]
        #expect(basic?.status == 7, "\(basic?.stderr ?? "")")
        #expect(basic?.text == "hello\n\(kernelVersion)\n", "\(basic?.text ?? "")")
        #expect(basic?.stderr == "")

        // Words are joined by spaces, as ssh does; stderr comes merged into stdout.
        #expect(s["words"]?.status == 0 && s["words"]?.text == "two words\nerr\n", "\(s["words"]?.text ?? "")")

        // 1 MiB of binary, then the guest's md5sum of it on the last line.
        if let big = s["big"] {
            #expect(big.status == 0, "\(big.stderr)")
            let data = big.stdout
            #expect(data.count > 1_048_576, "got \(data.count) bytes: \(big.stderr)")
            if data.count > 1_048_576 {
                let guestSum = String(decoding: data[1_048_576...], as: UTF8.self)
                #expect(guestSum.hasSuffix("  /tmp/big\n"), "\(guestSum)")
                #expect(md5Hex(Array(data[0..<1_048_576])) == String(guestSum.prefix(32)), "guest md5 \(guestSum)")
            }
            print("exec: 1 MiB of output in \(String(format: "%.1f", big.seconds)) s")
        }

        #expect(s["long"]?.status == 0 && s["long"]?.text == "long-ok\n", "\(s["long"]?.stderr ?? "")")
        print("exec: a 64 KiB command in \(String(format: "%.1f", s["long"]?.seconds ?? 0)) s")

        // A command reading stdin gets EOF at once (stdin is /dev/null).
        #expect(s["stdin"]?.status == 0 && s["stdin"]?.text == "read=1\n", "\(s["stdin"]?.text ?? "") \(s["stdin"]?.stderr ?? "")")
        #expect((s["stdin"]?.seconds ?? 99) < 30)

        // --timeout stops the command and everything it started.
        let t = s["timeout"]
        #expect(t?.status == 124, "\(t?.stderr ?? "")")
        #expect(t?.stderr.hasPrefix("xeno: exec: timeout: ") == true && t?.stderr.split(separator: "\n").count == 1, "\(t?.stderr ?? "")")
        #expect(s["after"]?.status == 0 && s["after"]?.text == "left=0\n", "left running: \(s["after"]?.text ?? "") \(s["after"]?.stderr ?? "")")

        // One running guest per name.
        let twice = s["twice"]
        #expect(twice?.status == 1, "\(twice?.stderr ?? "")")
        #expect(twice?.stderr == "xeno: a guest named '\(name)' is already running (its control socket is \(socket))\n", "\(twice?.stderr ?? "")")

        #expect(!FileManager.default.fileExists(atPath: socket), "the socket is removed at exit")
    }

    @Test("a guest that reboots under exec: 127 with one line; the next boot's agent answers")
    func reboot() throws {
        let name = "exec-reboot-\(getpid())"
        let seen = Locked<[String: Outcome]>([:])
        let r = try Xeno.run(["run", "--name", name, "--", "sleep 600"], timeout: 400, hostSteps: [
            (after: "XENOLITH-READY", run: { _ in
                seen.set(["reboot": Self.xeno(["exec", name, "--", "sync; reboot -f"], timeout: 120)])
            }),
            (after: "XENOLITH-READY", run: { pid in
                seen.set(seen.get().merging(["after": Self.xeno(["exec", name, "--", "echo second boot"], timeout: 120)]) { $1 })
                kill(pid, SIGTERM)
            }),
        ])
        #expect(r.status == 143, "stderr: \(r.stderr)")
        let s = seen.get()
        #expect(s["reboot"]?.status == 127, "\(s["reboot"]?.stderr ?? "")")
        #expect(s["reboot"]?.stderr == "xeno: exec: agent: the guest's console channel closed while the command ran\n", "\(s["reboot"]?.stderr ?? "")")
        #expect(s["after"]?.status == 0 && s["after"]?.text == "second boot\n", "\(s["after"]?.stderr ?? "")")
    }

    @Test("exec with no guest of that name, or bad usage: one line on stderr, non-zero status")
    func noGuest() {
        let none = Self.xeno(["exec", "no-such-guest-\(getpid())", "--", "true"], timeout: 30)
        #expect(none.status == 127)
        #expect(none.stderr == "xeno: exec: no guest named 'no-such-guest-\(getpid())' is running (nothing listens at /run/xenolith/no-such-guest-\(getpid()).ctl)\n", "\(none.stderr)")
        let path = Self.xeno(["exec", "--control", NSTemporaryDirectory() + "no-such-\(getpid()).ctl", "--", "true"], timeout: 30)
        #expect(path.status == 127 && path.stderr.hasPrefix("xeno: exec: cannot connect to") && path.stderr.split(separator: "\n").count == 1, "\(path.stderr)")
        let usage = Self.xeno(["exec", "some-guest"], timeout: 30)
        #expect(usage.status == 2 && usage.stderr.split(separator: "\n").count == 1, "\(usage.stderr)")
        let badName = Self.xeno(["exec", "../x", "--", "true"], timeout: 30)
        #expect(badName.status == 2 && badName.stderr.split(separator: "\n").count == 1, "\(badName.stderr)")
        let runBadName = Self.xeno(["run", "--name", "a/b"], timeout: 30)
        #expect(runBadName.status == 2 && runBadName.stderr.hasPrefix("xeno: --name 'a/b': "), "\(runBadName.stderr)")
    }
}
