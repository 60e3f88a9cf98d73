import XenStore

/// A request from the host (the control socket) that the domain refused.
public struct DomainRequestError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What the host toolstack may change in a running PV domain. Like Xen's
/// toolstack, it only writes xenstore and the guest's own drivers act on it:
/// cpu_hotplug.c offlines a CPU made unavailable (VCPUOP_down, see
/// VCPUHotplug.swift) and makes an available one present, for the guest's
/// user space to online (a udev rule, in a Xen guest); xen-balloon follows
/// memory/target (Balloon.swift).
extension PVDomain {
    private var domainPath: String { XenStoreTree.domainPath(PVDomain.domainID) }

    /// vCPUs the guest has up now (VCPUOP_up'd and not VCPUOP_down'd).
    public var onlineVCPUCount: Int { vcpus.count { $0.online.load(ordering: .acquiring) } }

    /// VM exits of all vCPUs so far (for the control socket's `stats`).
    public var exitCount: UInt64 { vcpus.reduce(0) { $0 &+ $1.exits } }

    /// Makes vCPUs 0..<n available and the rest unavailable, as `xl vcpu-set`
    /// does: `cpu/<i>/availability` = online/offline for every vCPU.
    public func setAvailableVCPUs(_ n: Int) throws(DomainRequestError) {
        guard n >= 1 && n <= config.maxVCPUs else {
            throw DomainRequestError("vcpu-set \(n): this guest has 1 to \(config.maxVCPUs) vCPUs (--maxvcpus)")
        }
        for i in 0..<config.maxVCPUs {
            do {
                try store.write("\(domainPath)/cpu/\(i)/availability", i < n ? "online" : "offline")
            } catch {
                throw DomainRequestError("vcpu-set: cannot write cpu/\(i)/availability: \(error)")
            }
        }
    }

    /// Asks the guest's balloon driver for `bytes` of memory (memory/target,
    /// in KiB). The boot size is the most it may have (memory/static-max).
    public func setMemoryTarget(bytes: UInt64) throws(DomainRequestError) {
        guard bytes <= config.memoryBytes else {
            throw DomainRequestError("mem-set: \(bytes >> 20) MiB exceeds this guest's maximum of \(config.memoryBytes >> 20) MiB (its boot size)")
        }
        do {
            try store.write("\(domainPath)/memory/target", String(bytes >> 10))
        } catch {
            throw DomainRequestError("mem-set: cannot write memory/target: \(error)")
        }
    }

    /// memory/target as the host last set it, in KiB.
    public var memoryTargetKiB: UInt64 {
        (try? store.readString("\(domainPath)/memory/target")).flatMap { UInt64($0) } ?? (config.memoryBytes >> 10)
    }

    /// Memory the guest holds now (its boot size less what it ballooned out), in KiB.
    public var currentMemoryKiB: UInt64 {
        (frames - mmu.withLock { $0.balloonedCount }) * (Layout.pageSize >> 10)
    }
}
