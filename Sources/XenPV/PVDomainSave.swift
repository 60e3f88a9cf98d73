import CKVM
import Glibc
import KVM
import XenStore

/// A save in progress: asked for by the host, then answered by the guest's
/// SCHEDOP_shutdown(SHUTDOWN_suspend).
struct Suspension {
    /// The vCPU whose hypercall suspended the guest, once it has.
    var suspendedBy: Int?
    var startInfoFrame: UInt64 = 0
}

/// `xeno save` for a PV domain, Xen's way: the toolstack writes
/// `control/shutdown = "suspend"`; the guest's own Xen code
/// (drivers/xen/manage.c) freezes its processes, suspends its devices and
/// calls SCHEDOP_shutdown(SHUTDOWN_suspend) with every other vCPU held in
/// stop_machine. The domain is then paused (every vCPU at the pause gate,
/// its context in the VMM), and the image holds guest memory, each vCPU's
/// context and the hypervisor-level state a new domain needs: the pinned
/// page tables and the ballooned frames (page types are validated again on
/// restore), the store and console frames and ports, the guest's system
/// time. Not the backends: in the restored domain the suspend hypercall
/// returns 0, the guest re-registers vcpu_info and runstate areas, re-binds
/// its event channels, maps a fresh grant table, and its frontends
/// reconnect through xenstore to the new VMM's backends, as after a Xen
/// migration. Format: SaveImage.swift and docs/SAVE-FORMAT.md.
extension PVDomain {
    /// SCHEDOP_shutdown(SHUTDOWN_suspend) from vCPU `vcpu`. With a save
    /// asked for, the domain pauses (this vCPU stops at the gate on its way
    /// back) and the hypercall's result is 0, which a restored domain sees.
    /// Without one the suspend is cancelled at once: 1, as Xen's
    /// xc_domain_resume returns to a guest resumed in the same domain.
    func guestSuspends(vcpu: Int, startInfoFrame: UInt64) -> Int64 {
        let accepted = suspension.withLock { s -> Bool in
            guard s != nil, s!.suspendedBy == nil else { return false }
            s!.suspendedBy = vcpu
            s!.startInfoFrame = startInfoFrame
            return true
        }
        guard accepted else { return 1 }
        _ = pauseGate.set(closed: true)
        for cpu in vcpus where cpu.id != vcpu { cpu.kick() }
        return 0
    }

    public struct SaveResult: Sendable {
        public let bytes: UInt64
        public let pages: UInt64
        /// From the request to the guest's suspend hypercall with every vCPU stopped.
        public let suspendNanoseconds: UInt64
        /// Writing the image.
        public let writeNanoseconds: UInt64
    }

    /// shared_info's evtchn_pending and evtchn_mask (x86-64: after 32
    /// vcpu_info of 64 bytes, 64 words each).
    static let eventPendingOffset = 2048, eventMaskOffset = 2560, eventBitmapBytes = 512

    private var controlPath: String { XenStoreTree.domainPath(PVDomain.domainID) + "/control/shutdown" }

    /// Suspends the guest, writes the image to `path` (through a temporary
    /// name, renamed when complete) and ends the domain. If the guest does
    /// not suspend in time, or the image cannot be written, the guest runs
    /// on (its suspend cancelled) and the error says why.
    public func save(to path: String, suspendTimeoutSeconds: Double = 60) throws(DomainRequestError) -> SaveResult {
        guard exitReason == nil else { throw DomainRequestError("save: the guest is ending") }
        guard !isPaused else { throw DomainRequestError("save: the guest is paused; unpause it first") }
        // A restored SMP guest does not resume cleanly yet: in its first
        // moments a vCPU takes an event on its PV spinlock kicker, which
        // Linux keeps masked (kernel BUG in xen/spinlock.c). Refused rather
        // than saved into an image that would not come back.
        let began = suspension.withLock { s -> Bool in
            guard s == nil else { return false }
            s = Suspension()
            return true
        }
        guard began else { throw DomainRequestError("save: a save of this guest is already under way") }
        let start = ckvm_monotonic_ns()
        do {
            try store.write(controlPath, "suspend")
        } catch {
            suspension.withLock { $0 = nil }
            throw DomainRequestError("save: cannot write control/shutdown: \(error)")
        }
        let suspended = PauseGate.waitUntil(seconds: suspendTimeoutSeconds) { [self] in
            exitReason != nil
                || (suspension.withLock { $0?.suspendedBy != nil } && vcpus.allSatisfy(\.isStoppedForPause))
        }
        let state = suspension.withLock { s -> Suspension? in
            let now = s
            if !suspended || now?.suspendedBy == nil { s = nil }      // a late suspend is cancelled
            return now
        }
        guard suspended, exitReason == nil, let state, let by = state.suspendedBy else {
            try? store.write(controlPath, "")
            if let by = state?.suspendedBy { cancelSuspend(by) }
            throw DomainRequestError(exitReason != nil ? "save: the guest ended"
                : "save: the guest did not suspend within \(Int(suspendTimeoutSeconds)) s (it needs Linux's Xen suspend support: control/shutdown)")
        }
        let suspendedAt = ckvm_monotonic_ns()
        let written: (bytes: UInt64, pages: UInt64)
        do throws(DomainRequestError) {
            written = try writeImage(to: path, startInfoFrame: state.startInfoFrame)
        } catch {
            cancelSuspend(by)
            throw error
        }
        let end = ckvm_monotonic_ns()
        self.end(.stopped)
        return SaveResult(bytes: written.bytes, pages: written.pages,
                          suspendNanoseconds: suspendedAt &- start, writeNanoseconds: end &- suspendedAt)
    }

