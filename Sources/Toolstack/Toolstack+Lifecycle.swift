import Glibc

/// xl's verbs that stop and start a domain's vCPUs (and, later, save and
/// restore it), kept apart from the others so each set stays small.
extension Toolstack {
    public static let lifecycleVerbs: Set<String> = ["pause", "unpause"]

    public static let lifecycleUsage = """
           xeno pause NAME             stop all the domain's vCPUs (its time goes on; the guest sees it as steal)
           xeno unpause NAME           let them run again

    """

    /// Runs one of `lifecycleVerbs`; the process's exit status.
    public static func runLifecycle(_ verb: String, _ args: [String]) -> Int32 {
        do {
            switch (verb, args.count) {
            case ("pause", 1), ("unpause", 1):
                _ = try HTTPClient.request(socket: socketPath, method: "POST", path: "/v1/domains/\(escape(args[0]))/\(verb)")
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
