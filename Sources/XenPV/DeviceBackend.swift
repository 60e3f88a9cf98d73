/// A split-driver backend the VMM runs for a PV domain (blkback, netback):
/// the domain calls it when the frontend notifies the port bound to it.
public protocol PVDeviceBackend: AnyObject, Sendable {
    /// The frontend sent an event. Runs on the sending vCPU's thread inside
    /// a hypercall: it must only signal the backend's own thread.
    func frontendNotified()
}
