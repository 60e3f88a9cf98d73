import CKVM

/// One event channel port's binding (Xen's 2-level ABI).
enum ChannelBinding: Equatable, Sendable {
    case free
    /// Bound to a backend inside the VMM (console, xenstore, ...).
    case backend(Backend)
    case virq(Int, vcpu: Int)
    case ipi(vcpu: Int)
    case unbound(remote: Int)
    /// In a restored domain, a port the saved domain had: never handed out
    /// again (Xen's ECS_RESERVED). A resuming guest may still close its old
    /// port numbers (Linux's hvc_xen does, for a secondary console) and must
    /// not close another device's new port that happens to have one.
    case reserved
}

enum Backend: Equatable, Sendable {
    case console, xenstore
    /// A split-driver backend (block, network, ...), by its index in the domain.
    case device(Int)
}

/// Event channel ports of a domain. Delivery writes the pending and selector
/// bits in guest memory with atomics (the guest clears them concurrently) and
/// wakes the target vCPU.
struct EventChannels {
    static let portLimit = 4096     // 2-level ABI on 64-bit: 64 × 64
    var ports: [ChannelBinding] = [.free]   // port 0 is never used
    var notifyVCPU: [Int] = [0]
    var virqPorts: [[Int: Int]]      // per vCPU: virq → port

    init(vcpus: Int) { virqPorts = Array(repeating: [:], count: vcpus) }

    mutating func allocate(_ b: ChannelBinding, vcpu: Int = 0) -> Int? {
        if let i = ports.indices.dropFirst().first(where: { ports[$0] == .free }) {
            ports[i] = b; notifyVCPU[i] = vcpu
            return i
        }
        guard ports.count < EventChannels.portLimit else { return nil }
        ports.append(b); notifyVCPU.append(vcpu)
        return ports.count - 1
    }

    /// Reserves every port below `count` that is free (a restore, once the
    /// store and console have theirs): new ports are numbered above them.
    mutating func reserve(below count: Int) {
        while ports.count < min(count, EventChannels.portLimit) { ports.append(.free); notifyVCPU.append(0) }
        for p in ports.indices.dropFirst() where ports[p] == .free { ports[p] = .reserved }
    }

    func binding(_ port: Int) -> ChannelBinding {
        port > 0 && port < ports.count ? ports[port] : .free
    }
}
