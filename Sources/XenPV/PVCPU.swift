import CKVM
import Glibc
import KVM
import Synchronization
import X86

/// The guest's register state while the VMM handles an entry: GPRs as KVM
/// reports them, with rip/rsp/rflags/cs/ss of the interrupted guest context.
struct GuestContext {
    var regs = Registers()
    var cs: UInt64 = UInt64(Layout.flatKernelCS)
    var ss: UInt64 = UInt64(Layout.flatKernelSS)
}

/// One PV vCPU: its KVM vCPU, the architectural state Xen keeps for it, and
/// the entry/return paths through the trampoline.
final class PVCPU: @unchecked Sendable {
    unowned let domain: PVDomain
    let id: Int
    let kvm: VCPU
    var vcpuInfo: UnsafeMutableRawPointer
    let perCPU: UInt64
    let replayArea: UnsafeMutablePointer<UInt64>
    let stackTop: UnsafeMutableRawPointer

    // PV architectural state (Xen's struct vcpu / pv_vcpu).
    var inKernel = true
    var kernelCR3: UInt64 = 0
    var userCR3: UInt64 = 0
    var hardwareCR3: UInt64 = 0
    var kernelSS: UInt64 = 0
    var kernelSP: UInt64 = 0
    var fsBase: UInt64 = 0
    var gsBaseKernel: UInt64 = 0
    var gsBaseUser: UInt64 = 0
    var trapAddress = [UInt64](repeating: 0, count: 256)
    var trapFlags = [UInt8](repeating: 0, count: 256)
    var eventCallback: UInt64 = 0
    var failsafeCallback: UInt64 = 0
    var syscallCallback: UInt64 = 0
    var syscallMasksEvents = false
    var runstateVirtual: UInt64 = 0
    /// A second copy of this vCPU's time (VCPUOP_register_vcpu_time_memory_area,
    /// a kernel virtual address): Linux registers one for vCPU 0 and maps its
    /// page into every process as the vDSO's pvclock, so `clock_gettime`
    /// reads the time without a system call (each of which is an exit here).
    var timeAreaVirtual: UInt64 = 0
    var timerDeadline: UInt64 = 0
    var runstate = Runstate.offline
    var runstateEntry: UInt64 = 0
    var runstateTimes: [UInt64] = [0, 0, 0, 0]
    /// The thread's time on a host CPU (schedstat run_ns) at the last runstate change.
    private var lastHostRunTime: UInt64 = 0
    private var doorbellChecked = false
    /// Set on a doorbell entry: the segments the vCPU still has at CPL3. A
    /// return that keeps them and needs no replay, CR3 load or flush resumes
    /// the guest by a register write alone, with no trip through CPL0.
    private var inPlaceSegments: (cs: UInt64, ss: UInt64)?
    /// The guest's rcx and r11 need not survive this return: it follows a
    /// hypercall (`syscall` clobbers both) or a bounce (its frame holds them).
    private var scratchFree = false
    var syscallEntries: UInt64 = 0
    var inPlaceReturns: UInt64 = 0
    private var armedFor: UInt64 = 0
    var gdtFrames: [UInt64] = []
    var ldtBase: UInt64 = 0, ldtEntries: UInt64 = 0

    /// This vCPU's guest TSC minus the host TSC.
    var tscOffset: UInt64 = 0

    var ctx = GuestContext()
    var replay: [UInt64] = []
    private var replayCursor = 0
    var flushKind: UInt64 = 0
    var invlpgList: [UInt64] = []
    var segmentsDirty = false
    private var atCPL0 = false
    /// How the previous return to the guest began (for diagnostics).
    private var lastEntry = "start"

    // Cross-thread state.
    let online = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let threadID = Atomic<Int32>(0)
    private let running = Atomic<Bool>(false)
    let remoteFlush = Atomic<Bool>(false)
    /// Set while the vCPU sleeps in SCHEDOP_poll: a masked port it polls wakes it.
    let polling = Atomic<Bool>(false)
    let blockedNow = Atomic<Bool>(false)
    /// The vCPU's POSIX timer. Its id is 0 for the process's first timer,
    /// which Swift sees as a nil pointer, so `hasTimer` says whether it exists.
    private var timer: timer_t?
    private var hasTimer = false
    private var pthread = pthread_t()
    let pthreadReady = Atomic<Bool>(false)
    /// Set while the thread sleeps at the domain's pause gate.
    let parkedForPause = Atomic<Bool>(false)
    /// Set while the thread sleeps taken down by another vCPU (VCPUOP_down).
    let parkedDown = Atomic<Bool>(false)
    /// Set while the vCPU sleeps inside its own VCPUOP_down.
    var offlineInHypercall = false

    // Statistics.
    /// VM exits so far: only this vCPU's thread writes it (a plain load
    /// and store, no locked add), the control socket's `stats` reads it.
    let exitCount = Atomic<UInt64>(0)
    var exits: UInt64 { exitCount.load(ordering: .relaxed) }
    var hypercallCounts = [UInt64](repeating: 0, count: 64)
    var vectorCounts = [UInt64](repeating: 0, count: 64)
    var replayed: UInt64 = 0
    var stubReturns: UInt64 = 0

