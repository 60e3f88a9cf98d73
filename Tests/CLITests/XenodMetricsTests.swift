import Foundation
import Testing

/// xenod's /metrics with a real PV guest that reads and writes its disk
/// and pings the host over its NIC: per-domain vCPU time, steal, memory,
/// disk and network I/O and VM exits, in Prometheus's text format.
@Suite("xenod metrics", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: isRoot, "needs root (creates a TAP device)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"))
struct XenodMetricsTests {
    struct Sample { let labels: [String: String]; let value: Double }

    /// Parses Prometheus text exposition (0.0.4), recording an issue for
    /// any line that breaks it: every sample's family has a TYPE first,
    /// every value is a number.
    static func parse(_ text: String) -> [String: [Sample]] {
        var types: [String: String] = [:]
        var samples: [String: [Sample]] = [:]
        for line in text.split(separator: "\n").map(String.init) {
            if line.hasPrefix("# HELP ") { continue }
            if line.hasPrefix("# TYPE ") {
                let words = line.split(separator: " ")
                #expect(words.count == 4 && ["counter", "gauge"].contains(words[3]), "bad TYPE line: \(line)")
                if words.count == 4 { types[String(words[2])] = String(words[3]) }
                continue
            }
            guard let m = line.wholeMatch(of: /([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/), let value = Double(m.3) else {
                Issue.record("not a sample line: \(line)")
                continue
            }
            let name = String(m.1)
            #expect(types[name] != nil, "\(name) has no TYPE before its samples")
            if types[name] == "counter" { #expect(name.hasSuffix("_total"), "counter \(name) should end in _total") }
            var labels: [String: String] = [:]
            if let body = m.2?.dropFirst().dropLast() {
                for pair in body.split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    #expect(kv.count == 2 && kv[1].hasPrefix("\"") && kv[1].hasSuffix("\""), "bad label in \(line)")
                    if kv.count == 2 { labels[String(kv[0])] = String(kv[1].dropFirst().dropLast()) }
                }
            }
            samples[name, default: []].append(Sample(labels: labels, value: value))
        }
        return samples
    }

    @Test("per-domain vCPU time and steal, memory, disk and network I/O and exits, as the guest's own work shows them")
    func metricsOfAWorkingGuest() throws {
        let daemon = try TLSDaemon()
        // A TAP of this test's own (NetworkTests may run beside it with theirs).
        let tap = (name: "xm\(getpid() % 100000)", hostIP: "10.\(200 + Int(getpid() % 50)).0.1", guestIP: "10.\(200 + Int(getpid() % 50)).0.2")
        try #require(NetworkTests.sh("ip tuntap add dev \(tap.name) mode tap && ip addr add \(tap.hostIP)/24 dev \(tap.name) && ip link set \(tap.name) up") == 0)
        defer { _ = NetworkTests.sh("ip link del \(tap.name)") }
        let disk = daemon.directory + "/data.img"
        FileManager.default.createFile(atPath: disk, contents: nil)
        try FileHandle(forWritingTo: URL(fileURLWithPath: disk)).truncate(atOffset: 8 << 20)
        let config = daemon.directory + "/busy.cfg"
        try """
        name = "busy"
        memory = 256
        vcpus = 2
        kernel = "\(kitDirectory)/vmlinuz"
        ramdisk = "\(kitDirectory)/initrd.img"
        extra = "console=hvc0"
        disk = [ 'format=raw, vdev=xvda, access=rw, target=\(disk)' ]
        vif = [ 'vifname=\(tap.name), mac=00:16:3e:00:5e:01' ]
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let created = try Xeno.runWithEnvironment(["create", config], ["XENOD_SOCKET": daemon.socket])
        #expect(created.status == 0, "stderr: \(created.stderr)")
        defer { _ = try? Xeno.runWithEnvironment(["destroy", "busy"], ["XENOD_SOCKET": daemon.socket]) }

        let ready = Date().addingTimeInterval(180)
        func console() -> String { (try? String(contentsOfFile: daemon.directory + "/run/busy.console", encoding: .utf8)) ?? "" }
        while Date() < ready && !console().contains("XENOLITH-READY") { usleep(200_000) }
        try #require(console().contains("XENOLITH-READY"), "the guest came up: \(console().suffix(500))")

        // 1 MiB read and 512 KiB written on the disk; pings both ways on the NIC.
        let work = try Xeno.run(["exec", "--timeout", "120", "--control", daemon.directory + "/run/busy.ctl", "--",
                                 "dd if=/dev/xvda of=/dev/null bs=4096 count=256 2>/dev/null &&",
                                 "dd if=/dev/zero of=/dev/xvda bs=4096 count=128 conv=fsync 2>/dev/null &&",
                                 "ip link set eth0 up && ip addr add \(tap.guestIP)/24 dev eth0 &&",
                                 "ping -c 3 -W 5 \(tap.hostIP) >/dev/null && echo worked"], timeout: 240)
        #expect(work.status == 0 && work.stdout == "worked\n", "exec: \(work.status) \(work.stdout) \(work.stderr)")

        let answer = try daemon.curl("GET", "/metrics", token: daemon.token)
        #expect(answer.status == 200 && answer.headers.contains("text/plain; version=0.0.4"), "\(answer.headers)")
        let samples = Self.parse(answer.body)
        func value(_ name: String) -> Double? { samples[name]?.first { $0.labels["domain"] == "busy" }?.value }
        let vcpuTime = samples["xenolith_domain_vcpu_seconds_total"]?.filter { $0.labels["domain"] == "busy" } ?? []
        let steal = samples["xenolith_domain_vcpu_steal_seconds_total"]?.filter { $0.labels["domain"] == "busy" } ?? []
        #expect(Set(vcpuTime.compactMap { $0.labels["vcpu"] }) == ["0", "1"], "vCPU time per vCPU: \(vcpuTime)")
        #expect(vcpuTime.reduce(0) { $0 + $1.value } > 0.1, "the guest booted and worked: \(vcpuTime)")
        #expect(steal.count == 2 && steal.allSatisfy { $0.value >= 0 }, "steal: \(steal)")
        #expect(value("xenolith_domain_memory_bytes") == Double(256 << 20))
        #expect(value("xenolith_domain_memory_max_bytes") == Double(256 << 20))
        #expect((value("xenolith_domain_memory_current_bytes") ?? 0) > Double(128 << 20))
        #expect((value("xenolith_domain_exits_total") ?? 0) > 1000, "exits: \(String(describing: value("xenolith_domain_exits_total")))")
        #expect((value("xenolith_domain_block_read_bytes_total") ?? 0) >= Double(1 << 20))
        #expect((value("xenolith_domain_block_write_bytes_total") ?? 0) >= Double(512 << 10))
        #expect((value("xenolith_domain_block_write_requests_total") ?? 0) >= 1)
        // Three echo requests out and three replies in (ARP besides), each at least 84 bytes.
        #expect((value("xenolith_domain_network_transmit_packets_total") ?? 0) >= 3)
        #expect((value("xenolith_domain_network_receive_packets_total") ?? 0) >= 3)
        #expect((value("xenolith_domain_network_transmit_bytes_total") ?? 0) >= 3 * 84)
        #expect((value("xenolith_domain_network_receive_bytes_total") ?? 0) >= 3 * 84)
        for (name, list) in samples where name.hasPrefix("xenolith_domain_") {
            #expect(list.allSatisfy { $0.labels["id"] != nil && $0.labels["domain"] != nil }, "\(name) without domain and id labels")
        }
        // Counters only grow: a second scrape after more disk reads.
        _ = try Xeno.run(["exec", "--control", daemon.directory + "/run/busy.ctl", "--",
                          "dd if=/dev/xvda of=/dev/null bs=4096 skip=1024 count=256 2>/dev/null"], timeout: 120)
        let again = Self.parse(try daemon.curl("GET", "/metrics", token: daemon.token).body)
        let before = value("xenolith_domain_block_read_bytes_total") ?? 0
        let after = again["xenolith_domain_block_read_bytes_total"]?.first { $0.labels["domain"] == "busy" }?.value ?? 0
        #expect(after >= before + Double(1 << 20), "block reads \(before) then \(after)")
    }
}
