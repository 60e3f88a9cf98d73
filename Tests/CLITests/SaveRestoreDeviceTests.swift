import Foundation
import Testing

/// Save and restore of a PV guest with two vCPUs, a disk and a NIC, without
/// xenod: what the guest was doing goes on, seen from the host's end of the
/// guest's open TCP connection.
extension NetworkTests {
    /// Accepts one TCP connection and keeps every line that arrives on it.
    final class LineCollector: @unchecked Sendable {
        let server: OneShotServer
        let lines = Locked<[String]>([])
        let connections = Locked(0)

        init(address: String) throws {
            server = try OneShotServer(address: address)
            Thread.detachNewThread { [self] in
                // Only the first connection is taken: a guest that came back
                // with a new one would show as a second accept that never comes.
                let c = accept(server.fd, nil, nil)
                guard c >= 0 else { return }
                connections.set(1)
                var pending = [UInt8]()
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = read(c, &buffer, buffer.count)
                    guard n > 0 else { break }
                    pending += buffer[0..<n]
                    while let nl = pending.firstIndex(of: 10) {
                        let line = String(decoding: pending[..<nl], as: UTF8.self)
                        pending.removeSubrange(...nl)
                        lines.set(lines.get() + [line])
                    }
                }
                close(c)
            }
        }
    }

    @Test("save and restore of a 2-vCPU guest with a disk and a NIC: its TCP connection stays open and its disk reads go on, exact")
    func saveRestoreWithDevices() throws {
        let tap = try HostTap()
        defer { tap.remove() }
        let collector = try LineCollector(address: tap.hostIP)
        let disk = NSTemporaryDirectory() + "xeno-sr-disk-\(getpid()).img"
        let image = NSTemporaryDirectory() + "xeno-sr-\(getpid()).save"
        defer { unlink(disk); unlink(image) }
        let content = try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: 1 << 20)
        try content.write(to: URL(fileURLWithPath: disk))
        let name = "sr-dev-\(getpid())"
        let nic = "tap=\(tap.name),mac=00:16:3e:00:00:42"
        // One line a second to the host, each with the line's number, the
        // online vCPUs and the md5 of disk block N read with O_DIRECT.
        let loop = "i=0; while :; do echo conn $i $(nproc) $(dd if=/dev/xvda bs=4k count=1 skip=$i iflag=direct 2>/dev/null | md5sum | cut -c1-32);"
            + " i=$((i+1)); sleep 1; done | tee /dev/console | nc \(tap.hostIP) \(collector.server.port)"
        let setup = "ip addr add \(tap.guestIP)/24 dev eth0 && ip link set eth0 up && sleep 1; "
        let atSave = Locked(0)
        let saved = Locked("")
        // The kernel passes init at most 32 words: the script travels as one base64 word.
        let script = "echo \(Data((setup + loop).utf8).base64EncodedString())|base64 -d >/tmp/script; . /tmp/script"
        let first = try Xeno.run(["run", "--vcpus", "2", "--name", name, "--disk", disk, "--net", nic, "--", script], timeout: 180,
                                 hostSteps: [(after: "conn 3 ", run: { _ in
                                     atSave.set(collector.lines.get().count)
                                     let r = try? Xeno.run(["ctl", "/run/xenolith/\(name).ctl", "save", image], timeout: 120)
                                     saved.set((r?.stdout ?? "") + (r?.stderr ?? ""))
                                 })])
        #expect(first.status == 0, "the saved run: \(first.status) \(first.stderr)")
        #expect(saved.get().hasPrefix("ok saved="), "save: \(saved.get())")
        let target = atSave.get() + 3
        let second = try Xeno.run(["run", "--restore", image, "--disk", disk, "--net", nic], timeout: 180,
                                  signal: (after: "conn \(target) ", signal: SIGTERM))
        #expect(second.stdout.contains("conn \(target) "), "the restored guest's console: \(second.consoleLines.suffix(12))")
        #expect(!second.allLines.contains { $0.contains("BUG") || $0.contains("Oops") }, "\(second.allLines.filter { $0.contains("BUG") || $0.contains("Oops") })")

        // On the host: one connection, lines numbered without a gap across
        // the save, each with 2 vCPUs and the right block's md5.
        #expect(collector.connections.get() == 1)
        let lines = collector.lines.get()
        #expect(lines.count >= target, "lines on the connection: \(lines.count), \(atSave.get()) before the save")
        let blocks = [UInt8](content)
        for (n, line) in lines.enumerated() {
            let words = line.split(separator: " ").map(String.init)
            guard words.count == 4 else { Issue.record("line \(n): '\(line)'"); continue }
            #expect(words[0] == "conn" && words[1] == String(n) && words[2] == "2", "line \(n): '\(line)'")
            #expect(words[3] == md5Hex(Array(blocks[(n * 4096)..<((n + 1) * 4096)])), "line \(n): the md5 of disk block \(n)")
        }
    }
}