    init(domain: PVDomain, id: Int, vcpu: VCPU) throws {
        self.domain = domain
        self.id = id
        self.kvm = vcpu
        self.vcpuInfo = domain.sharedInfo + id * 64
        perCPU = Layout.perCPUVirtual(id)
        let hv = domain.hypervisor
        replayArea = hv.hostPointer(virtual: perCPU + Layout.replayOffset)!.assumingMemoryBound(to: UInt64.self)
        stackTop = hv.hostPointer(virtual: perCPU + Layout.stackOffset + 4096)! + 4096
        replay.reserveCapacity(Layout.replayCapacity)
        try setupCPUID()
        // KVM's view of this vCPU's TSC against the host's. On this host the
        // guest reads the TSC natively and the difference is only the few
        // microseconds between the two reads: treat that as zero, or vCPUs
        // would disagree about the time by that much.
        let before = ckvm_rdtsc()
        let guestTSC = try vcpu.readMSRs([0x10])[0]
        let after = ckvm_rdtsc()
        let measured = Int64(bitPattern: guestTSC &- (before / 2 &+ after / 2))
        tscOffset = abs(measured) < 10_000_000 ? 0 : UInt64(bitPattern: measured)
    }

    // MARK: Set-up

    private func setupCPUID() throws {
        let policy = CPUIDPolicy.shared(domain.kvm)
        try kvm.setCPUID(policy.entries(forVCPU: id, count: domain.config.maxVCPUs))
    }

    /// Initial state of a vCPU (vCPU 0 from the builder; others from VCPUOP_initialise).
    func setupBoot(entry: UInt64, stack: UInt64, startInfo: UInt64, cr3: UInt64) throws {
        kernelCR3 = cr3
        hardwareCR3 = cr3
        kernelSS = UInt64(Layout.flatKernelSS)
        kernelSP = stack
        ctx.regs = Registers()
        ctx.regs.rip = entry
        ctx.regs.rsp = stack
        ctx.regs.rsi = startInfo
        ctx.regs.rflags = 0x202
        ctx.cs = UInt64(Layout.flatKernelCS)
        ctx.ss = UInt64(Layout.flatKernelSS)
        try loadInitialState()
        online.store(true, ordering: .releasing)
    }

    private func segment(_ selector: UInt16, code: Bool, dpl: UInt8) -> Segment {
        var s = Segment()
        s.selector = selector; s.limit = 0xffff_ffff; s.present = 1; s.dpl = dpl; s.s = 1; s.g = 1
        s.type = code ? 0xb : 0x3; s.l = code ? 1 : 0; s.db = code ? 0 : 1
        return s
    }

    /// Puts the KVM vCPU at the trampoline's CPL0 with the tables of this
    /// vCPU; the first return to the guest goes through the return stub.
    func loadInitialState() throws {
        var s = try kvm.specialRegisters()
        s.cs = segment(Layout.hypervisorCS, code: true, dpl: 0)
        s.ss = segment(Layout.hypervisorDS, code: false, dpl: 0)
        var null = Segment(); null.unusable = 1
        s.ds = null; s.es = null; s.fs = null; s.gs = null; s.ldt = null
        s.fs.base = fsBase; s.gs.base = gsBaseKernel
        var tr = Segment()
        tr.selector = Layout.tssSelector; tr.base = perCPU + Layout.tssOffset; tr.limit = 103
        tr.type = 11; tr.present = 1
        s.tr = tr
        s.gdt.base = perCPU + Layout.gdtOffset; s.gdt.limit = 0xffff
        s.idt.base = Layout.trampolineVirtual + Layout.idtOffset; s.idt.limit = 0xfff
        s.cr0 = 0x8005_0033                  // PG WP NE ET MP PE
        s.cr4 = 0x20 | 0x200 | 0x400 | 0x10_0000   // PAE OSFXSR OSXMMEXCPT SMEP
        s.efer = 0xd01                       // NXE LMA LME SCE
        s.cr3 = hardwareCR3
        try kvm.setSpecialRegisters(s)
        try kvm.writeMSRs([
            (0xC000_0082, Layout.trampolineVirtual + Layout.syscallOffset),      // LSTAR
            (0xC000_0081, (UInt64(Layout.flatRing3CS32) << 48) | (UInt64(Layout.hypervisorCS) << 32)),
            (0xC000_0084, 0x4_0700),          // SFMASK: TF IF DF AC
            (0xC000_0100, fsBase), (0xC000_0101, gsBaseKernel), (0xC000_0102, gsBaseUser),
        ])
        atCPL0 = true
        segmentsDirty = false
    }

    // MARK: Thread

