import CKVM
import Glibc
import KVM

/// Hypercall numbers (Xen public xen.h).
enum Hypercall {
    static let setTrapTable: UInt64 = 0, mmuUpdate: UInt64 = 1, setGDT: UInt64 = 2, stackSwitch: UInt64 = 3
    static let fpuTaskswitch: UInt64 = 5, setDebugreg: UInt64 = 8, getDebugreg: UInt64 = 9
    static let updateDescriptor: UInt64 = 10, memoryOp: UInt64 = 12, multicall: UInt64 = 13
    static let updateVAMapping: UInt64 = 14, setTimerOp: UInt64 = 15, xenVersion: UInt64 = 17
    static let consoleIO: UInt64 = 18, grantTableOp: UInt64 = 20, vmAssist: UInt64 = 21
    static let iret: UInt64 = 23, vcpuOp: UInt64 = 24, setSegmentBase: UInt64 = 25
    static let mmuextOp: UInt64 = 26, schedOp: UInt64 = 29, callbackOp: UInt64 = 30
    static let eventChannelOp: UInt64 = 32, physdevOp: UInt64 = 33, xenpmuOp: UInt64 = 40
}

extension PVCPU {
    /// A `syscall` in guest kernel mode: rax is the number, rdi/rsi/rdx/r10/r8 the arguments.
    func hypercall() throws {
        let nr = ctx.regs.rax
        if nr < 64 { hypercallCounts[Int(nr)] &+= 1 }
        if nr == Hypercall.iret {
            try iretHypercall()
            return
        }
        let a = (ctx.regs.rdi, ctx.regs.rsi, ctx.regs.rdx, ctx.regs.r10, ctx.regs.r8)
        let result = try dispatch(nr, a.0, a.1, a.2, a.3, a.4)
        ctx.regs.rax = UInt64(bitPattern: result)
    }

    private func dispatch(_ nr: UInt64, _ a1: UInt64, _ a2: UInt64, _ a3: UInt64, _ a4: UInt64, _ a5: UInt64) throws -> Int64 {
        switch nr {
        case Hypercall.setTrapTable: return setTrapTable(a1)
        case Hypercall.mmuUpdate: return try mmuUpdate(requests: a1, count: a2, done: a3, domain: a4)
        case Hypercall.setGDT: return setGDT(frames: a1, entries: a2)
        case Hypercall.stackSwitch: kernelSS = a1; kernelSP = a2; return 0
        case Hypercall.fpuTaskswitch: return 0
        case Hypercall.setDebugreg: return 0
        case Hypercall.getDebugreg: return 0
        case Hypercall.updateDescriptor: return updateDescriptor(machineAddress: a1, descriptor: a2)
        case Hypercall.memoryOp: return memoryOp(a1, a2)
        case Hypercall.multicall: return try multicall(a1, count: a2)
        case Hypercall.updateVAMapping: return try updateVAMapping(va: a1, pte: a2, flags: a3)
        case Hypercall.setTimerOp:
            setTimer(deadline: a1)
            if a1 != 0 && timerFireAt <= domain.time.systemTime { checkTimer() }
            return 0
        case Hypercall.xenVersion: return xenVersion(a1, a2)
        case Hypercall.consoleIO: return consoleIO(a1, count: a2, buffer: a3)
        case Hypercall.grantTableOp: return grantTableOp(a1, arg: a2, count: a3)
        case Hypercall.vmAssist: return 0
        case Hypercall.vcpuOp: return try vcpuOp(a1, vcpu: a2, arg: a3)
        case Hypercall.setSegmentBase: return setSegmentBase(a1, value: a2)
        case Hypercall.mmuextOp: return try mmuextOp(a1, count: a2, done: a3)
        case Hypercall.schedOp: return try schedOp(a1, arg: a2)
        case Hypercall.callbackOp: return callbackOp(a1, arg: a2)
        case Hypercall.eventChannelOp: return eventChannelOp(a1, arg: a2)
        case Hypercall.physdevOp: return a1 == 6 || a1 == 7 ? 0 : -XenErrno.ENOSYS
        default: return -XenErrno.ENOSYS
        }
    }

    // MARK: Control flow