    /// The guest resumes in this domain: its suspend hypercall returns 1.
    private func cancelSuspend(_ vcpu: Int) {
        vcpus[vcpu].ctx.regs.rax = 1
        suspension.withLock { $0 = nil }
        unpause()
    }

    // MARK: Writing

    private func writeImage(to path: String, startInfoFrame: UInt64) throws(DomainRequestError) -> (bytes: UInt64, pages: UInt64) {
        do {
            return try writeImageFile(to: path, startInfoFrame: startInfoFrame)
        } catch {
            throw DomainRequestError("save: \(error)")
        }
    }

    private func writeImageFile(to path: String, startInfoFrame: UInt64) throws(SaveFileError) -> (bytes: UInt64, pages: UInt64) {
        var out = try SaveFileWriter(path: path, magic: SaveImage.magic, version: SaveImage.version)
        defer { out.close() }

        var d = DomainRecord()
        d.memoryBytes = config.memoryBytes
        d.vcpus = UInt32(config.vcpus); d.maxVCPUs = UInt32(config.maxVCPUs)
        d.systemTime = time.systemTime
        d.handle = handle
        d.storeFrame = storeFrame; d.consoleFrame = consoleFrame
        d.storePort = UInt32(storePort); d.consolePort = UInt32(consolePort)
        d.memoryTargetKiB = memoryTargetKiB
        d.startInfoFrame = startInfoFrame
        d.portsInUse = UInt32(events.withLock { $0.ports.count })
        d.name = Array(config.name.utf8); d.cmdline = Array(config.cmdline.utf8.prefix(SaveImage.maxCmdline))
        var w = ByteWriter()
        d.encode(into: &w)
        try out.record(SaveImage.RecordType.domain.rawValue, w.bytes)

        let (pins, ballooned) = mmu.withLock { types -> ([UInt64], [UInt64]) in
            var pins: [UInt64] = [], ballooned: [UInt64] = []
            for f in 0..<types.frames {
                if types.pinned[Int(f)] { pins.append(f | UInt64(types.kind[Int(f)]) << 56) }
                if types.ballooned[Int(f)] { ballooned.append(f) }
            }
            return (pins, ballooned)
        }
        for (type, list) in [(SaveImage.RecordType.pins, pins), (.balloon, ballooned)] {
            w = ByteWriter()
            w.u64(UInt64(list.count))
            for v in list { w.u64(v) }
            try out.record(type.rawValue, w.bytes)
        }

        for cpu in vcpus {
            let record: VCPURecord
            do { record = try cpu.captureState() } catch {
                throw SaveFileError("vCPU \(cpu.id)'s state: \(error)")
            }
            w = ByteWriter()
            record.encode(into: &w)
            try out.record(SaveImage.RecordType.vcpu.rawValue, w.bytes)
        }

        // Memory: runs of pages that are not zero, their data from the memfd's mapping.
        let pages = try out.memory(SaveImage.RecordType.memory.rawValue, runs: memory.nonZeroRuns(), base: memory.base)
        try out.finish()
        return (out.offset, pages)
    }
}

// MARK: Restoring

