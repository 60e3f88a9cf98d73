import Foundation
import UnixSockets

/// xenod's HTTP/JSON API (docs/openapi.json describes it; HostRoutes lists its routes):
///
///     GET    /v1/domains                    the domains, as `xeno list` shows them
///     POST   /v1/domains                    {"config": "<xl.cfg text>", "path": "<its file name>"}
///     GET    /v1/domains/NAME
///     DELETE /v1/domains/NAME               destroy
///     POST   /v1/domains/NAME/shutdown
///     POST   /v1/domains/NAME/vcpu-set      {"vcpus": N}
///     POST   /v1/domains/NAME/mem-set       {"memory": "512M"}
///     POST   /v1/domains/NAME/pause         (and /unpause)
///     POST   /v1/domains/NAME/save          {"file": "/absolute/path"}: the domain goes to the file
///     POST   /v1/restore                    {"file": "/absolute/path"}: and comes back from it
///     GET    /metrics                       Prometheus text
public struct HostAPI: Sendable {
    let manager: DomainManager

    public init(manager: DomainManager) { self.manager = manager }

    func handle(_ r: HTTPServer.Request) -> HTTPServer.Response {
        // Only the routes HostRoutes lists (and docs/openapi.json documents) are served.
        if let refusal = HostRoutes.refusal(method: r.method, path: r.path) { return refusal }
        let parts = r.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        do {
            if let answer = try verbRoute(r, parts) { return answer }
            switch (r.method, parts.count, parts.first) {
            case ("GET", 1, "metrics"):
                return HTTPServer.Response(status: 200, contentType: "text/plain; version=0.0.4", body: Data(metrics().utf8))
            case ("POST", 2, "v1") where parts[1] == "restore":
                guard let file = try Self.jsonBody(r)["file"] as? String else { throw HostError("body needs \"file\": \"/path\"", status: 400) }
                let s = try manager.restore(file: file)
                return .json(201, ["name": s.name, "id": s.id, "pid": Int(s.pid)])
            case (_, 2, "v1") where parts[1] == "domains":
                switch r.method {
                case "GET": return .json(200, ["domains": manager.list().map(Self.object)])
                case "POST":
                    let body = try Self.jsonBody(r)
                    guard let text = body["config"] as? String else { throw HostError("body needs \"config\": the xl.cfg text", status: 400) }
                    let path = (body["path"] as? String) ?? "config"
                    let s = try manager.create(configText: text, configPath: path)
                    return .json(201, ["name": s.name, "id": s.id, "pid": Int(s.pid)])
                default: return .error(405, "\(r.method) is not allowed on /v1/domains")
                }
            case (_, 3, "v1") where parts[1] == "domains":
                switch r.method {
                case "GET": return .json(200, Self.object(try manager.info(parts[2])))
                case "DELETE":
                    try manager.destroy(parts[2])
                    return .json(200, ["destroyed": parts[2]])
                default: return .error(405, "\(r.method) is not allowed on a domain")
                }
            case ("POST", 4, "v1") where parts[1] == "domains":
                let name = parts[2]
                switch parts[3] {
                case "shutdown":
                    try manager.shutdown(name)
                    return .json(202, ["shutdown": name])
                case "vcpu-set":
                    guard let n = try Self.jsonBody(r)["vcpus"] as? Int else { throw HostError("body needs \"vcpus\": N", status: 400) }
                    return .json(200, ["reply": try manager.setVCPUs(name, n)])
                case "mem-set":
                    guard let m = try Self.jsonBody(r)["memory"] as? String else { throw HostError("body needs \"memory\": \"SIZE\"", status: 400) }
                    return .json(200, ["reply": try manager.setMemory(name, m)])
                case "pause": return .json(200, ["reply": try manager.pause(name)])
                case "unpause": return .json(200, ["reply": try manager.unpause(name)])
                case "save":
                    guard let file = try Self.jsonBody(r)["file"] as? String else { throw HostError("body needs \"file\": \"/path\"", status: 400) }
                    return .json(200, ["reply": try manager.save(name, file: file)])
                default: return .error(404, "no action '\(parts[3].prefix(32))' (shutdown, vcpu-set, mem-set, pause, unpause, save)")
                }
            default:
                return .error(404, "no such resource: \(r.method) \(r.path.prefix(128))")
            }
        } catch let e as HostError {
            return .error(e.status, e.description)
        } catch {
            return .error(500, "\(error)")
        }
    }

