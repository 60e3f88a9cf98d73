import Foundation
import XLConfig

/// `sched-credit`: each domain's weight and cap, kept in its record and
/// applied to its cgroup (CPUCgroups).
extension DomainManager {
    public struct CreditSettings: Sendable {
        public let name: String
        public let id: Int
        public let weight: Int
        public let cap: Int
    }

    /// Moves a freshly started VMM into its domain's cgroup.
    func placeInCgroup(_ record: DomainRecord, cpus: [Int]?) throws {
        guard let cgroups else {
            if cpus != nil {
                throw HostError("\(record.configPath): 'cpus' needs the host's cpuset cgroup controller, which xenod cannot use here", status: 400)
            }
            return
        }
        if let cpus, let host = cgroups.hostCPUs(), let bad = cpus.first(where: { !host.contains($0) }) {
            throw HostError("\(record.configPath): cpus names CPU \(bad), which this host does not have (it has \(CPUList.format(host)))",
                            status: 400)
        }
        try cgroups.place(domain: record.name, pid: record.pid, weight: record.weight ?? CPUCgroups.defaultWeight,
                          cap: record.cap ?? 0, cpus: cpus)
    }

    func removeCgroup(_ name: String) { cgroups?.remove(domain: name) }

    /// After a restart: an adopted VMM whose cgroup went missing is placed
    /// again; groups of domains that no longer exist (their VMM ended while
    /// xenod was down) are removed.
    func adoptCgroups() {
        guard let cgroups else { return }
        let adopted = lock.withLock { Array(domains.values) }
        for d in adopted where !cgroups.contains(domain: d.record.name, pid: d.record.pid) {
            do {
                try placeInCgroup(d.record, cpus: d.config.cpus)
                log("domain \(d.record.name): VMM pid \(d.record.pid) placed in its cgroup again")
            } catch {
                log("domain \(d.record.name): cannot place VMM pid \(d.record.pid) in its cgroup: \(error)")
            }
        }
        let names = Set(adopted.map(\.record.name))
        for stale in cgroups.existingDomains() where !names.contains(stale) {
            cgroups.remove(domain: stale)
            log("removed the cgroup of domain \(stale), which no longer runs")
        }
    }

    public func creditSettings() -> [CreditSettings] {
        let all = lock.withLock { domains.values.sorted { $0.record.id < $1.record.id } }
        return all.map(Self.settings)
    }

    public func creditSettings(_ name: String) throws -> CreditSettings { Self.settings(try domain(name)) }

    static func settings(_ d: Domain) -> CreditSettings {
        CreditSettings(name: d.record.name, id: d.record.id, weight: d.record.weight ?? d.config.weight,
                       cap: d.record.cap ?? d.config.cap)
    }

    /// Sets weight and/or cap; bad values are refused before anything changes.
    public func setCredit(_ name: String, weight: Int?, cap: Int?) throws -> CreditSettings {
        if let weight, !CPUCgroups.weightRange.contains(weight) {
            throw HostError("sched-credit: weight \(weight) is outside 1–65535", status: 400)
        }
        if let cap, cap < 0 {
            throw HostError("sched-credit: cap \(cap) is negative (0 means no cap; otherwise percent of one CPU)", status: 400)
        }
        return try withDomain(name) { d in
            if let cap, cap > 100 * d.config.maxVCPUs {
                throw HostError("sched-credit: cap \(cap) is above 100 × maxvcpus (\(100 * d.config.maxVCPUs)) for domain '\(name)'",
                                status: 400)
            }
            guard let cgroups else {
                throw HostError("sched-credit: this host has no cpu cgroup controller, so weights and caps cannot be applied", status: 501)
            }
            var record = d.record
            record.weight = weight ?? record.weight ?? d.config.weight
            record.cap = cap ?? record.cap ?? d.config.cap
            try cgroups.set(domain: name, weight: record.weight!, cap: record.cap!)
            try store.save(record)
            d.record = record
            log("domain \(name): weight \(record.weight!), cap \(record.cap!)")
            return Self.settings(d)
        }
    }

    /// CPU time the host charged the domain's cgroup (nanoseconds), if it has one.
    public func cgroupUsageNanoseconds(_ name: String) -> UInt64? { cgroups?.usageNanoseconds(domain: name) }
}