    func threadMain() {
        do {
            try kvm.prepareKickSignal()
        } catch {
            domain.end(.crash("vCPU \(id): \(error)"))
            return
        }
        pthread = pthread_self()
        threadID.store(ckvm_gettid(), ordering: .releasing)
        // "vcpu N" in /proc/PID/task/*/comm: xenod's metrics find the vCPU threads' CPU time and steal there.
        _ = pthread_setname_np(pthread, "vcpu \(id)")
        pthreadReady.store(true, ordering: .releasing)
        var t: timer_t? = nil
        if ckvm_thread_timer_create(ckvm_gettid(), VCPU.kickSignal, &t) == 0 {
            timer = t
            hasTimer = true
        }
        defer { if hasTimer { timer_delete(timer) } }

        while !stopping.load(ordering: .acquiring) && !online.load(ordering: .acquiring) {
            _ = VCPU.waitForKick(timeoutNanoseconds: 100_000_000)
        }
        // A restored vCPU's pending timer (none on a fresh boot).
        if timerDeadline != 0 { armTimer(at: timerFireAt) }
        lastHostRunTime = hostRunTime()
        runstateEntry = domain.time.systemTime
        runstate = .running
        do {
            if !stopping.load(ordering: .acquiring) { try returnToGuest() }
            while !stopping.load(ordering: .acquiring) {
                running.store(true, ordering: .releasing)
                let exit = try kvm.enter()
                running.store(false, ordering: .releasing)
                exitCount.store(exitCount.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
                try handle(exit)
            }
        } catch let failure as GuestFailure {
            domain.end(.crash("vCPU \(id): \(failure.message)\n\(registerDump())"))
        } catch {
            domain.end(.crash("vCPU \(id): \(error)\n\(registerDump())"))
        }
    }

    /// Interrupts KVM_RUN or a blocked wait on this vCPU's thread.
    func kick() {
        guard pthreadReady.load(ordering: .acquiring) else { return }
        pthread_kill(pthread, VCPU.kickSignal)
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        kick()
    }

    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// Marks selector `word` and upcall_pending; wakes the vCPU if newly pending.
    func markPending(selector word: Int) {
        let bit = UInt64(1) << UInt64(word)
        let old = ckvm_atomic_or64(vcpuInfo + 8, bit)
        if old & bit != 0 { return }
        let was = ckvm_atomic_xchg8(vcpuInfo, 1)
        if was == 0 { kick() }
    }

    var upcallPending: Bool { vcpuInfo.load(as: UInt8.self) != 0 }
    var upcallMask: Bool {
        get { vcpuInfo.load(fromByteOffset: 1, as: UInt8.self) != 0 }
        set { vcpuInfo.storeBytes(of: newValue ? 1 : 0, toByteOffset: 1, as: UInt8.self) }
    }

    // MARK: Entries

    struct GuestFailure: Error { let message: String }

    private func handle(_ exit: VMExit) throws {
        switch exit {
        case .io(let port, _, _, _, _) where port < TrampolinePort.vectorLimit:
            lastEntry = "vector \(port)"
            guard try trapEntry(vector: Int(port)) else { return }
        case .mmio(let address, _, _) where address == Layout.doorbellPhysical:
            // A `syscall` reached the landing page, which stored to the
            // doorbell: the vCPU is still at CPL3, on the guest's own segments.
            lastEntry = "syscall"
            let regs = try kvm.registers()
            if !inKernel || !doorbellChecked {
                // Guest user space may have changed its segments itself; the
                // bounce frame must carry what it really had.
                let s = try kvm.specialRegisters()
                guard s.cs.selector & 3 == 3 else {
                    throw GuestFailure(message: "syscall reached the landing page at CPL\(s.cs.selector & 3): this KVM does not keep syscall at CPL3, which the PV mode relies on")
                }
                ctx.cs = UInt64(s.cs.selector); ctx.ss = UInt64(s.ss.selector)
                doorbellChecked = true
            }
            atCPL0 = false
            ctx.regs = regs
            inPlaceSegments = (ctx.cs, ctx.ss)
            scratchFree = false
            syscallEntries &+= 1
            try syscallEntry(rcx: regs.rcx, r11: regs.r11)
        case .io(let port, _, _, _, _) where port == TrampolinePort.replayRound:
            try continueReplay()
            return
        case .interrupted:
            VCPU.consumeKick()
            let regs = try kvm.registers()
            let s = try kvm.specialRegisters()
            if s.cs.selector == Layout.hypervisorCS || regs.rip == Layout.trampolineVirtual + Layout.syscallOffset {
                // Kicked inside the trampoline, or between a `syscall` and the
                // landing page's doorbell store (a state this KVM cannot take a register
                // reload in): let it reach its exit, and look again soon.
                // Always: the kick just taken may have been the guest's own
                // deadline firing, and the trampoline can return to guest
                // user space without another exit, so a vCPU that then never
                // blocks (a busy loop) would never see its timer again.
                armTimer(at: domain.time.systemTime + 50_000)
                return
            }
            // Guest code at CPL3 (IF is always set there): take it into the
            // trampoline with an interrupt, so the CPU itself switches to CPL0
            // and pushes the frame; reloading segment state by hand here is
            // not something this KVM survives in every state.
            try kvm.injectInterrupt(vector: UInt32(Self.kickVector))
            return
        default:
            throw GuestFailure(message: "unexpected exit \(exit)")
        }
        checkTimer()
        try returnToGuest()
    }

    static let tracing = getenv("XENO_TRACE") != nil

    func trace(_ s: @autoclosure () -> String) {
        guard Self.tracing else { return }
        let line = "[vcpu\(id)] " + s() + "\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }

    /// A vector stub exited: the CPU left the hardware frame on the TSS stack.
    /// Returns false when the vCPU was resumed in place (no return to build).
    private func trapEntry(vector: Int) throws -> Bool {
        vectorCounts[vector] &+= 1
        let regs = try kvm.registers()
        atCPL0 = true
        inPlaceSegments = nil
        scratchFree = false
        let hasError = Self.hasErrorCode(vector)
        // The frame the CPU pushed, wherever it is: from guest code (CPL3) it
        // sits at the top of the TSS stack; from the trampoline itself (CPL0)
        // it sits on whatever stack the trampoline was using.
        guard let frameWords = domain.hypervisor.hostPointer(virtual: regs.rsp)?.assumingMemoryBound(to: UInt64.self) else {
            throw GuestFailure(message: "exception \(vector) with the trampoline stack pointer at 0x\(String(regs.rsp, radix: 16))")
        }
        let f = hasError ? frameWords + 1 : frameWords
        if f[1] & 3 == 0 {
            if vector == Self.kickVector && !hasError {
                // A kick landed while the trampoline ran: resume it where it
                // was and look again soon.
                var k = regs
                k.rip = f[0]; k.rflags = f[2]; k.rsp = f[3]
                try kvm.setRegisters(k)
                armTimer(at: domain.time.systemTime + 50_000)
                return false
            }
            let words = (0..<7).map { String(frameWords[$0], radix: 16) }.joined(separator: " ")
            throw GuestFailure(message: "exception \(vector) inside the trampoline (rsp=\(String(regs.rsp, radix: 16)) frame: \(words)) after \(lastEntry), returning to rip=\(String(ctx.regs.rip, radix: 16)) cs=\(String(ctx.cs, radix: 16))")
        }
        let top = stackTop.assumingMemoryBound(to: UInt64.self)
        let error: UInt64 = hasError ? top[-6] : 0
        ctx.regs = regs
        ctx.regs.rip = top[-5]
        ctx.cs = top[-4]
        ctx.regs.rflags = top[-3]
        ctx.regs.rsp = top[-2]
        ctx.ss = top[-1]
        if vector == Self.kickVector {
            return true      // nothing to do but deliver what is pending
        }
        trace("exception \(vector) error \(String(error, radix: 16)) at \(String(ctx.regs.rip, radix: 16)) \(inKernel ? "kernel" : "user")")
        try exception(vector: vector, error: error)
        return true
    }

    /// `syscall` landed at LSTAR: rcx/r11 are the return rip and rflags the
    /// instruction saved. In guest kernel mode it is a hypercall.
    private func syscallEntry(rcx: UInt64, r11: UInt64) throws {
        ctx.regs.rip = rcx
        ctx.regs.rflags = r11
        if inKernel {
            scratchFree = ctx.regs.rax != 23     // HYPERVISOR_iret restores them from its frame
            trace("hypercall \(ctx.regs.rax) (\(String(ctx.regs.rdi, radix: 16)), \(String(ctx.regs.rsi, radix: 16)), \(String(ctx.regs.rdx, radix: 16))) at \(String(rcx, radix: 16))")
            try hypercall()
        } else {
            try syscallBounce()
        }
    }

    /// The vector a kick is injected as: enters the trampoline like an exception.
    static let kickVector = 32

    static func hasErrorCode(_ v: Int) -> Bool { v == 8 || (10...14).contains(v) || v == 17 || v == 21 }

    // MARK: Returns

    /// Delivers pending events, then resumes the guest (see writeFrameAndEnter).
    func returnToGuest() throws {
        // The pause gate, and a vCPU another took down: here the whole
        // guest context is in `ctx`.
        while !isStopping && (domain.pauseGate.isClosed || !online.load(ordering: .acquiring)) {
            if domain.pauseGate.isClosed { parkWhilePaused() } else { parkWhileDown() }
        }
        if remoteFlush.exchange(false, ordering: .acquiringAndReleasing) { flushKind = 1 }
        if upcallPending && !upcallMask && eventCallback != 0 {
            try bounce(to: eventCallback, error: nil, maskEvents: true)
        }
        replayCursor = 0
        try writeFrameAndEnter()
    }

    private func continueReplay() throws {
        try writeFrameAndEnter()
    }

    /// More single-address invalidations than this become a full flush.
    static let invlpgLimit = 64

    /// Resumes the guest: by a register write alone when nothing needs CPL0,
    /// else through a chain of trampoline return links (see `Trampoline`)
    /// written at the end of the replay area, ending in the `iretq` frame.
    private func writeFrameAndEnter() throws {
        let desiredCR3 = inKernel ? kernelCR3 : userCR3
        let remaining = replay.count - replayCursor
        let loadCR3 = desiredCR3 != hardwareCR3
        var kind = flushKind
        if kind == 2 && invlpgList.count > Self.invlpgLimit { kind = 1 }
        if loadCR3 && kind == 1 { kind = 0 }   // the CR3 load flushes
        let needLinks = remaining > 0 || loadCR3 || kind != 0

        let rflags = (ctx.regs.rflags | 0x200) & ~UInt64(0x3000 | 0x2_0000 | 0x100_0000)
        if !needLinks, !atCPL0, let seg = inPlaceSegments, seg.cs == ctx.cs, seg.ss == ctx.ss {
            inPlaceSegments = nil
            inPlaceReturns &+= 1
            var k = ctx.regs
            k.rflags = rflags
            try writeSegmentBasesIfDirty()
            try kvm.setRegisters(k)
            return
        }
        inPlaceSegments = nil

        // The links use rcx and r11 as scratch: restore them unless the
        // guest has no use for them (after a hypercall, which `syscall`
        // clobbers them for, or a bounce, whose frame carries them).
        let restore = needLinks && !scratchFree
        let tail = (loadCR3 ? 2 : 0) + (kind == 1 ? 1 : kind == 2 ? 2 * invlpgList.count : 0) + (restore ? 3 : 1) + 5
        let capacity = Layout.replayCapacity
        let chunk = min(remaining, (capacity - tail) / 2)
        let last = chunk == remaining
        let start = capacity - (last ? 2 * chunk + tail : 2 * chunk + 1)
        let area = replayArea
        var w = start
        for i in 0..<chunk {
            area[w] = Trampoline.Link.address(Trampoline.Link.replay)
            area[w + 1] = Layout.directVirtual &+ replay[replayCursor + i]
            w += 2
        }
        replayed &+= UInt64(chunk)
        replayCursor += chunk
        if !last {
            area[w] = Trampoline.Link.address(Trampoline.Link.more)
        } else {
            if loadCR3 {
                area[w] = Trampoline.Link.address(Trampoline.Link.loadCR3)
                area[w + 1] = desiredCR3
                w += 2
            }
            if kind == 1 {
                area[w] = Trampoline.Link.address(Trampoline.Link.flush)
                w += 1
            } else if kind == 2 {
                for a in invlpgList {
                    area[w] = Trampoline.Link.address(Trampoline.Link.invlpg)
                    area[w + 1] = a
                    w += 2
                }
            }
            if restore {
                area[w] = Trampoline.Link.address(Trampoline.Link.restore)
                area[w + 1] = ctx.regs.rcx
                area[w + 2] = ctx.regs.r11
                w += 3
            } else {
                area[w] = Trampoline.Link.address(Trampoline.Link.iret)
                w += 1
            }
            area[w] = ctx.regs.rip
            area[w + 1] = ctx.cs | 3
            area[w + 2] = rflags
            area[w + 3] = ctx.regs.rsp
            area[w + 4] = ctx.ss | 3
            hardwareCR3 = desiredCR3
            flushKind = 0
            invlpgList.removeAll(keepingCapacity: true)
            replay.removeAll(keepingCapacity: true)
            replayCursor = 0
        }
        if needLinks { stubReturns &+= 1 }

        var k = ctx.regs
        k.rip = area[start]
        k.rsp = perCPU + Layout.replayOffset + UInt64(start + 1) * 8
        k.rflags = 0x2
        if !atCPL0 {
            var s = try kvm.specialRegisters()
            s.cs = segment(Layout.hypervisorCS, code: true, dpl: 0)
            s.ss = segment(Layout.hypervisorDS, code: false, dpl: 0)
            try kvm.setSpecialRegisters(s)
            atCPL0 = true
        }
        try writeSegmentBasesIfDirty()
        try kvm.setRegisters(k)
    }

    private func writeSegmentBasesIfDirty() throws {
        guard segmentsDirty else { return }
        try kvm.writeMSRs([(0xC000_0100, fsBase),
                           (0xC000_0101, inKernel ? gsBaseKernel : gsBaseUser),
                           (0xC000_0102, inKernel ? gsBaseUser : gsBaseKernel)])
        segmentsDirty = false
    }

    // MARK: Mode switches and bounces

    /// Xen's toggle_guest_mode: swap page tables and GS bases.
    func toggleMode() throws {
        if inKernel && userCR3 == 0 {
            throw GuestFailure(message: "return to user mode without a user page table")
        }
        inKernel.toggle()
        segmentsDirty = true
    }

    /// Bounces to a guest kernel handler with Xen's frame
    /// (rcx, r11, [error], rip, cs, rflags, rsp, ss) — PV-NOTES 3.2.
    func bounce(to handler: UInt64, error: UInt64?, maskEvents: Bool) throws {
        scratchFree = true
        let savedMask: UInt64 = upcallMask ? 1 : 0
        var cs = ctx.cs
        var sp: UInt64
        var ss = ctx.ss
        let oldRSP = ctx.regs.rsp
        if !inKernel {
            try toggleMode()
            sp = kernelSP
        } else {
            sp = ctx.regs.rsp
            cs &= ~3
        }
        var flags = ctx.regs.rflags & ~UInt64(0x3000)
        if savedMask != 0 { flags &= ~0x200 } else { flags |= 0x200 }
        // The frame is built on the stack: a bounce happens on most exits.
        let count = error == nil ? 7 : 8
        sp = (sp & ~15) - UInt64(count * 8)
        let written = withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 8) { w -> Bool in
            var i = 0
            func push(_ v: UInt64) { w[i] = v; i += 1 }
            push(ctx.regs.rcx); push(ctx.regs.r11)
            if let error { push(error) }
            push(ctx.regs.rip); push((cs & 0xffff) | (savedMask << 32)); push(flags); push(oldRSP); push(ss & 0xffff)
            return writeGuestBytes(UnsafeRawBufferPointer(start: w.baseAddress, count: count * 8), at: sp)
        }
        guard written else {
            throw GuestFailure(message: "cannot write a bounce frame at 0x\(String(sp, radix: 16)) (kernel stack unmapped: \(walkDescription(sp)))")
        }
        if maskEvents { upcallMask = true }
        ctx.regs.rip = handler
        ctx.regs.rsp = sp
        ctx.cs = UInt64(Layout.flatKernelCS)
        ss = UInt64(Layout.flatKernelSS)
        ctx.ss = ss
        ctx.regs.rflags = (ctx.regs.rflags & ~UInt64(0x100 | 0x4000 | 0x1_0000 | 0x2_0000 | 0x4_0000)) | 0x200
    }

    private func syscallBounce() throws {
        guard syscallCallback != 0 else {
            ctx.regs.rip &-= 2
            try exception(vector: 6, error: 0)
            return
        }
        ctx.regs.rflags &= ~UInt64(0x400)
        try bounce(to: syscallCallback, error: nil, maskEvents: syscallMasksEvents)
    }

    /// Delivers a hardware exception to the guest kernel's trap table.
    func injectException(_ vector: Int, error: UInt64?) throws {
        let handler = trapAddress[vector]
        guard handler != 0 else {
            throw GuestFailure(message: "exception \(vector) (error \(error.map { String($0, radix: 16) } ?? "-")) at 0x\(String(ctx.regs.rip, radix: 16)) with no handler registered")
        }
        try bounce(to: handler, error: error, maskEvents: trapFlags[vector] & 4 != 0)
    }

    // MARK: Timer

    /// The one POSIX timer serves the guest's deadline and the VMM's own
    /// "look again soon"; `armedFor` says which it is set for, so the guest's
    /// deadline is re-armed after a short look.
    func armTimer(at systemTime: UInt64) {
        guard hasTimer else { return }
        armedFor = systemTime
        ckvm_timer_arm_absolute(timer, systemTime &+ domain.time.bootMonotonic)
    }

    func setTimer(deadline: UInt64) {
        if deadline != 0, let fired = lastTimerEvent {
            noteTickResponse(to: fired, deadline: deadline)
        }
        lastTimerEvent = nil
        timerDeadline = deadline
        if deadline == 0 {
            if hasTimer { ckvm_timer_arm_absolute(timer, 0) }
            armedFor = 0
        } else {
            armTimer(at: timerFireAt)
        }
    }

    func checkTimer() {
        let now = domain.time.systemTime
        if timerDeadline != 0 && now >= timerFireAt {
            // What the guest's answer is measured against (a syscall for the
            // thread's CPU time: only while this vCPU still catches up).
            if !guestKeepsTime {
                lastTimerEvent = (timerDeadline, now, hostRunTime())
                lastTimerFiredAt = now
                if now < timerDeadline { earlyTimerEvents &+= 1 }
            }
            timerDeadline = 0
            // The guest accounts steal at its tick from the runstate area: a
            // vCPU that never blocks must still see the host's run-queue wait.
            enterRunstate(runstate)
            publishTime()
            domain.raiseVIRQ(0, vcpu: id)
        } else if timerDeadline != 0 && armedFor != timerFireAt && now >= armedFor {
            armTimer(at: timerFireAt)
        }
    }

    // MARK: Ticks the guest would lose

    /// How far the guest's timer events have come behind the schedule the
    /// guest asked for, not yet made good. Until Linux switches to a real
    /// clocksource (an fs initcall, seconds into the boot) it keeps time in
    /// jiffies, one per timer event, and arms each next tick a fixed time
    /// after it handles the last: whatever an event comes late (the vCPU
    /// thread waiting for a host CPU, the guest's events masked, the
    /// handler's own exits) its clock loses for good: 0.6 s by the end of
    /// a quiet boot here, 4.4 s with the CI's load beside it, and its wall
    /// clock stays that far behind. So the VMM fires the next deadline
    /// early by what is owed, back to back while that is more than a
    /// tick, and the guest's jiffies catch up with real time.
    private(set) var tickLag: UInt64 = 0

    /// Set once the guest keeps time by a real clocksource: then an event
    /// before its deadline finds nothing expired and Linux arms the same
    /// deadline again, to within a microsecond (its two computations of it
    /// differ by the few instructions between two clock reads). In the
    /// jiffies phase the answer is "now plus a tick", which lands that
    /// close to the old deadline only by chance (a 2 µs window in 4 ms),
    /// so three such answers end the catch-up for good (Linux does not go
    /// back): late events cost such a guest nothing, and early ones would
    /// be one spurious event every few ticks.
    ///
    /// Only vCPU 0 catches up: in the jiffies phase the boot CPU alone
    /// advances jiffies (`tick_do_timer_cpu`); another CPU's lost tick costs
    /// it only a sample of process accounting, and 31 vCPUs catching up on
    /// two host cores starved the boot (a 32-vCPU boot under the CI's load
    /// went over its four minutes).
    private(set) lazy var guestKeepsTime = id != 0
    private var sameDeadlineAnswers = 0

    /// Timer events fired before their deadline to pay the debt.
    private(set) var earlyTimerEvents: UInt64 = 0

    /// Debt below this is carried, not paid (half a tick at Linux's
    /// highest HZ bounds how far behind the guest's jiffies run).
    private static let tickLagThreshold: UInt64 = 500_000

    /// The most debt kept (a minute): beyond it the guest stays behind
    /// rather than take a flood of catch-up events.
    private static let tickLagLimit: Int64 = 60_000_000_000

    /// The least time between two timer events while catching up. Without
    /// it, a guest whose answers come later than the events come early
    /// (its vCPU thread waiting for a host CPU under load) would be fed
    /// back-to-back events for as long as the load lasts and do nothing
    /// else: a boot that never gets on. An event costs the guest a few
    /// exits (a fraction of a millisecond), so this leaves it most of its
    /// time; the debt is then paid at up to a millisecond per millisecond.
    private static let catchUpInterval: UInt64 = 1_000_000
    private var lastTimerFiredAt: UInt64 = 0

    /// When the VMM fires the guest's timer: its deadline, or `tickLag`
    /// before it once that is worth an event (never sooner than
    /// `catchUpInterval` after the last event).
    var timerFireAt: UInt64 {
        guard timerDeadline != 0 else { return 0 }
        guard tickLag >= Self.tickLagThreshold else { return timerDeadline }
        let early = max(1, timerDeadline &- min(tickLag, timerDeadline))
        return min(timerDeadline, max(early, lastTimerFiredAt &+ Self.catchUpInterval))
    }

    /// The timer event the guest has not answered yet: its deadline, when
    /// it was delivered, and this thread's CPU time then.
    private var lastTimerEvent: (deadline: UInt64, deliveredAt: UInt64, hostRun: UInt64)?

    /// The guest arms `deadline` after the event `fired`. If that is the
    /// handler's own re-arm (soon after the event in wall time and in the
    /// vCPU's own running time, so not a re-arm after an idle spell), the
    /// time from the event's deadline to now (the guest read its clock
    /// just before this hypercall) is what it fell behind, or, for an
    /// event fired early, what it caught up.
    private func noteTickResponse(to fired: (deadline: UInt64, deliveredAt: UInt64, hostRun: UInt64), deadline: UInt64) {
        guard !guestKeepsTime else { return }
        let now = domain.time.systemTime
        guard now &- fired.deliveredAt < 50_000_000, hostRunTime() &- fired.hostRun < 2_000_000 else { return }
        if fired.deliveredAt < fired.deadline, deadline &- fired.deadline &+ 1_000 <= 2_000 {
            sameDeadlineAnswers += 1
            if sameDeadlineAnswers >= 3 {
                guestKeepsTime = true
                tickLag = 0
                return
            }
        }
        let behind = Int64(bitPattern: now &- fired.deadline)
        tickLag = UInt64(min(max(Int64(tickLag) + behind, 0), Self.tickLagLimit))
    }

    /// Forgets the debt: the vCPU goes offline, and comes back with a new tick.
    func resetTickLag() {
        tickLag = 0
        lastTimerEvent = nil
        lastTimerFiredAt = 0
    }

    // MARK: Runstate (the time this vCPU really ran)

    /// Xen's runstates: running, runnable (wanted the CPU, the host ran
    /// something else: steal), blocked, offline.
    enum Runstate: Int { case running = 0, runnable = 1, blocked = 2, offline = 3 }

    /// Moves to `new`, charging the time since the last change. While the
    /// guest meant to run, only the time the host really ran this thread
    /// (its schedstat run_ns, what the host's cgroup accounting charges
    /// the domain) counts as running; the rest (a host run queue, a cap's
    /// throttling, however the host kernel books those) is runnable:
    /// steal, as Xen reports time a vCPU wanted a CPU and did not have it.
    func enterRunstate(_ new: Runstate) {
        let ran = hostRunTime()
        let now = domain.time.systemTime
        let onCPU = ran &- lastHostRunTime
        lastHostRunTime = ran
        let elapsed = now &- runstateEntry
        if runstate == .running {
            let running = min(onCPU, elapsed)
            runstateTimes[Runstate.running.rawValue] &+= running
            runstateTimes[Runstate.runnable.rawValue] &+= elapsed - running
        } else {
            runstateTimes[runstate.rawValue] &+= elapsed
        }
        runstate = new
        runstateEntry = now
        publishRunstate()
    }

    /// vcpu_runstate_info {int state; u64 state_entry_time; u64 time[4]} at the
    /// guest's registered virtual address, bracketed by XEN_RUNSTATE_UPDATE.
    func publishRunstate() {
        guard runstateVirtual != 0 else { return }
        let flag: UInt64 = 1 << 63
        _ = writeGuestWord(runstateEntry | flag, at: runstateVirtual + 8)
        ckvm_fence()
        _ = writeGuestWord(UInt64(runstate.rawValue), at: runstateVirtual)
        for i in 0..<4 { _ = writeGuestWord(runstateTimes[i], at: runstateVirtual + 16 + UInt64(i * 8)) }
        ckvm_fence()
        _ = writeGuestWord(runstateEntry, at: runstateVirtual + 8)
    }

    /// Nanoseconds this thread has run on a host CPU: its CPU-time clock,
    /// which (unlike schedstat, updated only at the host's ticks) includes
    /// the slice running now, so that intervals a few milliseconds long
    /// are charged what the host charged them.
    private func hostRunTime() -> UInt64 {
        var t = timespec()
        guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) == 0 else { return 0 }
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }

