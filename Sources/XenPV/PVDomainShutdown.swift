import XenStore

extension PVDomain {
    /// Writes `control/shutdown` as Xen's toolstack does for `xl shutdown`
    /// and `xl reboot`; the guest's kernel acts on it (or ignores it: a
    /// guest without the xenbus shutdown watch keeps running).
    public func askGuestToShutDown(reboot: Bool) throws(DomainRequestError) {
        let path = XenStoreTree.domainPath(PVDomain.domainID) + "/control/shutdown"
        do {
            try store.write(path, reboot ? "reboot" : "poweroff")
        } catch {
            throw DomainRequestError("shutdown: cannot write control/shutdown: \(error)")
        }
    }
}
