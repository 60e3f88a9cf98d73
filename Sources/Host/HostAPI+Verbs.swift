import Foundation

/// Routes for xl's remaining simple verbs and the credit scheduler:
///
///     GET  /v1/host                          host facts (`xeno info`)
///     GET  /v1/sched-credit                  every domain's weight and cap
///     GET  /v1/domains/NAME/sched-credit
///     POST /v1/domains/NAME/sched-credit     {"weight": W, "cap": C} (either may be left out)
///     GET  /v1/vcpus, /v1/domains/NAME/vcpus  `xeno vcpu-list`
///     POST /v1/domains/NAME/reboot
///     POST /v1/domains/NAME/mem-max          {"memory": "SIZE"}
///     GET  /v1/domains/NAME/console          {"socket": its VMM's console socket, "log": the console log}
extension HostAPI {
    /// The answer if the request is one of these routes, else nil.
    func verbRoute(_ r: HTTPServer.Request, _ parts: [String]) throws -> HTTPServer.Response? {
        switch (r.method, parts.count) {
        case ("GET", 2) where parts == ["v1", "host"]:
            return .json(200, HostFacts.collect(domains: manager.list().count, cgroups: manager.cgroups))
        case ("GET", 2) where parts == ["v1", "sched-credit"]:
            return .json(200, ["domains": manager.creditSettings().map(Self.object)])
        case ("GET", 2) where parts == ["v1", "vcpus"]:
            return .json(200, ["vcpus": try manager.vcpuList(nil).map(Self.object)])
        case (_, 4) where parts[0] == "v1" && parts[1] == "domains":
            let name = parts[2]
            switch (r.method, parts[3]) {
            case ("GET", "sched-credit"):
                return .json(200, Self.object(try manager.creditSettings(name)))
            case ("POST", "sched-credit"):
                let body = try Self.jsonBody(r)
                let weight = try Self.integer(body, "weight"), cap = try Self.integer(body, "cap")
                guard weight != nil || cap != nil else { throw HostError("body needs \"weight\" and/or \"cap\"", status: 400) }
                return .json(200, Self.object(try manager.setCredit(name, weight: weight, cap: cap)))
            case ("GET", "console"):
                return .json(200, try manager.consoleEndpoints(name))
            case ("GET", "vcpus"):
                return .json(200, ["vcpus": try manager.vcpuList(name).map(Self.object)])
            case ("POST", "reboot"):
                try manager.reboot(name)
                return .json(202, ["reboot": name])
            case ("POST", "mem-max"):
                guard let m = try Self.jsonBody(r)["memory"] as? String else { throw HostError("body needs \"memory\": \"SIZE\"", status: 400) }
                return .json(200, ["mem_max_mib": try manager.setMaxMemory(name, m)])
            default: return nil
            }
        default: return nil
        }
    }

    /// An optional whole number in a JSON body; anything else is refused.
    static func integer(_ body: [String: Any], _ key: String) throws -> Int? {
        guard let value = body[key] else { return nil }
        guard let n = value as? NSNumber, let i = Int(exactly: n.doubleValue) else {
            throw HostError("\"\(key)\" must be a whole number", status: 400)
        }
        return i
    }

    static func object(_ s: DomainManager.CreditSettings) -> [String: Any] {
        ["name": s.name, "id": s.id, "weight": s.weight, "cap": s.cap]
    }

    static func object(_ v: DomainManager.VCPUState) -> [String: Any] {
        var o: [String: Any] = ["name": v.domain, "id": v.id, "vcpu": v.vcpu, "state": v.state,
                                "cpu_seconds": v.cpuSeconds, "affinity": v.affinity]
        if let c = v.hostCPU { o["cpu"] = c }
        return o
    }

    /// The credit scheduler's settings and the CPU time the host charged
    /// each domain's cgroup, in Prometheus text.
    func creditMetrics() -> String {
        let settings = manager.creditSettings()
        var out = ""
        func family(_ name: String, _ help: String, _ type: String, _ value: (DomainManager.CreditSettings) -> String?) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for s in settings { if let v = value(s) { out += "\(name){domain=\"\(s.name)\",id=\"\(s.id)\"} \(v)\n" } }
        }
        family("xenolith_domain_weight", "Credit scheduler weight (cgroup cpu shares).", "gauge") { String($0.weight) }
        family("xenolith_domain_cap_percent", "Credit scheduler cap in percent of one CPU (0: none).", "gauge") { String($0.cap) }
        family("xenolith_domain_cgroup_cpu_seconds_total", "CPU time the host charged the domain's cgroup.", "counter") { s in
            manager.cgroupUsageNanoseconds(s.name).map { String(Double($0) / 1e9) }
        }
        return out
    }
}