    /// HYPERVISOR_iret: iret_context {rax, r11, rcx, flags, rip, cs, rflags, rsp, ss} at rsp.
    private func iretHypercall() throws {
        var w: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &w) { readGuest(ctx.regs.rsp, into: $0) }
        guard ok else { throw GuestFailure(message: "iret with an unreadable frame at 0x\(String(ctx.regs.rsp, radix: 16))") }
        let cs = w.5, flags = w.3
        if cs & 3 == 3 && inKernel { try toggleMode() }
        ctx.regs.rip = w.4
        ctx.cs = (cs & 0xffff) | 3
        ctx.regs.rflags = (w.6 & ~UInt64(0x3000 | 0x2_0000)) | 0x200
        ctx.regs.rsp = w.7
        ctx.ss = (w.8 & 0xffff) | 3
        if flags & (1 << 8) == 0 {
            ctx.regs.r11 = w.1
            ctx.regs.rcx = w.2
        }
        ctx.regs.rax = w.0
        upcallMask = w.6 & 0x200 == 0
    }

    private func schedOp(_ cmd: UInt64, arg: UInt64) throws -> Int64 {
        switch cmd {
        case 0: sched_yield(); return 0                 // yield
        case 1: block(); return 0                       // block
        case 2, 4:                                      // shutdown {reason}
            let reason = readGuestWord(arg).map { UInt32(truncatingIfNeeded: $0) } ?? 3
            switch reason {
            case 0: domain.end(.poweroff)
            case 1: domain.end(.reboot)
            case 2:                                     // suspend (rdx: start_info's frame)
                return domain.guestSuspends(vcpu: id, startInfoFrame: ctx.regs.rdx)
            default: domain.end(.crash("the guest reported a crash (shutdown reason \(reason))"))
            }
            return 0
        case 3:                                         // poll {ports, nr, timeout}
            guard let list = readGuestWord(arg), let n = readGuestWord(arg + 8),
                  let timeout = readGuestWord(arg + 16) else { return -XenErrno.EFAULT }
            let count = Int(n & 0xffff_ffff)
            guard count <= 128 else { return -XenErrno.EINVAL }
            var ports: [Int] = []
            for i in 0..<count {
                guard let w = readGuestWord(list + UInt64(i) * 4) else { return -XenErrno.EFAULT }
                let port = Int(w & 0xffff_ffff)
                guard port > 0 && port < EventChannels.portLimit else { return -XenErrno.EINVAL }
                ports.append(port)
            }
            poll(ports: ports, until: timeout)
            return 0
        case 5: return 0                                // shutdown_code
        default: return -XenErrno.ENOSYS
        }
    }

    // MARK: Trap table, callbacks, segments

    private func setTrapTable(_ table: UInt64) -> Int64 {
        if table == 0 {
            for i in 0..<256 { trapAddress[i] = 0; trapFlags[i] = 0 }
            return 0
        }
        var at = table
        for _ in 0..<256 {
            guard let w0 = readGuestWord(at), let w1 = readGuestWord(at + 8) else { return -XenErrno.EFAULT }
            if w1 == 0 { break }
            let vector = Int(w0 & 0xff)
            trapFlags[vector] = UInt8((w0 >> 8) & 0xff)
            trapAddress[vector] = w1
            at += 16
        }
        return 0
    }

    private func callbackOp(_ cmd: UInt64, arg: UInt64) -> Int64 {
        guard cmd == 0 else { return cmd == 1 ? 0 : -XenErrno.ENOSYS }
        guard let w0 = readGuestWord(arg), let address = readGuestWord(arg + 8) else { return -XenErrno.EFAULT }
        let type = w0 & 0xffff, flags = (w0 >> 16) & 0xffff
        switch type {
        case 0: eventCallback = address
        case 1: failsafeCallback = address
        case 2: syscallCallback = address; syscallMasksEvents = flags & 1 != 0
        case 4, 5, 7: break      // nmi, sysenter, syscall32: accepted, never raised
        default: return -XenErrno.EINVAL
        }
        return 0
    }

    private func setSegmentBase(_ which: UInt64, value: UInt64) -> Int64 {
        switch which {
        case 0: fsBase = value
        case 1: gsBaseUser = value
        case 2: gsBaseKernel = value
        case 3: gsBaseUser = 0      // loading a user GS selector: flat base
        default: return -XenErrno.EINVAL
        }
        segmentsDirty = true
        return 0
    }

    // MARK: Descriptor tables

    /// Validates a guest descriptor like Xen's check_descriptor: code and data
    /// at DPL 3 only (a DPL 0 segment would hand the guest CPL0), no system
    /// segments except the LDT-less null.
    static func checkDescriptor(_ d: UInt64) -> UInt64? {
        if d & (1 << 47) == 0 { return d }                  // not present: harmless
        let s = d & (1 << 44) != 0
        guard s else { return nil }                         // system descriptor/gate
        return d | (UInt64(3) << 45)                        // force DPL 3
    }

    private func setGDT(frames list: UInt64, entries: UInt64) -> Int64 {
        guard entries <= 512 * 14, entries > 0 else { return -XenErrno.EINVAL }
        guard let f0 = readGuestWord(list) else { return -XenErrno.EFAULT }
        let frameCount = Int((entries + 511) / 512)
        guard frameCount == 1 else { return -XenErrno.EINVAL }
        guard f0 < domain.frames, let src = domain.memory.pointer(f0 << 12, length: 4096) else { return -XenErrno.EINVAL }
        let gdt = domain.hypervisor.hostPointer(virtual: perCPU + Layout.gdtOffset)!
        for i in 0..<Int(entries) {
            let d = src.load(fromByteOffset: i * 8, as: UInt64.self)
            guard let ok = Self.checkDescriptor(d) else { return -XenErrno.EINVAL }
            gdt.storeBytes(of: ok, toByteOffset: i * 8, as: UInt64.self)
        }
        for i in Int(entries)..<512 { gdt.storeBytes(of: UInt64(0), toByteOffset: i * 8, as: UInt64.self) }
        gdtFrames = [f0]
        return 0
    }

    private func updateDescriptor(machineAddress ma: UInt64, descriptor d: UInt64) -> Int64 {
        guard ma & 7 == 0, ma >> 12 < domain.frames, let checked = Self.checkDescriptor(d) else { return -XenErrno.EINVAL }
        domain.memory.store(checked, at: ma)
        // Mirror into every vCPU whose GDT is this frame.
        for cpu in domain.vcpus where cpu.gdtFrames.first == ma >> 12 {
            let gdt = domain.hypervisor.hostPointer(virtual: cpu.perCPU + Layout.gdtOffset)!
            gdt.storeBytes(of: checked, toByteOffset: Int(ma & 0xfff), as: UInt64.self)
        }
        return 0
    }

    // MARK: MMU

    private func mmuUpdate(requests: UInt64, count: UInt64, done: UInt64, domain dom: UInt64) throws -> Int64 {
        let n = Int(count & 0x7fff_ffff)
        guard n <= 1 << 20 else { return -XenErrno.EINVAL }
        var completed = 0
        for i in 0..<n {
            guard let ptr = readGuestWord(requests + UInt64(i) * 16),
                  let val = readGuestWord(requests + UInt64(i) * 16 + 8) else { return -XenErrno.EFAULT }
            let cmd = ptr & 3
            let ma = ptr & ~UInt64(3)
            switch cmd {
            case 0, 2:
                let failure = domain.mmu.withLock {
                    $0.update(frame: ma >> 12, index: Int((ma & 0xfff) >> 3), value: val, preserveAD: cmd == 2,
                              memory: domain.memory, replay: &replay)
                }
                if let failure { throw GuestFailure(message: "mmu_update refused: \(failure)") }
            case 1:
                break       // MACHPHYS: our M2P is the identity and read-only
            default:
                return -XenErrno.ENOSYS
            }
            completed += 1
        }
        if done != 0 { _ = writeGuestWord(UInt64(completed), at: done) }
        return 0
    }

    private func mmuextOp(_ ops: UInt64, count: UInt64, done: UInt64) throws -> Int64 {
        let n = Int(count & 0x7fff_ffff)
        guard n <= 1 << 20 else { return -XenErrno.EINVAL }
        for i in 0..<n {
            let base = ops + UInt64(i) * 24
            guard let cmd = readGuestWord(base), let arg1 = readGuestWord(base + 8),
                  let arg2 = readGuestWord(base + 16) else { return -XenErrno.EFAULT }
            let r = try mmuext(UInt32(truncatingIfNeeded: cmd), arg1, arg2)
            if r != 0 { return r }
        }
        if done != 0 { _ = writeGuestWord(UInt64(n), at: done) }
        return 0
    }

    private func mmuext(_ cmd: UInt32, _ arg1: UInt64, _ arg2: UInt64) throws -> Int64 {
        let mem = domain.memory
        switch cmd {
        case 0...3:
            let kind = PageTypes.Kind(rawValue: UInt8(cmd + 1))!
            let failure = domain.mmu.withLock { $0.pin(arg1, as: kind, memory: mem, replay: &replay) }
            if let failure { throw GuestFailure(message: "pin of L\(cmd + 1) table refused: \(failure)") }
        case 4:
            let failure = domain.mmu.withLock { $0.unpin(arg1, memory: mem) }
            if let failure { throw GuestFailure(message: "unpin refused: \(failure)") }
        case 5, 15:
            let newBase = arg1 << 12
            if arg1 != 0 {
                let failure = domain.mmu.withLock { $0.get(arg1, as: .l4, memory: mem, replay: &replay) }
                if let failure { throw GuestFailure(message: "new base pointer refused: \(failure)") }
            }
            let old = cmd == 5 ? kernelCR3 : userCR3
            if old != 0 { domain.mmu.withLock { $0.put(old >> 12, memory: mem) } }
            if cmd == 5 { kernelCR3 = newBase } else { userCR3 = newBase }
        case 6, 8, 10:
            flushKind = 1
            if cmd != 6 { flushOthers() }
        case 7, 9, 11:
            if flushKind == 0 || flushKind == 2 { flushKind = 2; invlpgList.append(arg1) }
            if cmd != 7 { flushOthers() }
        case 12, 18: break
        case 13:
            ldtBase = arg1; ldtEntries = arg2
        case 16:
            guard domain.mmu.withLock({ $0.owns(arg1) }) else { return -XenErrno.EINVAL }
            let typed = domain.mmu.withLock { $0.isPageTable(arg1) }
            guard !typed else { return -XenErrno.EINVAL }
            memset(mem.pointer(arg1 << 12, length: 4096)!, 0, 4096)
        case 17:
            guard domain.mmu.withLock({ $0.owns(arg1) && $0.owns(arg2) }) else { return -XenErrno.EINVAL }
            let typed = domain.mmu.withLock { $0.isPageTable(arg1) }
            guard !typed else { return -XenErrno.EINVAL }
            memcpy(mem.pointer(arg1 << 12, length: 4096)!, mem.pointer(arg2 << 12, length: 4096)!, 4096)
        default:
            return -XenErrno.ENOSYS
        }
        return 0
    }

    func flushOthers() {
        for cpu in domain.vcpus where cpu !== self {
            cpu.remoteFlush.store(true, ordering: .releasing)
        }
    }

    private func updateVAMapping(va: UInt64, pte: UInt64, flags: UInt64) throws -> Int64 {
        // Find the L1 entry through the current tables.
        var table = kernelCR3 & PTE.frameMask
        for level in stride(from: 4, through: 2, by: -1) {
            guard let e = domain.memory.load(table + UInt64(PTE.index(va, level: level)) * 8, as: UInt64.self),
                  PTE.isPresent(e), e & PTE.pageSize == 0 else { return -XenErrno.EINVAL }
            table = e & PTE.frameMask
        }
        let failure = domain.mmu.withLock {
            $0.update(frame: table >> 12, index: PTE.index(va, level: 1), value: pte, preserveAD: false,
                      memory: domain.memory, replay: &replay)
        }
        if let failure { throw GuestFailure(message: "update_va_mapping refused: \(failure)") }
        switch flags & 3 {
        case 1: flushKind = 1
        case 2: if flushKind != 1 { flushKind = 2; invlpgList.append(va) }
        default: break
        }
        if flags & 4 != 0 { flushOthers() }
        return 0
    }

    private func multicall(_ list: UInt64, count: UInt64) throws -> Int64 {
        guard count <= 1024 else { return -XenErrno.EINVAL }
        for i in 0..<count {
            let e = list + i * 64
            var w = [UInt64](repeating: 0, count: 8)
            let ok = w.withUnsafeMutableBytes { readGuest(e, into: $0) }
            guard ok else { return -XenErrno.EFAULT }
            let nr = w[0]
            guard nr != Hypercall.iret, nr != Hypercall.multicall, nr != Hypercall.schedOp else {
                _ = writeGuestWord(UInt64(bitPattern: -XenErrno.EINVAL), at: e + 8)
                continue
            }
            if nr < 64 { hypercallCounts[Int(nr)] &+= 1 }
            let r = try dispatch(nr, w[2], w[3], w[4], w[5], w[6])
            _ = writeGuestWord(UInt64(bitPattern: r), at: e + 8)
        }
        return 0
    }

    // MARK: Information

    private func xenVersion(_ cmd: UInt64, _ arg: UInt64) -> Int64 {
        switch cmd {
        case 0: return (4 << 16) | 17
        case 1:   // extraversion: char[16]
            let s = Array(".0-xenolith".utf8) + [0]
            return s.withUnsafeBytes { writeGuestBytes($0, at: arg) } ? 0 : -XenErrno.EFAULT
        case 3:   // capabilities: char[1024]
            let s = Array("xen-3.0-x86_64".utf8) + [0]
            return s.withUnsafeBytes { writeGuestBytes($0, at: arg) } ? 0 : -XenErrno.EFAULT
        case 6:   // get_features {submap_idx, submap}
            guard let idx = readGuestWord(arg) else { return -XenErrno.EFAULT }
            var features: UInt32 = 0
            if UInt32(truncatingIfNeeded: idx) == 0 {
                // pae_pgdir_above_4gb, mmu_pt_update_preserve_ad, highmem_assist, gnttab_map_avail_bits
                features = (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7)
            }
            let word = (idx & 0xffff_ffff) | (UInt64(features) << 32)
            return writeGuestWord(word, at: arg) ? 0 : -XenErrno.EFAULT
        case 7: return 4096
        case 5:   // platform_parameters {virt_start}
            return writeGuestWord(Layout.m2pVirtual, at: arg) ? 0 : -XenErrno.EFAULT
        case 8:   // guest_handle: the domain's 16-byte UUID, no more (the guest's buffer is 16 bytes)
            return withUnsafeBytes(of: domain.handle) { writeGuestBytes($0, at: arg) } ? 0 : -XenErrno.EFAULT
        case 2, 4, 9:
            // compile_info (144 bytes), changeset (64), commandline (1024): all empty strings.
            let size = cmd == 2 ? 144 : cmd == 4 ? 64 : 1024
            let zero = [UInt8](repeating: 0, count: size)
            return zero.withUnsafeBytes { writeGuestBytes($0, at: arg) } ? 0 : -XenErrno.EFAULT
        case 10:  // build_id: none to give
            return -XenErrno.ENODATA
        default: return -XenErrno.ENOSYS
        }
    }

    private func memoryOp(_ command: UInt64, _ arg: UInt64) -> Int64 {
        // The low 6 bits are the sub-op; the rest, for the reservation ops,
        // the extent to continue from (MEMOP_EXTENT_SHIFT).
        let cmd = command & 0x3f
        switch cmd {
        case 0, 1, 6:   // increase_reservation, decrease_reservation, populate_physmap
            return memoryReservation(cmd, arg, startExtent: command >> 6)
        case 12:  // machphys_mapping {v_start, v_end, max_mfn}
            let end = Layout.m2pVirtual + domain.frames * 8
            return writeGuest([Layout.m2pVirtual, (end + 4095) & ~4095, domain.frames - 1], at: arg) ? 0 : -XenErrno.EFAULT
        case 9:   // memory_map {nr_entries, buffer}: one RAM entry
            guard let n = readGuestWord(arg), let buffer = readGuestWord(arg + 8), n & 0xffff_ffff >= 1 else { return -XenErrno.EFAULT }
            var e820 = [UInt8](repeating: 0, count: 20)
            e820.withUnsafeMutableBytes { p in
                p.storeBytes(of: UInt64(0), toByteOffset: 0, as: UInt64.self)
                p.storeBytes(of: domain.frames << 12, toByteOffset: 8, as: UInt64.self)
                p.storeBytes(of: UInt32(1), toByteOffset: 16, as: UInt32.self)
            }
            guard e820.withUnsafeBytes({ writeGuestBytes($0, at: buffer) }) else { return -XenErrno.EFAULT }
            return writeGuestWord((n & ~0xffff_ffff) | 1, at: arg) ? 0 : -XenErrno.EFAULT
        case 3:   // current_reservation: what the guest holds now
            return Int64(domain.frames - domain.mmu.withLock { $0.balloonedCount })
        case 4:   // maximum_reservation: the boot size (static-max)
            return Int64(domain.frames)
        case 2, 14: // maximum_ram_page, maximum_gpfn
            return Int64(domain.frames - 1)
        default:
            return -XenErrno.ENOSYS
        }
    }

    private func consoleIO(_ cmd: UInt64, count: UInt64, buffer: UInt64) -> Int64 {
        guard cmd == 0 else { return cmd == 1 ? 0 : -XenErrno.ENOSYS }
        let n = Int(min(count, 4096))
        var bytes = [UInt8](repeating: 0, count: n)
        let ok = bytes.withUnsafeMutableBytes { readGuest(buffer, into: $0) }
        guard ok else { return -XenErrno.EFAULT }
        domain.console.write(earlyOutput: bytes)
        return Int64(n)
    }

    // MARK: vCPUs

    private func vcpuOp(_ cmd: UInt64, vcpu target: UInt64, arg: UInt64) throws -> Int64 {
        guard target < UInt64(domain.vcpus.count) else { return cmd == 3 ? -XenErrno.ENOENT : -XenErrno.ENOENT }
        let other = domain.vcpus[Int(target)]
        switch cmd {
        case 3: return other.online.load(ordering: .acquiring) ? 1 : 0      // is_up
        case 0: return try other.initialise(from: self, context: arg)      // initialise
        case 1:                                                             // up
            guard other.kernelCR3 != 0 else { return -XenErrno.EINVAL }
            other.online.store(true, ordering: .releasing)
            other.kick()
            return 0
        case 2:                                                             // down
            // Itself (play_dead): it resumes here on VCPUOP_up. Another
            // (xen_vcpu_restore, after a restore): it stops at its next
            // return to the guest, its context kept, until VCPUOP_up.
            if other === self { parkOffline(); return 0 }
            return other.takeDown()
        case 5:                                                             // register_runstate_memory_area
            guard let va = readGuestWord(arg) else { return -XenErrno.EFAULT }
            other.runstateVirtual = va
            if other === self { publishRunstate() }
            return 0
        case 6, 7: return 0                                                 // periodic timer: off
        case 8:                                                             // set_singleshot_timer
            guard other === self, let t = readGuestWord(arg) else { return -XenErrno.EINVAL }
            setTimer(deadline: t)
            if timerFireAt <= domain.time.systemTime { checkTimer() }
            return 0
        case 9: setTimer(deadline: 0); return 0                             // stop_singleshot_timer
        case 10:                                                            // register_vcpu_info {mfn, offset}
            guard let mfn = readGuestWord(arg), let off = readGuestWord(arg + 8).map({ $0 & 0xffff_ffff }),
                  mfn < domain.frames, off + 64 <= 4096,
                  let p = domain.memory.pointer((mfn << 12) + off, length: 64) else { return -XenErrno.EINVAL }
            p.copyMemory(from: other.vcpuInfo, byteCount: 64)
            other.vcpuInfo = p
            p.storeBytes(of: ~UInt64(0), toByteOffset: 8, as: UInt64.self)
            p.storeBytes(of: UInt8(1), as: UInt8.self)
            domain.time.publish(to: p + 32, tscOffset: other.tscOffset)
            return 0
        case 13:                                                            // register_vcpu_time_memory_area {va}
            // The vDSO's clock: Linux checks the area's TSC_STABLE flag right
            // after this call, so it is published at once. 0 unregisters.
            guard let va = readGuestWord(arg) else { return -XenErrno.EFAULT }
            guard va == 0 || (va & 0xfff <= 4096 - 32 && other.translate(va, write: true, cr3: other.kernelCR3) != nil) else {
                return -XenErrno.EINVAL
            }
            other.timeAreaVirtual = va
            other.publishTime()
            return 0
        case 11: return -XenErrno.ENOSYS
        case 4:                                                             // get_runstate_info
            let words = [UInt64(other.runstate.rawValue), other.runstateEntry] + other.runstateTimes
            return writeGuest(words, at: arg) ? 0 : -XenErrno.EFAULT
        default: return -XenErrno.ENOSYS
        }
    }

    /// VCPUOP_initialise: a vcpu_guest_context (H arch-x86/xen.h) from `caller`'s memory.
    func initialise(from caller: PVCPU, context va: UInt64) throws -> Int64 {
        let size = 5168
        var buf = [UInt8](repeating: 0, count: size)
        let ok = buf.withUnsafeMutableBytes { caller.readGuest(va, into: $0) }
        guard ok else { return -XenErrno.EFAULT }
        return try buf.withUnsafeBytes { raw -> Int64 in
            func q(_ off: Int) -> UInt64 { raw.load(fromByteOffset: off, as: UInt64.self) }
            // Offsets from offsetof(vcpu_guest_context_t, ...) on x86-64.
            let ctxOff = VCPUGuestContextOffsets.self
            var r = Registers()
            let u = ctxOff.userRegs
            r.r15 = q(u + 0); r.r14 = q(u + 8); r.r13 = q(u + 16); r.r12 = q(u + 24); r.rbp = q(u + 32)
            r.rbx = q(u + 40); r.r11 = q(u + 48); r.r10 = q(u + 56); r.r9 = q(u + 64); r.r8 = q(u + 72)
            r.rax = q(u + 80); r.rcx = q(u + 88); r.rdx = q(u + 96); r.rsi = q(u + 104); r.rdi = q(u + 112)
            r.rip = q(u + 128); r.rflags = (q(u + 144) & ~UInt64(0x3000)) | 0x202; r.rsp = q(u + 152)
            for v in 0..<256 {
                let t = ctxOff.trapCtxt + v * 16
                trapFlags[v] = raw.load(fromByteOffset: t + 1, as: UInt8.self)
                trapAddress[v] = q(t + 8)
            }
            kernelSS = q(ctxOff.kernelSS); kernelSP = q(ctxOff.kernelSP)
            eventCallback = q(ctxOff.eventCallback)
            failsafeCallback = q(ctxOff.failsafeCallback)
            syscallCallback = q(ctxOff.syscallCallback)
            fsBase = q(ctxOff.fsBase); gsBaseKernel = q(ctxOff.gsBaseKernel); gsBaseUser = q(ctxOff.gsBaseUser)
            let gdtFrame = q(ctxOff.gdtFrames), gdtEntries = q(ctxOff.gdtEnts)
            let cr3 = q(ctxOff.ctrlreg + 3 * 8)
            let l4 = cr3 >> 12
            let failure = domain.mmu.withLock { $0.get(l4, as: .l4, memory: domain.memory, replay: &replay) }
            if let failure { throw GuestFailure(message: "VCPUOP_initialise: \(failure)") }
            kernelCR3 = l4 << 12
            hardwareCR3 = kernelCR3
            inKernel = true
            // GDT: the guest's one frame, validated into this vCPU's copy.
            if gdtEntries > 0, gdtFrame < domain.frames,
               let src = domain.memory.pointer(gdtFrame << 12, length: 4096) {
                let gdt = domain.hypervisor.hostPointer(virtual: perCPU + Layout.gdtOffset)!
                for i in 0..<Int(min(gdtEntries, 512)) {
                    let d = src.load(fromByteOffset: i * 8, as: UInt64.self)
                    gdt.storeBytes(of: Self.checkDescriptor(d) ?? 0, toByteOffset: i * 8, as: UInt64.self)
                }
                gdtFrames = [gdtFrame]
            }
            ctx.regs = r
            ctx.cs = UInt64(Layout.flatKernelCS)
            ctx.ss = UInt64(Layout.flatKernelSS)
            vcpuInfo.storeBytes(of: UInt8(1), toByteOffset: 1, as: UInt8.self)
            try loadInitialState()
            return 0
        }
    }

    // MARK: Event channels

    private func eventChannelOp(_ cmd: UInt64, arg: UInt64) -> Int64 {
        switch cmd {
        case 1:   // bind_virq {virq, vcpu, OUT port}
            guard let w = readGuestWord(arg) else { return -XenErrno.EFAULT }
            let virq = Int(w & 0xffff_ffff), vcpu = Int(w >> 32)
            guard vcpu < domain.vcpus.count, virq < 24 else { return -XenErrno.EINVAL }
            guard let port = domain.events.withLock({ ev -> Int? in
                guard let p = ev.allocate(.virq(virq, vcpu: vcpu), vcpu: vcpu) else { return nil }
                ev.virqPorts[vcpu][virq] = p
                return p
            }) else { return -XenErrno.ENOSPC }
            return writePort(port, at: arg + 8)
        case 7:   // bind_ipi {vcpu, OUT port}
            guard let w = readGuestWord(arg) else { return -XenErrno.EFAULT }
            let vcpu = Int(w & 0xffff_ffff)
            guard vcpu < domain.vcpus.count,
                  let port = domain.events.withLock({ $0.allocate(.ipi(vcpu: vcpu), vcpu: vcpu) }) else { return -XenErrno.EINVAL }
            return writePort(port, at: arg + 4)
        case 6:   // alloc_unbound {dom, remote_dom, OUT port}
            guard let port = domain.events.withLock({ $0.allocate(.unbound(remote: 0)) }) else { return -XenErrno.ENOSPC }
            return writePort(port, at: arg + 4)
        case 3:   // close {port}
            guard let w = readGuestWord(arg) else { return -XenErrno.EFAULT }
            let port = Int(w & 0xffff_ffff)
            let pendingWord = domain.sharedInfo + 2048 + (port / 64) * 8
            return domain.events.withLock { ev -> Int64 in
                guard port > 0 && port < ev.ports.count else { return 0 }
                if ev.ports[port] == .reserved { return -XenErrno.EINVAL }      // as Xen's ECS_RESERVED
                if case .virq(let v, let c) = ev.ports[port] { ev.virqPorts[c][v] = nil }
                if case .backend(let b) = ev.ports[port], b == .console || b == .xenstore { return 0 }
                ev.ports[port] = .free
                // Like Xen's evtchn_free: a port bound again must not start
                // out pending (Linux re-binds a re-onlined CPU's IPIs and
                // BUGs on a stale spinlock kick).
                _ = ckvm_atomic_and64(pendingWord, ~(UInt64(1) << UInt64(port % 64)))
                return 0
            }
        case 4:   // send {port}
            guard let w = readGuestWord(arg) else { return -XenErrno.EFAULT }
            trace("send port \(w & 0xffff_ffff) binding \(domain.events.withLock { $0.binding(Int(w & 0xffff_ffff)) })")
            return domain.send(port: Int(w & 0xffff_ffff), from: id)
        case 8:   // bind_vcpu {port, vcpu}
            guard let w = readGuestWord(arg) else { return -XenErrno.EFAULT }
            let port = Int(w & 0xffff_ffff), vcpu = Int(w >> 32)
            guard vcpu < domain.vcpus.count else { return -XenErrno.EINVAL }
            domain.events.withLock { ev in if port > 0 && port < ev.ports.count { ev.notifyVCPU[port] = vcpu } }
            return 0
        case 9:   // unmask {port}
            guard let w = readGuestWord(arg) else { return -XenErrno.EFAULT }
            let port = Int(w & 0xffff_ffff)
            guard port > 0 && port < EventChannels.portLimit else { return -XenErrno.EINVAL }
            let si = domain.sharedInfo
            let word = port / 64, bit = UInt64(1) << UInt64(port % 64)
            _ = ckvm_atomic_and64(si + 2560 + word * 8, ~bit)
            if (si + 2048 + word * 8).load(as: UInt64.self) & bit != 0 {
                let target = domain.events.withLock { ev in port < ev.notifyVCPU.count ? ev.notifyVCPU[port] : 0 }
                domain.vcpus[target].markPending(selector: word)
            }
            return 0
        case 5:   // status
            return -XenErrno.ENOSYS
        case 11, 12, 13: // FIFO ABI: not offered, Linux falls back to 2-level
            return -XenErrno.ENOSYS
        case 0:   // bind_interdomain
            return -XenErrno.EINVAL
        default:
            return -XenErrno.ENOSYS
        }
    }

    private func writePort(_ port: Int, at va: UInt64) -> Int64 {
        var p = UInt32(port)
        return withUnsafeBytes(of: &p) { writeGuestBytes($0, at: va) } ? 0 : -XenErrno.EFAULT
    }
}

/// Field offsets in vcpu_guest_context_t (x86-64), from Xen's public header.
enum VCPUGuestContextOffsets {
    static let userRegs = 8 * 64 + 8          // after fpu_ctxt (512) and flags (8)
    static let trapCtxt = userRegs + 200      // sizeof(struct cpu_user_regs) on x86-64
    static let ldtBase = trapCtxt + 256 * 16
    static let ldtEnts = ldtBase + 8
    static let gdtFrames = ldtEnts + 8
    static let gdtEnts = gdtFrames + 16 * 8
    static let kernelSS = gdtEnts + 8
    static let kernelSP = kernelSS + 8
    static let ctrlreg = kernelSP + 8
    static let debugreg = ctrlreg + 8 * 8
    static let eventCallback = debugreg + 8 * 8
    static let failsafeCallback = eventCallback + 8
    static let syscallCallback = failsafeCallback + 8
    static let vmAssist = syscallCallback + 8
    static let fsBase = vmAssist + 8
    static let gsBaseKernel = fsBase + 8
    static let gsBaseUser = gsBaseKernel + 8
}