    /// SCHEDOP_block: sleep until an event is pending (events unmasked).
    func block() {
        blockedNow.store(true, ordering: .relaxed)
        enterRunstate(.blocked)
        defer {
            blockedNow.store(false, ordering: .relaxed)
            enterRunstate(.running)
        }
        upcallMask = false
        while !isStopping && !domain.pauseGate.isClosed && online.load(ordering: .relaxed) {
            checkTimer()
            if upcallPending { break }
            let now = domain.time.systemTime
            let fireAt = timerFireAt
            let wait = fireAt == 0 ? 1_000_000_000 : (fireAt > now ? fireAt - now : 0)
            if wait == 0 { continue }
            _ = VCPU.waitForKick(timeoutNanoseconds: wait)
        }
        publishTime()
    }

    /// SCHEDOP_poll: sleep, events still masked, until one of `ports` is
    /// pending, an event could be delivered, or system time `deadline` passes.
    func poll(ports: [Int], until deadline: UInt64) {
        let si = domain.sharedInfo
        func anyPending() -> Bool {
            ports.contains { p in (si + 2048 + (p / 64) * 8).load(as: UInt64.self) & (1 << UInt64(p % 64)) != 0 }
        }
        polling.store(true, ordering: .releasing)
        enterRunstate(.blocked)
        defer {
            polling.store(false, ordering: .releasing)
            enterRunstate(.running)
        }
        while !isStopping && !domain.pauseGate.isClosed && online.load(ordering: .relaxed) {
            checkTimer()
            if anyPending() || (upcallPending && !upcallMask) { break }
            let now = domain.time.systemTime
            if deadline != 0 && now >= deadline { break }
            var wait: UInt64 = 1_000_000_000
            if deadline != 0 { wait = min(wait, deadline - now) }
            let fireAt = timerFireAt
            if fireAt != 0 { wait = min(wait, fireAt > now ? fireAt - now : 0) }
            if wait == 0 { continue }
            _ = VCPU.waitForKick(timeoutNanoseconds: wait)
        }
    }

