import Glibc
import UnixSockets

/// xl's scheduler and host verbs: sched-credit, info, uptime, vcpu-list,
/// mem-max, reboot, console. Each asks xenod and prints as xl does.
extension Toolstack {
    static let hostVerbs: Set<String> = ["sched-credit", "info", "uptime", "vcpu-list", "mem-max", "reboot", "console"]

    static let hostVerbsUsage = """
           xeno sched-credit [-d NAME [-w WEIGHT] [-c CAP]]
                                       credit scheduler: weight (1-65535, default 256), cap (% of one CPU, 0 = none)
           xeno reboot NAME            ask a domain's guest to reboot (PV: through xenstore)
           xeno console NAME           attach to a domain's console (Ctrl-] detaches)
           xeno info                   host facts: CPUs, memory, versions
           xeno uptime [NAME]          how long each domain has run
           xeno vcpu-list [NAME]       each vCPU: the host CPU it last ran on, state, CPU time
           xeno mem-max NAME SIZE      lower the most memory a domain may have (its boot size is the limit)

    """

    /// Runs one of `hostVerbs`; throws ToolstackError for usage and refusals.
    static func runHostVerb(_ verb: String, _ args: [String]) throws -> Int32 {
        switch (verb, args.count) {
        case ("sched-credit", _): try schedCredit(args)
        case ("info", 0): try info()
        case ("uptime", 0), ("uptime", 1): try uptime(args.first)
        case ("vcpu-list", 0), ("vcpu-list", 1): try vcpuList(args.first)
        case ("mem-max", 2):
            let r = try HTTPClient.request(socket: socketPath, method: "POST", path: "/v1/domains/\(escape(args[0]))/mem-max",
                                           body: "{\"memory\":\(JSONValue.quote(args[1]))}")
            _ = r
        case ("reboot", 1):
            _ = try HTTPClient.request(socket: socketPath, method: "POST", path: "/v1/domains/\(escape(args[0]))/reboot")
        case ("console", 1): return try ConsoleAttach.run(domain: args[0])
        default: throw ToolstackError("usage:\n" + hostVerbsUsage)
        }
        return 0
    }

    /// `xl sched-credit`: no options lists every domain; `-d NAME` one;
    /// `-w`/`-c` with `-d` change it.
    static func schedCredit(_ args: [String]) throws {
        var name: String?, weight: Int?, cap: Int?
        var rest = args[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { throw ToolstackError("sched-credit: \(flag) needs a value") }
            switch flag {
            case "-d", "--domain": name = value
            case "-w", "--weight":
                guard let w = Int(value) else { throw ToolstackError("sched-credit: weight '\(value)' is not a number") }
                weight = w
            case "-c", "--cap":
                guard let c = Int(value) else { throw ToolstackError("sched-credit: cap '\(value)' is not a number") }
                cap = c
            default: throw ToolstackError("sched-credit: unknown option '\(flag)'\nusage:\n" + hostVerbsUsage)
            }
        }
        var rows: [JSONValue]
        if weight != nil || cap != nil {
            guard let name else { throw ToolstackError("sched-credit: -w and -c need -d NAME") }
            var fields: [String] = []
            if let weight { fields.append("\"weight\":\(weight)") }
            if let cap { fields.append("\"cap\":\(cap)") }
            _ = try HTTPClient.request(socket: socketPath, method: "POST", path: "/v1/domains/\(escape(name))/sched-credit",
                                       body: "{" + fields.joined(separator: ",") + "}")
            return
        } else if let name {
            rows = [try HTTPClient.request(socket: socketPath, method: "GET", path: "/v1/domains/\(escape(name))/sched-credit")]
        } else {
            rows = try HTTPClient.request(socket: socketPath, method: "GET", path: "/v1/sched-credit")["domains"]?.array ?? []
        }
        print(pad("Name", 33) + pad("ID", 5, right: true) + pad("Weight", 7, right: true) + pad("Cap", 5, right: true))
        for d in rows {
            print(pad(d["name"]?.string ?? "?", 33) + pad(String(d["id"]?.int ?? 0), 5, right: true)
                  + pad(String(d["weight"]?.int ?? 0), 7, right: true) + pad(String(d["cap"]?.int ?? 0), 5, right: true))
        }
    }

