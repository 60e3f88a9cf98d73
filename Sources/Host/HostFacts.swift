import Foundation

/// What `xeno info` shows about the host, as `xl info` does: from uname,
/// /proc/cpuinfo, /proc/meminfo and the loaded KVM module.
struct HostFacts {
    /// The Xen interface PV guests are shown (XENVER_version: 4.17).
    static let xenABIVersion = "4.17"
    static let xenolithVersion = "0.1"

    static func collect(domains: Int, cgroups: CPUCgroups?) -> [String: Any] {
        var u = utsname()
        uname(&u)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        var model = "", mhz = 0.0, coresPerSocket = 0, siblings = 0
        var sockets: Set<String> = []
        for line in cpuinfo.split(separator: "\n") {
            let kv = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2 else { continue }
            switch kv[0] {
            case "model name" where model.isEmpty: model = kv[1]
            case "cpu MHz" where mhz == 0: mhz = Double(kv[1]) ?? 0
            case "cpu cores": coresPerSocket = Int(kv[1]) ?? coresPerSocket
            case "siblings": siblings = Int(kv[1]) ?? siblings
            case "physical id": sockets.insert(kv[1])
            default: break
            }
        }
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if coresPerSocket == 0 { coresPerSocket = cpus }
        let threadsPerCore = siblings > 0 && coresPerSocket > 0 ? max(1, siblings / coresPerSocket) : 1
        var memory: [String: Int] = [:]
        for line in ((try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? "").split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count >= 2, let kib = Int(words[1]) { memory[String(words[0].dropLast())] = kib }
        }
        let uptime = ((try? String(contentsOfFile: "/proc/uptime", encoding: .utf8)) ?? "").split(separator: " ").first.flatMap { Double($0) } ?? 0
        let kvm = access("/sys/module/kvm_pvm", F_OK) == 0 ? "kvm_pvm (software-nested: HVM guests run no user space)"
            : access("/sys/module/kvm_intel", F_OK) == 0 ? "kvm_intel" : access("/sys/module/kvm_amd", F_OK) == 0 ? "kvm_amd"
            : access("/dev/kvm", F_OK) == 0 ? "kvm" : "none"
        return [
            "host": field(u.nodename), "release": field(u.release), "version": field(u.version), "machine": field(u.machine),
            "nr_cpus": cpus, "nr_nodes": 1, "sockets": max(1, sockets.count), "cores_per_socket": coresPerSocket,
            "threads_per_core": threadsPerCore, "cpu_mhz": Int(mhz), "model": model,
            "total_memory_mib": (memory["MemTotal"] ?? 0) >> 10, "free_memory_mib": (memory["MemAvailable"] ?? memory["MemFree"] ?? 0) >> 10,
            "kvm": kvm, "virt_caps": "pv hvm", "xen_abi": xenABIVersion, "xenolith_version": xenolithVersion,
            "scheduler": cgroups.map { "credit (cgroup \($0.version.rawValue) cpu controller, group \($0.group))" } ?? "none (no cpu cgroup controller)",
            "domains": domains, "host_uptime_seconds": uptime, "time": Date().timeIntervalSince1970,
        ]
    }
}
