/// `xl pause` / `xl unpause`: the VMM stops (or restarts) all the guest's
/// vCPUs; the reply comes once they are stopped.
extension DomainManager {
    public func pause(_ name: String) throws -> String {
        try withDomain(name) { d in try control(d, "pause") }
    }

    public func unpause(_ name: String) throws -> String {
        try withDomain(name) { d in try control(d, "unpause") }
    }
}