    static func jsonBody(_ r: HTTPServer.Request) throws -> [String: Any] {
        guard !r.body.isEmpty,
              let object = try? JSONSerialization.jsonObject(with: r.body), let dict = object as? [String: Any] else {
            throw HostError("the request body must be a JSON object", status: 400)
        }
        return dict
    }

    static func object(_ l: DomainManager.Listing) -> [String: Any] {
        ["name": l.name, "id": l.id, "pid": Int(l.pid), "type": l.mode, "memory_mib": l.memoryMiB,
         "maxmem_mib": l.maxMemoryMiB, "vcpus": l.vcpus, "maxvcpus": l.maxVCPUs, "state": l.state,
         "cpu_seconds": l.cpuSeconds, "vmm_resident_bytes": l.residentBytes, "created": l.created]
    }

    /// Prometheus exposition: one series per domain and figure.
    func metrics() -> String {
        let all = manager.list()
        var out = ""
        func family(_ name: String, _ help: String, _ type: String, _ value: (DomainManager.Listing) -> String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for l in all { out += "\(name){domain=\"\(l.name)\",id=\"\(l.id)\"} \(value(l))\n" }
        }
        out += "# HELP xenolith_domains Domains xenod manages.\n# TYPE xenolith_domains gauge\nxenolith_domains \(all.count)\n"
        family("xenolith_domain_vcpus", "vCPUs online.", "gauge") { String($0.vcpus) }
        family("xenolith_domain_memory_bytes", "Memory target of the guest.", "gauge") { String($0.memoryMiB << 20) }
        family("xenolith_domain_cpu_seconds_total", "CPU time of the domain's VMM process (guest and device work).", "counter") { String($0.cpuSeconds) }
        family("xenolith_domain_vmm_resident_bytes", "Resident memory of the VMM process, guest RAM included.", "gauge") { String($0.residentBytes) }
        family("xenolith_domain_running", "1 while the domain's VMM answers.", "gauge") { $0.state == "running" || $0.state == "paused" ? "1" : "0" }
        out += statisticsMetrics(all)
        out += creditMetrics()
        return out
    }
}

/// Serves the API on a Unix socket (mode 0600: no token needed) and, when
/// asked, on TCP with TLS, where every request must carry the bearer token.
public enum HostDaemon {
    public static func serve(socketPath: String, tcp: TCPListenerOptions? = nil, api: HostAPI,
                             log: @escaping @Sendable (String) -> Void = { _ in }) throws -> Never {
        // Everything that can be refused is checked before either listener accepts a connection.
        var network: HTTPServer?
        if let tcp {
            let token = try BearerToken(file: tcp.tokenFile)
            let context = try TLSServerContext(certificateChain: tcp.certificateChain, privateKey: tcp.privateKey)
            let (fd, bound) = try TCPListener.listen(tcp.address)
            network = HTTPServer(listener: fd, tls: context, authenticate: { request in
                guard let refusal = token.refusal(request) else { return nil }
                log("401 to \(request.peer) on https://\(bound): \(request.method.prefix(16)) \(request.path.prefix(128)): \(request.headers["authorization"] == nil ? "no token" : "wrong token")")
                return refusal
            }) { api.handle($0) }
            log("xenod listening on https://\(bound) (TLS, bearer token)")
        }
        let fd: Int32
        do { fd = try UnixSocket.listen(path: socketPath, what: "API socket") } catch { throw HostError(error.description) }
        log("xenod listening on \(socketPath)")
        if let network {
            let thread = Thread { network.serve() }
            thread.start()
        }
        HTTPServer(listener: fd) { api.handle($0) }.serve()
        throw HostError("accept failed on \(socketPath): \(String(cString: strerror(errno)))")
    }
}
