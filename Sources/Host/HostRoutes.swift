/// Every route xenod's API serves, in the OpenAPI document's notation.
/// HostAPI answers a request only if it matches one (any other path: 404;
/// a known path with another method: 405), `xenod --routes` prints the
/// list, and the OpenAPI test holds docs/openapi.json to exactly this list:
/// a route added to HostAPI must be added here, and documented, to be served.
public enum HostRoutes {
    public static let all: [(method: String, path: String)] = [
        ("GET", "/v1/domains"),
        ("POST", "/v1/domains"),
        ("GET", "/v1/domains/{name}"),
        ("DELETE", "/v1/domains/{name}"),
        ("POST", "/v1/domains/{name}/shutdown"),
        ("POST", "/v1/domains/{name}/vcpu-set"),
        ("POST", "/v1/domains/{name}/mem-set"),
        ("POST", "/v1/domains/{name}/pause"),
        ("POST", "/v1/domains/{name}/unpause"),
        ("POST", "/v1/domains/{name}/save"),
        ("POST", "/v1/restore"),
        ("GET", "/metrics"),
        // xl's scheduler and host verbs (HostAPI+Verbs.swift).
        ("GET", "/v1/host"),
        ("GET", "/v1/sched-credit"),
        ("GET", "/v1/vcpus"),
        ("GET", "/v1/domains/{name}/sched-credit"),
        ("POST", "/v1/domains/{name}/sched-credit"),
        ("GET", "/v1/domains/{name}/vcpus"),
        ("GET", "/v1/domains/{name}/console"),
        ("POST", "/v1/domains/{name}/reboot"),
        ("POST", "/v1/domains/{name}/mem-max"),
    ]

    /// The list as `xenod --routes` prints it: `METHOD PATH` a line.
    public static var listing: String { all.map { "\($0.method) \($0.path)\n" }.joined() }

    /// nil when some route takes `method` on `path`; otherwise the 404 or 405 to send.
    static func refusal(method: String, path: String) -> HTTPServer.Response? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let methods = all.filter { matches($0.path, segments) }.map(\.method)
        if methods.contains(method) { return nil }
        if methods.isEmpty { return .error(404, "no such resource: \(method.prefix(16)) \(path.prefix(128))") }
        var response = HTTPServer.Response.error(405, "\(method.prefix(16)) is not allowed on \(path.prefix(128)) (\(methods.joined(separator: ", ")))")
        response.headers.append(("Allow", methods.joined(separator: ", ")))
        return response
    }

    /// `{x}` matches one non-empty segment; anything else matches itself.
    static func matches(_ pattern: String, _ segments: ArraySlice<Substring>) -> Bool {
        let parts = pattern.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard parts.count == segments.count else { return false }
        return zip(parts, segments).allSatisfy { p, s in
            p.hasPrefix("{") && p.hasSuffix("}") ? !s.isEmpty : p == s
        }
    }
}
