import XenStore

/// A split device's connection state as both ends publish it in xenstore
/// (`XenbusState` in Xen's public `io/xenbus.h`).
public enum XenBusState: Int, Sendable {
    case unknown = 0, initialising, initWait, initialised, connected, closing, closed, reconfiguring, reconfigured
}

/// One split-driver device's two xenstore directories, made the way Xen's
/// toolstack makes them: the frontend directory under the guest's home
/// (owned by the guest, readable by domain 0) says where the backend is; the
/// backend directory under domain 0 (readable by the guest) carries the
/// backend's state and features.
struct XenBusDevice: Sendable {
    let store: XenStoreTree
    let frontendDomain: Int
    let frontendPath: String
    let backendPath: String

    /// Creates both directories. `kind` is the device class ("vbd", "vif"),
    /// `deviceID` its number in the guest (a vbd's is the Linux device number).
    init(store: XenStoreTree, frontendDomain: Int, kind: String, deviceID: Int,
         frontendNodes: [(String, String)], backendNodes: [(String, String)]) throws(XenStoreError) {
        self.store = store
        self.frontendDomain = frontendDomain
        frontendPath = "/local/domain/\(frontendDomain)/device/\(kind)/\(deviceID)"
        backendPath = "/local/domain/0/backend/\(kind)/\(frontendDomain)/\(deviceID)"
        let guestReads = [XenStorePermission(domain: 0, access: .none), XenStorePermission(domain: frontendDomain, access: .read)]
        let guestOwns = [XenStorePermission(domain: frontendDomain, access: .none), XenStorePermission(domain: 0, access: .read)]
        try? store.remove(backendPath)
        try? store.remove(frontendPath)
        try store.mkdir(backendPath)
        try store.setPermissions(backendPath, guestReads)
        for (node, value) in [("frontend", frontendPath), ("frontend-id", String(frontendDomain)), ("online", "1"),
                              ("state", String(XenBusState.initialising.rawValue))] + backendNodes {
            try store.write("\(backendPath)/\(node)", value)
        }
        try store.mkdir(frontendPath)
        try store.setPermissions(frontendPath, guestOwns)
        for (node, value) in [("backend", backendPath), ("backend-id", "0"),
                              ("state", String(XenBusState.initialising.rawValue))] + frontendNodes {
            try store.write("\(frontendPath)/\(node)", value)
        }
    }

    var frontendStatePath: String { frontendPath + "/state" }

    func setBackendState(_ state: XenBusState) {
        try? store.write(backendPath + "/state", String(state.rawValue))
    }

    func writeBackend(_ node: String, _ value: String) {
        try? store.write("\(backendPath)/\(node)", value)
    }

    var frontendState: XenBusState {
        guard let text = try? store.readString(frontendStatePath), let n = Int(text) else { return .unknown }
        return XenBusState(rawValue: n) ?? .unknown
    }

    /// A node the guest wrote in its frontend directory, read as domain 0.
    func frontend(_ node: String) -> String? {
        try? store.readString("\(frontendPath)/\(node)")
    }
}

/// The backend's half of one device's handshake: the state it last
/// published, and the frontend's changes followed as `XenBusStep` says.
/// Used only on the backend's own thread.
final class XenBusHandshake {
    let device: XenBusDevice
    private(set) var state = XenBusState.initWait

    init(device: XenBusDevice) { self.device = device }

    func publish(_ s: XenBusState) {
        state = s
        device.setBackendState(s)
    }

    /// Does what the frontend's state asks: `step` decides from that state
    /// and ours (each device has its own rule for when it may connect).
    func follow(_ step: (_ frontend: XenBusState, _ backend: XenBusState) -> XenBusStep,
                connect: () -> Void, disconnect: () -> Void) {
        switch step(device.frontendState, state) {
        case .connect: connect()
        case .disconnect(let then):
            disconnect()
            if let then { publish(then) }
        case .nothing: break
        }
    }
}

/// What a frontend's new state asks of its backend: the backend half of the
/// handshake of `io/xenbus.h`, as Xen's backends follow it, shared by every
/// split driver here.
enum XenBusStep: Equatable {
    case connect
    /// Drop the connection (if any), then publish the state, if one is given.
    case disconnect(then: XenBusState?)
    case nothing

    /// Connect when the frontend has published its rings; close when it
    /// closes; be ready again when it starts over (a module reload, kexec).
    static func next(frontend: XenBusState, backend: XenBusState, connected: Bool) -> XenBusStep {
        switch frontend {
        case .initialised, .connected:
            return !connected && backend == .initWait ? .connect : .nothing
        case .closing:
            return .disconnect(then: backend == .closed ? nil : .closing)
        case .closed:
            return .disconnect(then: .closed)
        case .initialising, .unknown:
            return backend == .closed || backend == .closing || connected ? .disconnect(then: .initWait) : .nothing
        default:
            return .nothing
        }
    }
}
