import CKVM
import Glibc
import GuestImage
import KVM
import Synchronization
import XenRings
import XenStore

/// What to build a PV domain from.
public struct PVDomainConfig: Sendable {
    public var name: String = "xenolith"
    public var memoryBytes: UInt64
    /// vCPUs online at boot.
    public var vcpus: Int
    /// vCPUs the guest has (all possible to Linux; those beyond `vcpus`
    /// start unavailable and can be added while it runs).
    public var maxVCPUs: Int
    public var cmdline: String
    public var kernel: GuestKernel
    public var initrd: [UInt8]?

    /// Everything but the images.
    public struct Settings: Sendable {
        public let name: String
        public let memoryBytes: UInt64
        public let vcpus: Int
        public let maxVCPUs: Int
        public let cmdline: String
    }

    public var settings: Settings {
        Settings(name: name, memoryBytes: memoryBytes, vcpus: vcpus, maxVCPUs: maxVCPUs, cmdline: cmdline)
    }

    public init(name: String = "xenolith", memoryBytes: UInt64, vcpus: Int, maxVCPUs: Int? = nil, cmdline: String,
                kernel: GuestKernel, initrd: [UInt8]?) {
        self.name = name; self.memoryBytes = memoryBytes; self.vcpus = vcpus; self.maxVCPUs = maxVCPUs ?? vcpus
        self.cmdline = cmdline; self.kernel = kernel; self.initrd = initrd
    }
}

/// Why a domain stopped.
public enum DomainExit: Equatable, Sendable {
    case poweroff
    case reboot
    case crash(String)
    case stopped        // by a signal or the host
}

/// A Xen PV guest on KVM: guest memory, the hypervisor area, the vCPUs, and
/// the state they share (page types, event channels, console, time).
public final class PVDomain: @unchecked Sendable {
    /// The configuration without the kernel and initrd images, which are
    /// dropped once loaded (they are tens of MiB the VMM need not keep).
    public let config: PVDomainConfig.Settings
    let kvm: KVMSystem
    let vm: VirtualMachine
    public let memory: GuestMemory
    let hypervisor: HypervisorArea
    let sharedInfoFrame: UInt64
    /// The grant table the frontends fill in and the backends read.
    public let grants: GrantTable
    /// Split-driver backends in the VMM, by the index their ports name.
    private let deviceBackends = Mutex<[any PVDeviceBackend]>([])
    var time: GuestTime
    public let frames: UInt64

    /// Page types and the event channel table, under one lock (Xen's domain lock).
    let mmu: Mutex<PageTypes>
    let events: Mutex<EventChannels>
    private(set) var vcpus: [PVCPU] = []
    /// Save in progress (PVDomainSave.swift): set while the guest is asked
    /// to suspend; the guest's SCHEDOP_shutdown(suspend) fills it in.
    let suspension = Mutex<Suspension?>(nil)
    /// How long each part of a restore took (XENO_TIMING).
    var restoreTimings = ""

    /// Start-of-day facts the builder fixed.
    var startInfoVirtual: UInt64 = 0
    var bootStackTop: UInt64 = 0
    var initialL4: UInt64 = 0
    var consolePort = 0, storePort = 0
    var consoleFrame: UInt64 = 0, storeFrame: UInt64 = 0

    /// Set once, by the first vCPU that ends the domain.
    private let exitState = Mutex<DomainExit?>(nil)
    public let console: ConsoleBackend
    /// The domain's xenstore (the VMM hosts it, as dom0's xenstored would).
    public let store = XenStoreTree()
    public static let domainID = 1
    /// The domain's handle (XENVER_guest_handle; its UUID), random per boot.
    public internal(set) var handle: (UInt64, UInt64) = (UInt64.random(in: 0...UInt64.max), UInt64.random(in: 0...UInt64.max))
    var storeConnection: XenStoreConnection!
    /// Wakes the store pump: output for the guest was queued by someone
    /// other than the guest (a backend, a host tool), which no notification
    /// from the guest will move into its ring.
    let storePumpWake = ckvm_eventfd()
    private let storePumpStopping = Atomic<Bool>(false)