    /// Publishes this vCPU's system time in its vcpu_info and, if the guest
    /// registered one, in its time area (written through the kernel's page
    /// tables: the user tables of a 64-bit PV guest do not map the kernel).
    func publishTime() {
        domain.time.publish(to: vcpuInfo + 32, tscOffset: tscOffset)
        if timeAreaVirtual != 0, timeAreaVirtual & 0xfff <= 4096 - 32,
           let pa = translate(timeAreaVirtual, write: true, cr3: kernelCR3),
           let p = domain.memory.pointer(pa, length: 32) {
            domain.time.publish(to: p, tscOffset: tscOffset)
        }
    }

    // MARK: Guest virtual memory

    /// Walks the current page tables; nil if unmapped (or not writable when writing).
    func translate(_ va: UInt64, write: Bool = false, cr3: UInt64? = nil) -> UInt64? {
        // The tables of the mode the guest is in now (a toggle swaps them
        // before the hardware CR3 follows on the way back).
        var table = (cr3 ?? (inKernel ? kernelCR3 : userCR3)) & PTE.frameMask
        let mem = domain.memory
        for level in stride(from: 4, through: 1, by: -1) {
            guard let e = mem.load(table + UInt64(PTE.index(va, level: level)) * 8, as: UInt64.self),
                  PTE.isPresent(e) else { return nil }
            if write && e & PTE.writable == 0 { return nil }
            if level > 1 && e & PTE.pageSize != 0 { return nil }
            table = e & PTE.frameMask
        }
        guard table < mem.size else {
            if table >> 12 == domain.sharedInfoFrame { return table | (va & 0xfff) }
            return nil
        }
        return table | (va & 0xfff)
    }