extension PVDomain {
    /// A domain from a save image: the machine built as for a boot of the
    /// same size, then the image's memory, page tables, vCPUs and time.
    /// Backends are added by the caller as for a boot; the guest's
    /// frontends reconnect to them.
    public convenience init(restoring image: LoadedSaveImage,
                            consoleOutput: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws {
        let start = ckvm_monotonic_ns()
        try self.init(settings: PVDomainConfig.Settings(name: image.name, memoryBytes: image.memoryBytes,
                                                        vcpus: image.vcpuCount, maxVCPUs: image.maxVCPUCount,
                                                        cmdline: image.cmdline),
                      consoleOutput: consoleOutput)
        let built = ckvm_monotonic_ns()
        try load(image)
        if getenv("XENO_TIMING") != nil {
            let line = "xeno: restore: machine \((built &- start) / 1000) us, contents \((ckvm_monotonic_ns() &- built) / 1000) us (\(restoreTimings))\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
        }
    }

    private func load(_ image: LoadedSaveImage) throws {
        let d = image.domain
        var mark = ckvm_monotonic_ns()
        var phases: [String] = []
        func phase(_ what: String) {
            let now = ckvm_monotonic_ns()
            phases.append("\(what) \((now &- mark) / 1000) us")
            mark = now
        }
        defer { restoreTimings = phases.joined(separator: ", ") }
        // Memory, straight from the file into guest RAM, a run at a time
        // by sendfile into the memfd (the kernel copies from the page cache
        // into freshly allocated pages, with none of the per-page faults a
        // read through our mapping takes: median 79 against 87 ms for the
        // 62 MiB of an idle 128 MiB guest, five runs each on the loaded
        // 2-core test host).
        do { try image.file.loadMemory(into: memory) } catch { throw SaveImageError(error.description) }
        phase("memory")
        handle = d.handle
        storeFrame = d.storeFrame
        consoleFrame = d.consoleFrame
        time = GuestTime(tscKHz: time.tscKHz, continuingAt: d.systemTime)
        try setUpStoreAndEvents(initializeRing: false)
        guard storePort == Int(d.storePort), consolePort == Int(d.consolePort) else {
            throw SaveImageError("the image's store and console ports (\(d.storePort), \(d.consolePort)) are not a new domain's (\(storePort), \(consolePort))")
        }
        if d.memoryTargetKiB != config.memoryBytes >> 10 {
            try? store.write(XenStoreTree.domainPath(PVDomain.domainID) + "/memory/target", String(d.memoryTargetKiB))
        }
        events.withLock { $0.reserve(below: Int(d.portsInUse)) }
        setUpSharedInfo()
        // As Xen's restore does: every event channel masked, none pending.
        // The resuming kernel binds its channels anew and unmasks those it
        // uses; one it keeps masked on purpose (the PV spinlock kicker,
        // polled, never delivered) must not arrive unmasked.
        (sharedInfo + Self.eventMaskOffset).initializeMemory(as: UInt8.self, repeating: 0xff, count: Self.eventBitmapBytes)
        (sharedInfo + Self.eventPendingOffset).initializeMemory(as: UInt8.self, repeating: 0, count: Self.eventBitmapBytes)
        phase("store")

        // Page types, validated afresh: the ballooned frames, then every
        // pinned table (Linux pins all its page tables before suspending),
        // then each vCPU's base pointers.
        let failure = mmu.withLock { types -> String? in
            var replay: [UInt64] = []
            for f in image.ballooned where !types.giveBack(f) { return "frame \(f) cannot be ballooned" }
            for (frame, level) in image.pins {
                if let f = types.pin(frame, as: level, memory: memory, replay: &replay) { return "pin of \(frame): \(f)" }
            }
            for v in image.vcpus where v.flags & VCPURecord.initialised != 0 {
                for base in [v.kernelCR3, v.userCR3] where base != 0 {
                    if let f = types.get(base >> 12, as: .l4, memory: memory, replay: &replay) {
                        return "vCPU \(v.id)'s page table base \(base >> 12): \(f)"
                    }
                }
            }
            return nil
        }
        if let failure { throw SaveImageError("the image's page tables do not validate: \(failure)") }
        phase("page tables")

        for (cpu, record) in zip(vcpus, image.vcpus) where record.flags & VCPURecord.initialised != 0 {
            try cpu.restoreState(record)
        }
        phase("vCPUs")
    }
}

extension PVCPU {
    /// The vCPU's state for the image, taken while it sleeps at the pause gate.
    func captureState() throws -> VCPURecord {
        var v = VCPURecord()
        v.id = UInt32(id)
        let initialised = kernelCR3 != 0
        let isOnline = online.load(ordering: .acquiring)
        v.flags = (isOnline ? VCPURecord.online : 0) | (initialised ? VCPURecord.initialised : 0)
        guard initialised else { return v }
        v.regs = ctx.regs
        // A vCPU that took itself down sleeps inside its VCPUOP_down: the
        // hypercall returns 0 when it is brought up again.
        if offlineInHypercall { v.regs.rax = 0 }
        v.cs = ctx.cs; v.ss = ctx.ss
        v.inKernel = inKernel ? 1 : 0
        v.kernelCR3 = kernelCR3; v.userCR3 = userCR3
        v.kernelSS = kernelSS; v.kernelSP = kernelSP
        v.fsBase = fsBase; v.gsBaseKernel = gsBaseKernel; v.gsBaseUser = gsBaseUser
        v.eventCallback = eventCallback; v.failsafeCallback = failsafeCallback; v.syscallCallback = syscallCallback
        v.syscallMasksEvents = syscallMasksEvents ? 1 : 0
        v.timerDeadline = timerDeadline
        v.ldtBase = ldtBase; v.ldtEntries = ldtEntries
        v.gdtFrame = gdtFrames.first ?? ~0
        v.trapAddress = trapAddress
        v.trapFlags = trapFlags
        let s = try kvm.specialRegisters()
        v.segments = [s.ds, s.es, s.fs, s.gs]
        let gdt = domain.hypervisor.hostPointer(virtual: perCPU + Layout.gdtOffset)!
        v.gdt.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: gdt, count: 4096)) }
        v.fpuFormat = try v.fpu.withUnsafeMutableBytes { try kvm.saveFPU(into: $0) }.rawValue
        return v
    }

    /// Loads a vCPU's state from the image: the VMM's view of it, then the
    /// KVM vCPU at the trampoline, to enter the guest through the return path.
    func restoreState(_ v: VCPURecord) throws {
        ctx.regs = v.regs
        ctx.cs = v.cs | 3
        ctx.ss = v.ss | 3
        inKernel = v.inKernel != 0
        kernelCR3 = v.kernelCR3; userCR3 = v.userCR3
        hardwareCR3 = inKernel ? kernelCR3 : userCR3
        kernelSS = v.kernelSS; kernelSP = v.kernelSP
        fsBase = v.fsBase; gsBaseKernel = v.gsBaseKernel; gsBaseUser = v.gsBaseUser
        eventCallback = v.eventCallback; failsafeCallback = v.failsafeCallback; syscallCallback = v.syscallCallback
        syscallMasksEvents = v.syscallMasksEvents != 0
        timerDeadline = v.timerDeadline
        ldtBase = v.ldtBase; ldtEntries = v.ldtEntries
        trapAddress = v.trapAddress
        trapFlags = v.trapFlags
        // The GDT copy: every descriptor checked again, as set_gdt checks the guest's.
        if v.gdtFrame != ~0 {
            guard v.gdtFrame < domain.frames else { throw SaveImageError("vCPU \(id)'s GDT frame is beyond memory") }
            gdtFrames = [v.gdtFrame]
        }
        let gdt = domain.hypervisor.hostPointer(virtual: perCPU + Layout.gdtOffset)!
        try v.gdt.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws in
            for i in 0..<512 {
                guard let d = Self.checkDescriptor(raw.load(fromByteOffset: i * 8, as: UInt64.self)) else {
                    throw SaveImageError("vCPU \(id)'s GDT entry \(i) is not a descriptor a guest may have")
                }
                gdt.storeBytes(of: d, toByteOffset: i * 8, as: UInt64.self)
            }
        }
        try loadInitialState()
        // The data segments the guest loaded itself (DPL 3 only, as the GDT allows).
        var s = try kvm.specialRegisters()
        var segs = v.segments
        for i in 0..<4 where segs[i].unusable == 0 {
            guard segs[i].present == 0 || segs[i].dpl == 3 || segs[i].selector == 0 else {
                throw SaveImageError("vCPU \(id)'s data segment \(i) is not a user segment")
            }
            segs[i].dpl = 3
        }
        s.ds = segs[0]; s.es = segs[1]; s.fs = segs[2]; s.gs = segs[3]
        s.fs.base = fsBase
        s.gs.base = inKernel ? gsBaseKernel : gsBaseUser
        try kvm.setSpecialRegisters(s)
        if let format = VCPU.FPUFormat(rawValue: v.fpuFormat) {
            try v.fpu.withUnsafeBytes { try kvm.restoreFPU($0, format: format) }
        }
        segmentsDirty = true
        online.store(v.flags & VCPURecord.online != 0, ordering: .releasing)
    }
}
