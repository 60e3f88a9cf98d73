import Glibc

/// xl's verbs that stop and start a domain's vCPUs (and, later, save and
/// restore it), kept apart from the others so each set stays small.
extension Toolstack {
    public static let lifecycleVerbs: Set<String> = ["pause", "unpause", "save", "restore"]

    public static let lifecycleUsage = """
           xeno pause NAME             stop all the domain's vCPUs (its time goes on; the guest sees it as steal)
           xeno unpause NAME           let them run again
           xeno save NAME FILE         suspend a PV domain into FILE; it leaves the host
           xeno restore FILE           bring a saved domain back (its processes and connections intact)

    """

    /// `path` from the current directory (xenod and the VMM have their own).
    static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(cString: buffer)
        return (cwd.hasSuffix("/") ? cwd : cwd + "/") + path
    }

    /// Runs one of `lifecycleVerbs`; the process's exit status.
    public static func runLifecycle(_ verb: String, _ args: [String]) -> Int32 {
        do {
            switch (verb, args.count) {
            case ("pause", 1), ("unpause", 1):
                _ = try HTTPClient.request(socket: socketPath, method: "POST", path: "/v1/domains/\(escape(args[0]))/\(verb)")
            case ("save", 2):
                let r = try HTTPClient.request(socket: socketPath, method: "POST", path: "/v1/domains/\(escape(args[0]))/save",
                                               body: "{\"file\":\(JSONValue.quote(absolute(args[1])))}")
                print("domain \(args[0]) saved to \(absolute(args[1])) (\(r["reply"]?.string ?? ""))")
            case ("restore", 1):
                let r = try HTTPClient.request(socket: socketPath, method: "POST", path: "/v1/restore",
                                               body: "{\"file\":\(JSONValue.quote(absolute(args[0])))}")
                print("domain \(r["name"]?.string ?? "?") restored (id \(r["id"]?.int ?? 0))")
            default:
                throw ToolstackError("usage:\n" + lifecycleUsage)
            }
            return 0
        } catch {
            let text = "xeno \(verb): \(error)\n"
            _ = text.withCString { write(2, $0, strlen($0)) }
            return 1
        }
    }
}