    /// Host pointer for `length` bytes at guest virtual `va` within one page.
    func guestPointer(_ va: UInt64, length: Int, write: Bool = false) -> UnsafeMutableRawPointer? {
        guard length <= 4096 - Int(va & 0xfff), let pa = translate(va, write: write) else { return nil }
        if pa >> 12 == domain.sharedInfoFrame { return domain.sharedInfo + Int(pa & 0xfff) }
        return domain.memory.pointer(pa, length: UInt64(length))
    }

    func readGuest(_ va: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        var done = 0
        while done < buffer.count {
            let a = va &+ UInt64(done)
            let n = min(buffer.count - done, 4096 - Int(a & 0xfff))
            guard let p = guestPointer(a, length: n) else { return false }
            (buffer.baseAddress! + done).copyMemory(from: p, byteCount: n)
            done += n
        }
        return true
    }

    func readGuestWord(_ va: UInt64) -> UInt64? {
        if va & 7 == 0, let p = guestPointer(va, length: 8) { return p.load(as: UInt64.self) }
        var v: UInt64 = 0
        let ok = withUnsafeMutableBytes(of: &v) { readGuest(va, into: $0) }
        return ok ? v : nil
    }

    func writeGuestWord(_ word: UInt64, at va: UInt64) -> Bool {
        guard let p = guestPointer(va, length: 8, write: true) else { return false }
        p.storeBytes(of: word, as: UInt64.self)
        return true
    }