    deinit { close(storePumpWake) }
    let storeRing = Mutex<XenStoreRing?>(nil)

    public var exitReason: DomainExit? { exitState.withLock { $0 } }
    /// `pause`: closed while the guest is paused (PVDomainPause.swift).
    public let pauseGate = PauseGate()

    public convenience init(config: PVDomainConfig, consoleOutput: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws {
        guard config.kernel.xen != nil else { throw BuildError.noXenSupport }
        try self.init(settings: config.settings, consoleOutput: consoleOutput)
        try build(kernel: config.kernel, initrd: config.initrd)
    }

    /// The machine without its contents: memory, hypervisor area, vCPUs.
    /// A boot builds the start-of-day state in it, a restore loads a saved one.
    init(settings config: PVDomainConfig.Settings, consoleOutput: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws {
        self.config = config
        kvm = try KVMSystem()
        guard config.maxVCPUs >= 1 && config.maxVCPUs <= min(PVDomain.maxVCPUs, kvm.maxVCPUs) else {
            throw BuildError.vcpuCount(config.maxVCPUs, min(PVDomain.maxVCPUs, kvm.maxVCPUs))
        }
        guard config.vcpus >= 1 && config.vcpus <= config.maxVCPUs else {
            throw BuildError.vcpuCount(config.vcpus, config.maxVCPUs)
        }
        vm = try kvm.createVM()
        memory = try GuestMemory(size: config.memoryBytes, name: "xenolith-\(config.name)")
        frames = config.memoryBytes / Layout.pageSize
        try vm.setMemoryRegion(slot: 0, guestPhysical: 0, size: config.memoryBytes, host: memory.base)
        hypervisor = try HypervisorArea(guestMemorySize: config.memoryBytes, vcpus: config.maxVCPUs)
        try hypervisor.register(with: vm, slot: 1)
        sharedInfoFrame = hypervisor.sharedInfo >> 12
        grants = GrantTable(base: hypervisor.pointer(hypervisor.grantTable), firstFrame: hypervisor.grantTable >> 12)
        var types = PageTypes(frames: frames)
        types.extraFrames = Set([sharedInfoFrame] + Array(grants.frameNumbers))
        types.hypervisorL4 = hypervisor.l4Entries
        mmu = Mutex(types)
        events = Mutex(EventChannels(vcpus: config.maxVCPUs))
        time = GuestTime(tscKHz: 1)
        console = ConsoleBackend(output: consoleOutput)
        // Every vCPU exists from the start (Linux sizes its possible CPUs by
        // VCPUOP_is_up); only vCPU 0 runs until the guest brings up the rest.
        for i in 0..<config.maxVCPUs {
            vcpus.append(try PVCPU(domain: self, id: i, vcpu: try vm.createVCPU(id: i)))
        }
        let khz = UInt64((try? vcpus[0].kvm.tscKHz()) ?? 0)
        time = GuestTime(tscKHz: khz > 0 ? khz : 1_000_000)
    }

    public static let maxVCPUs = 32

    public enum BuildError: Error, CustomStringConvertible {
        case noXenSupport
        case vcpuCount(Int, Int)
        case tooSmall(needed: UInt64)
        case initrdTooLarge(size: Int, room: UInt64)
        case invalidPageTables(String)
        public var description: String {
            switch self {
            case .noXenSupport: "kernel has no Xen PV support (no Xen ELF notes); use --hvm"
            case .vcpuCount(let n, let max): "\(n) vCPUs requested; 1 to \(max) are supported"
            case .tooSmall(let n): "memory too small for this kernel: need at least \(n >> 20) MiB"
            case .initrdTooLarge(let s, let room): "initrd of \(s >> 20) MiB does not fit: \(room >> 20) MiB left after the kernel"
            case .invalidPageTables(let why): "the initial page tables are invalid: \(why)"
            }
        }
    }

    var sharedInfo: UnsafeMutableRawPointer { hypervisor.pointer(hypervisor.sharedInfo) }

    // MARK: Domain builder (start-of-day layout of the x86-64 PV ABI)

    private func build(kernel: GuestKernel, initrd: [UInt8]?) throws {
        let xen = kernel.xen!
        let virtBase = xen.virtBase
        var kernelEnd: UInt64 = 0
        try kernel.loadSegments { paddr, bytes, memorySize in
            guard paddr + memorySize <= self.memory.size else { throw BuildError.tooSmall(needed: paddr + memorySize + (64 << 20)) }
            _ = self.memory.write(bytes, at: paddr)
            kernelEnd = max(kernelEnd, paddr + memorySize)
        }
        func pageUp(_ x: UInt64) -> UInt64 { (x + 4095) & ~4095 }
        var next = pageUp(kernelEnd) >> 12          // next free pfn
        func take(_ n: UInt64) -> UInt64 { defer { next += n }; return next }
        let startInfo = take(1)
        storeFrame = take(1)
        consoleFrame = take(1)
        let p2mFrames = (frames * 8 + 4095) / 4096
        let p2m = take(p2mFrames)
        // Page tables: L4, L3, L2, then enough L1s to map through their own end,
        // the boot stack and the padding (to a 4 MiB boundary, ≥ 512 KiB spare).
        let tablesStart = next
        var l1Count: UInt64 = 1
        var mappedEnd: UInt64 = 0
        while true {
            let end = tablesStart + 3 + l1Count + 1     // + boot stack
            mappedEnd = ((end << 12) + (512 << 10) + (4 << 20) - 1) & ~UInt64((4 << 20) - 1)
            let needed = (mappedEnd + (2 << 20) - 1) >> 21
            if needed <= l1Count { break }
            l1Count = needed
        }
        guard mappedEnd <= 1 << 30 else { throw BuildError.tooSmall(needed: mappedEnd) }
        let l4 = take(1), l3 = take(1), l2 = take(1)
        let l1Base = take(l1Count)
        let stack = take(1)
        guard mappedEnd + (16 << 20) <= memory.size else { throw BuildError.tooSmall(needed: mappedEnd + (64 << 20)) }

        // Identity p2m.
        let p2mPtr = memory.pointer(p2m << 12, length: p2mFrames * 4096)!.assumingMemoryBound(to: UInt64.self)
        for pfn in 0..<frames { p2mPtr[Int(pfn)] = pfn }

        // Tables: pfn N at virtBase + N*4K for N < mappedEnd/4K, 4K pages,
        // RW except the tables themselves.
        func e(_ frame: UInt64, _ flags: UInt64) -> UInt64 { (frame << 12) | flags | PTE.present | PTE.user | PTE.accessed }
        let rw = PTE.writable
        memory.store(e(l3, rw), at: (l4 << 12) + UInt64(PTE.index(virtBase, level: 4)) * 8)
        memory.store(e(l2, rw), at: (l3 << 12) + UInt64(PTE.index(virtBase, level: 3)) * 8)
        let tableFrames = Set(UInt64(l4)...UInt64(l1Base + l1Count - 1))
        for i in 0..<l1Count {
            memory.store(e(l1Base + i, rw), at: (l2 << 12) + UInt64(PTE.index(virtBase, level: 2) + Int(i)) * 8)
        }
        for pfn in 0..<(mappedEnd >> 12) {
            let l1 = l1Base + pfn / 512
            let flags: UInt64 = tableFrames.contains(pfn) ? 0 : rw
            memory.store(e(pfn, flags | PTE.dirty), at: (l1 << 12) + (pfn % 512) * 8)
        }
        initialL4 = l4
        var replay: [UInt64] = []
        let failure = mmu.withLock { types -> PageTypes.Failure? in
            if let f = types.pin(l4, as: .l4, memory: memory, replay: &replay) { return f }
            return types.get(l4, as: .l4, memory: memory, replay: &replay)   // vCPU 0's CR3
        }
        if let failure { throw BuildError.invalidPageTables("\(failure)") }

        // Initrd after the mapped region, by pfn (SIF_MOD_START_PFN).
        var modStart: UInt64 = 0, modLength: UInt64 = 0
        if let initrd {
            let at = mappedEnd
            let room = memory.size > at + (32 << 20) ? memory.size - at - (32 << 20) : 0
            guard UInt64(initrd.count) <= room else { throw BuildError.initrdTooLarge(size: initrd.count, room: room) }
            initrd.withUnsafeBytes { _ = memory.write($0, at: at) }
            modStart = at >> 12; modLength = UInt64(initrd.count)
        }

        try setUpStoreAndEvents(initializeRing: true)

        // start_info.
        let si = startInfo << 12
        let magic = Array("xen-3.0-x86_64".utf8) + [0]
        magic.withUnsafeBytes { _ = memory.write($0, at: si) }
        memory.store(frames, at: si + 32)
        memory.store(hypervisor.sharedInfo, at: si + 40)
        memory.store(UInt32(1 << 2), at: si + 48)          // SIF_MOD_START_PFN... set below
        memory.store(storeFrame, at: si + 56)
        memory.store(UInt32(storePort), at: si + 64)
        memory.store(consoleFrame, at: si + 72)
        memory.store(UInt32(consolePort), at: si + 80)
        memory.store(virtBase + (l4 << 12), at: si + 88)
        memory.store(UInt64(3 + l1Count), at: si + 96)
        memory.store(virtBase + (p2m << 12), at: si + 104)
        memory.store(modStart, at: si + 112)
        memory.store(modLength, at: si + 120)
        var cmd = Array(config.cmdline.utf8.prefix(1023)) + [0]
        cmd.withUnsafeMutableBytes { _ = memory.write(UnsafeRawBufferPointer($0), at: si + 128) }
        memory.store(UInt32(modLength > 0 ? 1 << 3 : 0), at: si + 48)   // SIF_MOD_START_PFN = 1<<3
        startInfoVirtual = virtBase + si
        bootStackTop = virtBase + ((stack + 1) << 12)

        setUpSharedInfo()
        try vcpus[0].setupBoot(entry: xen.entry, stack: bootStackTop, startInfo: startInfoVirtual, cr3: l4 << 12)
    }

    /// The event channels of xenstore and the console (ports allocated
    /// first, so a restored domain gets the same numbers), the domain's
    /// xenstore directory and the store ring, as Xen's toolstack sets them
    /// up for a new domain. A restored guest's ring page is adopted as it
    /// stands (its indices are the guest's).
    func setUpStoreAndEvents(initializeRing: Bool) throws {
        // Event channels to the backends.
        events.withLock { ev in
            storePort = ev.allocate(.backend(.xenstore))!
            consolePort = ev.allocate(.backend(.console))!
        }

        // Xenstore: the guest's directory and its ring.
        store.populateDomain(id: PVDomain.domainID, name: config.name, vcpus: config.maxVCPUs,
                             availableVCPUs: config.vcpus, memoryKiB: config.memoryBytes >> 10,
                             storeRing: (port: UInt32(storePort), frame: storeFrame),
                             consoleRing: (port: UInt32(consolePort), frame: consoleFrame))
        let wake = storePumpWake
        storeConnection = XenStoreConnection(tree: store, domainID: PVDomain.domainID, onOutput: {
            var one: UInt64 = 1
            _ = write(wake, &one, 8)       // only signal: the store's lock is held here
        })
        let ringPage = memory.pointer(storeFrame << 12, length: 4096)!
        if initializeRing { XenStoreRing.initialize(page: ringPage) }
        storeRing.withLock { $0 = XenStoreRing(page: ringPage) }

    }

    /// shared_info masks all vCPUs; the wall clock and each vCPU's time.
    func setUpSharedInfo() {
        for v in 0..<PVDomain.maxVCPUs { sharedInfo.storeBytes(of: UInt8(1), toByteOffset: v * 64 + 1, as: UInt8.self) }
        time.publishWallClock(sharedInfo: sharedInfo)
        for (i, cpu) in vcpus.enumerated() {
            cpu.vcpuInfo = sharedInfo + i * 64
            time.publish(to: cpu.vcpuInfo + 32, tscOffset: cpu.tscOffset)
        }
    }

    // MARK: Running

    /// Runs every online vCPU on its own thread until the domain ends.
    public func run() -> DomainExit {
        var threads: [pthread_t] = []
        for cpu in vcpus {
            var t = pthread_t()
            let box = Unmanaged.passRetained(cpu).toOpaque()
            pthread_create(&t, nil, { arg in
                let cpu = Unmanaged<PVCPU>.fromOpaque(arg!).takeRetainedValue()
                cpu.threadMain()
                return nil
            }, box)
            threads.append(t)
        }
        var pump = pthread_t()
        pthread_create(&pump, nil, { arg in
            let domain = Unmanaged<PVDomain>.fromOpaque(arg!).takeUnretainedValue()
            var count: UInt64 = 0
            while read(domain.storePumpWake, &count, 8) > 0 || errno == EINTR {
                if domain.storePumpStopping.load(ordering: .acquiring) { break }
                domain.serviceStore()
            }
            return nil
        }, Unmanaged.passUnretained(self).toOpaque())
        for t in threads { pthread_join(t, nil) }
        storePumpStopping.store(true, ordering: .releasing)
        var one: UInt64 = 1
        _ = write(storePumpWake, &one, 8)
        pthread_join(pump, nil)
        if getenv("XENO_STATS") != nil {
            let words = (0..<4).map { w -> String in
                let p = String((sharedInfo + 2048 + w * 8).load(as: UInt64.self), radix: 16)
                let m = String((sharedInfo + 2560 + w * 8).load(as: UInt64.self), radix: 16)
                return "pending[\(w)]=\(p) mask[\(w)]=\(m)"
            }.joined(separator: " ")
            let bindings = events.withLock { ev in
                ev.ports.indices.dropFirst().map { "\($0):\(ev.ports[$0])@\(ev.notifyVCPU[$0])" }.joined(separator: " ")
            }
            let line = words + "\nports " + bindings + "\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
            for cpu in vcpus {
                let line = cpu.statistics + "\n"
                _ = line.withCString { write(2, $0, strlen($0)) }
            }
        }
        return exitReason ?? .stopped
    }

    /// Ends the domain (first reason wins) and stops every vCPU.
    public func end(_ reason: DomainExit) {
        let first = exitState.withLock { state -> Bool in
            if state == nil { state = reason; return true }
            return false
        }
        if first { for cpu in vcpus { cpu.stop() } }
    }

    // MARK: Events

    /// Raises `port`: the 2-level ABI's pending/selector/upcall steps.
    func raise(port: Int) {
        let target = events.withLock { ev -> Int? in
            guard port > 0 && port < ev.ports.count, ev.ports[port] != .free, ev.ports[port] != .reserved else { return nil }
            return ev.notifyVCPU[port]
        }
        guard let target, target < vcpus.count else { return }
        let si = sharedInfo
        let word = port / 64, bit = UInt64(1) << UInt64(port % 64)
        let old = ckvm_atomic_or64(si + 2048 + word * 8, bit)
        if old & bit != 0 { return }
        let mask = (si + 2560 + word * 8).load(as: UInt64.self)
        if mask & bit != 0 {
            // Masked: no upcall, but a vCPU polling for it must wake (PV spinlocks).
            for cpu in vcpus where cpu.polling.load(ordering: .acquiring) { cpu.kick() }
            return
        }
        vcpus[target].markPending(selector: word)
    }

    /// Moves xenstore requests and replies through the ring; notifies the guest.
    public func serviceStore() {
        let moved = storeRing.withLock { ring -> Bool in
            guard var r = ring else { return false }
            let m = r.service(connection: storeConnection)
            ring = r
            return m
        }
        if PVCPU.tracing {
            let p = memory.pointer(storeFrame << 12, length: 4096)!
            let hdr = (0..<6).map { String(p.load(fromByteOffset: $0 * 4, as: UInt32.self), radix: 16) }.joined(separator: ",")
            let line = "xenstore moved=\(moved) hdr=\(hdr) req \(p.load(fromByteOffset: 2048, as: UInt32.self))/\(p.load(fromByteOffset: 2052, as: UInt32.self)) rsp \(p.load(fromByteOffset: 2056, as: UInt32.self))/\(p.load(fromByteOffset: 2060, as: UInt32.self))\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
        }
        if moved { raise(port: storePort) }
    }

    // MARK: Split-driver backends

    /// Adds a backend; returns the index its event channel bindings use.
    public func register(_ backend: any PVDeviceBackend) -> Int {
        deviceBackends.withLock { $0.append(backend); return $0.count - 1 }
    }

    /// Binds the frontend's port (allocated unbound for domain 0) to backend
    /// `device`, as EVTCHNOP_bind_interdomain does for a backend domain.
    public func bindBackend(port: Int, device: Int) -> Bool {
        events.withLock { ev in
            guard port > 0 && port < ev.ports.count, ev.ports[port] == .unbound(remote: 0) else { return false }
            ev.ports[port] = .backend(.device(device))
            return true
        }
    }

    /// Returns the frontend's port to unbound (the backend disconnected).
    public func unbindBackend(port: Int, device: Int) {
        events.withLock { ev in
            if port > 0 && port < ev.ports.count, ev.ports[port] == .backend(.device(device)) {
                ev.ports[port] = .unbound(remote: 0)
            }
        }
    }

    /// Notifies the frontend on `port` if it is still bound to `device`.
    public func notifyFrontend(port: Int, device: Int) {
        guard events.withLock({ $0.binding(port) }) == .backend(.device(device)) else { return }
        raise(port: port)
    }

    /// The guest page grant `ref` names, claimed for domain 0, if the grant
    /// permits the access and names the guest's own RAM. The grant shows as
    /// in use to the guest (it cannot end the access) until `release(grant:writable:)`.
    public func claim(grant ref: UInt32, writable: Bool) -> Result<UnsafeMutableRawPointer, GrantRefusal> {
        let frame: UInt64
        switch grants.claim(ref, writable: writable) {
        case .success(let f): frame = f
        case .failure(let why): return .failure(why)
        }
        guard mmu.withLock({ $0.owns(frame) }), let page = memory.pointer(frame << 12, length: 4096) else {
            grants.release(ref, writable: writable)
            return .failure(.frameNotGuestRAM(ref: ref, frame: frame))
        }
        return .success(page)
    }

    /// Ends one claim `claim(grant:writable:)` made, with the same `writable`.
    public func release(grant ref: UInt32, writable: Bool) { grants.release(ref, writable: writable) }

    func raiseVIRQ(_ virq: Int, vcpu: Int) {
        let port = events.withLock { $0.virqPorts[vcpu][virq] }
        if let port { raise(port: port) }
    }

    /// A notification from the guest on `port` (EVTCHNOP_send).
    func send(port: Int, from vcpu: Int) -> Int64 {
        let b = events.withLock { $0.binding(port) }
        switch b {
        case .free, .reserved: return -XenErrno.EINVAL
        case .backend(.console): console.service(domain: self)
        case .backend(.xenstore): serviceStore()
        case .backend(.device(let index)):
            let backend = deviceBackends.withLock { index < $0.count ? $0[index] : nil }
            backend?.frontendNotified()
        case .ipi(let target):
            _ = target
            raise(port: port)
        case .virq, .unbound: raise(port: port)
        }
        return 0
    }
}

/// The backends claim the guest's grants through the domain.
extension PVDomain: GrantMapper {}