    /// `xl info`: "key : value" lines.
    static func info() throws {
        let h = try HTTPClient.request(socket: socketPath, method: "GET", path: "/v1/host")
        func text(_ key: String) -> String {
            if let s = h[key]?.string { return s }
            if let n = h[key]?.number { return n == n.rounded() ? String(Int(n)) : String(n) }
            return ""
        }
        let lines: [(String, String)] = [
            ("host", text("host")), ("release", text("release")), ("version", text("version")), ("machine", text("machine")),
            ("nr_cpus", text("nr_cpus")), ("nr_nodes", text("nr_nodes")), ("sockets", text("sockets")),
            ("cores_per_socket", text("cores_per_socket")), ("threads_per_core", text("threads_per_core")),
            ("cpu_mhz", text("cpu_mhz")), ("cpu_model", text("model")), ("virt_caps", text("virt_caps")),
            ("total_memory", text("total_memory_mib")), ("free_memory", text("free_memory_mib")),
            ("nr_domains", text("domains")), ("scheduler", text("scheduler")), ("kvm", text("kvm")),
            ("xen_version", text("xen_abi") + " (the Xen PV interface guests see)"),
            ("xenolith_version", text("xenolith_version")),
        ]
        for (k, v) in lines { print(pad(k, 23) + ": " + v) }
    }

    /// `xl uptime`: Name, ID, Uptime ("[N days, ]H:MM:SS").
    static func uptime(_ name: String?) throws {
        let now = try HTTPClient.request(socket: socketPath, method: "GET", path: "/v1/host")["time"]?.number ?? 0
        let domains: [JSONValue]
        if let name {
            domains = [try HTTPClient.request(socket: socketPath, method: "GET", path: "/v1/domains/" + escape(name))]
        } else {
            domains = try HTTPClient.request(socket: socketPath, method: "GET", path: "/v1/domains")["domains"]?.array ?? []
        }
        print(pad("Name", 33) + pad("ID", 5, right: true) + " Uptime")
        for d in domains {
            let seconds = max(0, Int(now - (d["created"]?.number ?? now)))
            print(pad(d["name"]?.string ?? "?", 33) + pad(String(d["id"]?.int ?? 0), 5, right: true) + " " + formatUptime(seconds))
        }
    }

    static func formatUptime(_ s: Int) -> String {
        let days = s / 86400, h = (s % 86400) / 3600, m = (s % 3600) / 60, sec = s % 60
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : String(n) }
        let clock = "\(h):\(two(m)):\(two(sec))"
        return days == 0 ? clock : "\(days) day\(days == 1 ? "" : "s"), " + clock
    }

    /// `xl vcpu-list`: Name, ID, VCPU, CPU, State, Time(s), Affinity.
    static func vcpuList(_ name: String?) throws {
        let path = name.map { "/v1/domains/\(escape($0))/vcpus" } ?? "/v1/vcpus"
        let rows = try HTTPClient.request(socket: socketPath, method: "GET", path: path)["vcpus"]?.array ?? []
        print(pad("Name", 33) + pad("ID", 5, right: true) + pad("VCPU", 6, right: true) + pad("CPU", 5, right: true)
              + pad("State", 7, right: true) + pad("Time(s)", 10, right: true) + "  Affinity (Hard)")
        for v in rows {
            let seconds = v["cpu_seconds"]?.number ?? 0
            let tenths = Int(seconds * 10)
            print(pad(v["name"]?.string ?? "?", 33) + pad(String(v["id"]?.int ?? 0), 5, right: true)
                  + pad(String(v["vcpu"]?.int ?? 0), 6, right: true) + pad(v["cpu"]?.int.map(String.init) ?? "-", 5, right: true)
                  + pad(v["state"]?.string ?? "?", 7, right: true) + pad("\(tenths / 10).\(tenths % 10)", 10, right: true)
                  + "  " + (v["affinity"]?.string ?? "all"))
        }
    }
}