    func writeGuest(_ words: [UInt64], at va: UInt64) -> Bool {
        for (i, w) in words.enumerated() {
            guard let p = guestPointer(va &+ UInt64(i * 8), length: 8, write: true) else { return false }
            p.storeBytes(of: w, as: UInt64.self)
        }
        return true
    }

    func writeGuestBytes(_ bytes: UnsafeRawBufferPointer, at va: UInt64) -> Bool {
        var done = 0
        while done < bytes.count {
            let a = va &+ UInt64(done)
            let n = min(bytes.count - done, 4096 - Int(a & 0xfff))
            guard let p = guestPointer(a, length: n, write: true) else { return false }
            p.copyMemory(from: bytes.baseAddress! + done, byteCount: n)
            done += n
        }
        return true
    }

    var statistics: String {
        let hc = hypercallCounts.enumerated().filter { $0.element > 0 }.map { "\($0.offset):\($0.element)" }.joined(separator: " ")
        let vc = vectorCounts.enumerated().filter { $0.element > 0 }.map { "\($0.offset):\($0.element)" }.joined(separator: " ")
        let now = domain.time.systemTime
        let timer = timerDeadline == 0 ? "none" : "\(Int64(bitPattern: timerDeadline &- now) / 1000)us"
        let sel = String(vcpuInfo.load(fromByteOffset: 8, as: UInt64.self), radix: 16)
        return "vcpu\(id): runstate ns running/runnable/blocked/offline=\(runstateTimes) exits=\(exits) syscalls=\(syscallEntries) early-timer-events=\(earlyTimerEvents) tick-lag-us=\(tickLag / 1000) keeps-time=\(guestKeepsTime) in-place-returns=\(inPlaceReturns) stub-returns=\(stubReturns) replayed=\(replayed) online=\(online.load(ordering: .relaxed)) blocked=\(blockedNow.load(ordering: .relaxed)) polling=\(polling.load(ordering: .relaxed)) pending=\(upcallPending) mask=\(upcallMask) sel=\(sel) timer=\(timer) mode=\(inKernel ? "k" : "u") rip=\(String(ctx.regs.rip, radix: 16))\n  hypercalls \(hc)\n  vectors \(vc)"
    }

