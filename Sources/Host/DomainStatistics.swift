import Foundation

/// What /metrics reports per domain beyond the listing: each vCPU
/// thread's CPU time and steal (the host's scheduler statistics for the
/// VMM's "vcpu N" threads), the guest's memory as its VMM counts it, and
/// the VMM's `stats` counters (VM exits; PV disk and network I/O).
struct DomainStatistics {
    struct VCPUTime {
        let index: Int
        /// Time the thread ran on a host CPU (guest and its exits' handling).
        let runNanoseconds: UInt64
        /// Time it was runnable but waited for a host CPU: the guest's steal.
        let waitNanoseconds: UInt64
    }

    let name: String
    let id: Int
    let vcpus: [VCPUTime]
    /// `key=value` words of the VMM's `info` and `stats` replies, numbers only.
    let counters: [String: UInt64]

    static func collect(_ manager: DomainManager, _ listings: [DomainManager.Listing]) -> [DomainStatistics] {
        listings.compactMap { listing in
            guard let d = try? manager.domain(listing.name) else { return nil }
            var counters: [String: UInt64] = [:]
            for request in ["info", "stats"] {
                guard let reply = try? manager.control(d, request) else { continue }
                for word in reply.split(separator: " ") {
                    let kv = word.split(separator: "=", maxSplits: 1)
                    if kv.count == 2, let n = UInt64(kv[1]) { counters[String(kv[0])] = n }
                }
            }
            return DomainStatistics(name: listing.name, id: listing.id, vcpus: vcpuTimes(pid: listing.pid), counters: counters)
        }
    }

    /// The VMM's threads named "vcpu N", with /proc's schedstat for each
    /// ("run_ns wait_ns timeslices").
    static func vcpuTimes(pid: Int32) -> [VCPUTime] {
        let tasks = "/proc/\(pid)/task"
        guard let tids = try? FileManager.default.contentsOfDirectory(atPath: tasks) else { return [] }
        var out: [VCPUTime] = []
        for tid in tids {
            guard let comm = try? String(contentsOfFile: "\(tasks)/\(tid)/comm", encoding: .utf8),
                  comm.hasPrefix("vcpu "), let index = Int(comm.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)),
                  let schedstat = try? String(contentsOfFile: "\(tasks)/\(tid)/schedstat", encoding: .utf8) else { continue }
            let fields = schedstat.split(separator: " ").compactMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            guard fields.count >= 2 else { continue }
            out.append(VCPUTime(index: index, runNanoseconds: fields[0], waitNanoseconds: fields[1]))
        }
        return out.sorted { $0.index < $1.index }
    }
}

extension HostAPI {
    /// The families from DomainStatistics, in Prometheus text format.
    func statisticsMetrics(_ listings: [DomainManager.Listing]) -> String {
        let all = DomainStatistics.collect(manager, listings)
        var out = ""
        func seconds(_ ns: UInt64) -> String { String(Double(ns) / 1e9) }
        func labels(_ s: DomainStatistics) -> String { "domain=\"\(s.name)\",id=\"\(s.id)\"" }
        func perVCPU(_ name: String, _ help: String, _ value: (DomainStatistics.VCPUTime) -> String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for s in all { for v in s.vcpus { out += "\(name){\(labels(s)),vcpu=\"\(v.index)\"} \(value(v))\n" } }
        }
        /// A family from one VMM counter, for the domains that report it.
        func counter(_ name: String, _ type: String, _ help: String, _ key: String, scale: UInt64 = 1) {
            let having = all.filter { $0.counters[key] != nil }
            guard !having.isEmpty else { return }
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for s in having { out += "\(name){\(labels(s))} \(s.counters[key]! &* scale)\n" }
        }
        perVCPU("xenolith_domain_vcpu_seconds_total", "Host CPU time of each vCPU's thread (guest code and its exits).") { seconds($0.runNanoseconds) }
        perVCPU("xenolith_domain_vcpu_steal_seconds_total", "Time each vCPU's thread was ready but waited for a host CPU (steal).") { seconds($0.waitNanoseconds) }
        counter("xenolith_domain_memory_current_bytes", "gauge", "Guest memory the VMM holds for the guest (boot size less what the balloon gave back).", "memory-current-kib", scale: 1024)
        counter("xenolith_domain_memory_max_bytes", "gauge", "Guest memory at boot (the most it can have).", "memory-max-kib", scale: 1024)
        counter("xenolith_domain_exits_total", "counter", "VM exits of all the domain's vCPUs.", "exits")
        counter("xenolith_domain_block_read_bytes_total", "counter", "Bytes the guest read from its disks (PV blkback).", "block-read-bytes")
        counter("xenolith_domain_block_write_bytes_total", "counter", "Bytes the guest wrote to its disks (PV blkback).", "block-write-bytes")
        counter("xenolith_domain_block_read_requests_total", "counter", "Read requests of the guest's disks (PV blkback).", "block-read-requests")
        counter("xenolith_domain_block_write_requests_total", "counter", "Write requests of the guest's disks (PV blkback).", "block-write-requests")
        counter("xenolith_domain_network_receive_bytes_total", "counter", "Bytes delivered to the guest's NICs (PV netback).", "net-rx-bytes")
        counter("xenolith_domain_network_transmit_bytes_total", "counter", "Bytes the guest's NICs sent (PV netback).", "net-tx-bytes")
        counter("xenolith_domain_network_receive_packets_total", "counter", "Packets delivered to the guest's NICs (PV netback).", "net-rx-packets")
        counter("xenolith_domain_network_transmit_packets_total", "counter", "Packets the guest's NICs sent (PV netback).", "net-tx-packets")
        counter("xenolith_domain_network_dropped_packets_total", "counter", "Packets netback dropped (no guest buffer, or refused).", "net-dropped-packets")
        return out
    }
}