    /// The page-table walk for `va` in the current mode's tables, for diagnostics.
    func walkDescription(_ va: UInt64) -> String {
        var table = (inKernel ? kernelCR3 : userCR3) & PTE.frameMask
        var parts: [String] = []
        for level in stride(from: 4, through: 1, by: -1) {
            guard let e = domain.memory.load(table + UInt64(PTE.index(va, level: level)) * 8, as: UInt64.self) else {
                parts.append("L\(level) outside RAM"); break
            }
            parts.append("L\(level)[\(PTE.index(va, level: level))]=\(String(e, radix: 16)) type=\(domain.mmu.withLock { $0.kindOf(table >> 12) })")
            guard PTE.isPresent(e) else { break }
            table = e & PTE.frameMask
        }
        return parts.joined(separator: " ")
    }

    func registerDump() -> String {
        let r = ctx.regs
        func h(_ v: UInt64) -> String { String(v, radix: 16) }
        return """
          rip=\(h(r.rip)) rsp=\(h(r.rsp)) rflags=\(h(r.rflags)) cs=\(h(ctx.cs)) ss=\(h(ctx.ss)) mode=\(inKernel ? "kernel" : "user")
          rax=\(h(r.rax)) rbx=\(h(r.rbx)) rcx=\(h(r.rcx)) rdx=\(h(r.rdx)) rsi=\(h(r.rsi)) rdi=\(h(r.rdi)) rbp=\(h(r.rbp))
          r8=\(h(r.r8)) r9=\(h(r.r9)) r10=\(h(r.r10)) r11=\(h(r.r11)) r12=\(h(r.r12)) r13=\(h(r.r13)) r14=\(h(r.r14)) r15=\(h(r.r15))
          cr3=\(h(hardwareCR3)) kernel_cr3=\(h(kernelCR3)) user_cr3=\(h(userCR3)) exits=\(exits)
        """
    }
}
