import Glibc
import KVM

/// The hypervisor's private guest-physical pages: trampoline code, IDT, the
/// per-vCPU GDT/TSS/stack/return-link area, the read-only M2P table, and the page
/// tables behind the three hypervisor L4 slots. Built once per VM; the guest
/// can reach none of it except through those slots, whose L4 entries the MMU
/// layer writes into every L4 it validates.
final class HypervisorArea: @unchecked Sendable {
    let physicalBase: UInt64 = Layout.hypervisorPhysical
    let base: UnsafeMutableRawPointer
    let size: UInt64
    private var nextPage: UInt64 = 0
    /// Root tables of the three slots.
    private(set) var m2pL3: UInt64 = 0
    private(set) var trampolineL3: UInt64 = 0
    private(set) var directL3: UInt64 = 0
    private var zeroPage: UInt64 = 0
    /// The shared_info page: outside guest RAM, mappable by the guest (RW).
    private(set) var sharedInfo: UInt64 = 0
    /// The grant table's frames (v1), contiguous, outside guest RAM like
    /// Xen's own: the guest maps them writable and fills in its grants.
    private(set) var grantTable: UInt64 = 0
    let vcpuCount: Int
    let guestFrames: UInt64

    init(guestMemorySize: UInt64, vcpus: Int) throws {
        vcpuCount = vcpus
        guestFrames = guestMemorySize / Layout.pageSize
        let m2pPages = (guestFrames * 8 + 4095) / 4096
        let perCPU = UInt64(Layout.gdtPages + 4 + Layout.replayPages + 2)
        // Tables: slot trees, generous for the direct map's 2 MiB pages and M2P L1s.
        let tables = 16 + m2pPages / 512 + 2 + (guestMemorySize >> 30) + 2
        let pages = 16 + UInt64(GrantTable.maxFrames) + m2pPages + perCPU * UInt64(vcpus) + tables + 64
        size = pages * Layout.pageSize
        let p = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else { throw KVMError("mmap hypervisor area") }
        base = p
        try build(m2pPages: m2pPages, guestMemorySize: guestMemorySize)
    }

    deinit { munmap(base, Int(size)) }

    func register(with vm: VirtualMachine, slot: UInt32) throws {
        try vm.setMemoryRegion(slot: slot, guestPhysical: physicalBase, size: size, host: base)
    }

    func pointer(_ gpa: UInt64) -> UnsafeMutableRawPointer {
        precondition(gpa >= physicalBase && gpa - physicalBase < size, "hypervisor address out of range")
        return base + Int(gpa - physicalBase)
    }

    private func allocate() -> UInt64 {
        precondition((nextPage + 1) * Layout.pageSize <= size, "hypervisor area exhausted")
        defer { nextPage += 1 }
        return physicalBase + nextPage * Layout.pageSize
    }

    private func entry(_ table: UInt64, _ index: Int) -> UnsafeMutablePointer<UInt64> {
        pointer(table).assumingMemoryBound(to: UInt64.self) + index
    }

    /// Maps one page (level 1) or one 2 MiB page (level 2) under a slot's L3.
    private func map(l3: UInt64, virtual va: UInt64, physical pa: UInt64, flags: UInt64, level: Int = 1) {
        var table = l3
        var lvl = 3
        while lvl > level {
            let e = entry(table, PTE.index(va, level: lvl))
            if !PTE.isPresent(e.pointee) {
                let t = allocate()
                // Intermediate entries are permissive; the leaf decides U/RW/NX.
                e.pointee = t | PTE.present | PTE.writable | PTE.user | PTE.accessed
            }
            table = e.pointee & PTE.frameMask
            lvl -= 1
        }
        let leafFlags = flags | PTE.present | PTE.accessed | PTE.dirty | (level == 2 ? PTE.pageSize : 0)
        entry(table, PTE.index(va, level: level)).pointee = pa | leafFlags
    }

    private func build(m2pPages: UInt64, guestMemorySize: UInt64) throws {
        m2pL3 = allocate(); trampolineL3 = allocate(); directL3 = allocate()
        zeroPage = allocate()
        sharedInfo = allocate()
        grantTable = allocate()
        for _ in 1..<GrantTable.maxFrames { _ = allocate() }

        // Trampoline code (supervisor, read-only, executable).
        let code = allocate()
        Trampoline.codePage.withUnsafeBytes { pointer(code).copyMemory(from: $0.baseAddress!, byteCount: 4096) }
        map(l3: trampolineL3, virtual: Layout.trampolineVirtual + Layout.codeOffset, physical: code, flags: 0)
        // The syscall landing page must be user-accessible on this KVM.
        let sys = allocate()
        Trampoline.syscallPage.withUnsafeBytes { pointer(sys).copyMemory(from: $0.baseAddress!, byteCount: 4096) }
        map(l3: trampolineL3, virtual: Layout.trampolineVirtual + Layout.syscallOffset, physical: sys, flags: PTE.user)
        map(l3: trampolineL3, virtual: Layout.trampolineVirtual + Layout.doorbellOffset, physical: Layout.doorbellPhysical,
            flags: PTE.user | PTE.writable | PTE.noExecute)
        // IDT: interrupt gates, DPL 0, to the vector stubs.
        let idt = allocate()
        let codeVA = Layout.trampolineVirtual + Layout.codeOffset
        for v in 0..<256 {
            let target = codeVA + UInt64(min(v, 63) * 8)
            let g = pointer(idt).assumingMemoryBound(to: UInt64.self) + v * 2
            g[0] = (target & 0xffff) | (UInt64(Layout.hypervisorCS) << 16) | (UInt64(0x8e) << 40)
                | ((target >> 16) & 0xffff) << 48
            g[1] = target >> 32
        }
        map(l3: trampolineL3, virtual: Layout.trampolineVirtual + Layout.idtOffset, physical: idt, flags: PTE.noExecute)

        for cpu in 0..<vcpuCount { buildPerCPU(cpu) }

        // M2P: identity (machine frame == guest frame), read-only, user-readable.
        for i in 0..<m2pPages {
            let page = allocate()
            let words = pointer(page).assumingMemoryBound(to: UInt64.self)
            for j in 0..<512 {
                let mfn = i * 512 + UInt64(j)
                words[j] = mfn < guestFrames ? mfn : ~0
            }
            map(l3: m2pL3, virtual: Layout.m2pVirtual + i * 4096, physical: page, flags: PTE.user | PTE.noExecute)
        }

        // Direct map of guest RAM for the trampoline: 2 MiB pages where whole.
        var pa: UInt64 = 0
        while pa < guestMemorySize {
            if pa & 0x1f_ffff == 0 && guestMemorySize - pa >= 0x20_0000 {
                map(l3: directL3, virtual: Layout.directVirtual + pa, physical: pa,
                    flags: PTE.writable | PTE.noExecute, level: 2)
                pa += 0x20_0000
            } else {
                map(l3: directL3, virtual: Layout.directVirtual + pa, physical: pa,
                    flags: PTE.writable | PTE.noExecute)
                pa += 4096
            }
        }
    }

    /// Per-vCPU GDT pages, TSS, CPL0 stack and the return-link area.
    private func buildPerCPU(_ cpu: Int) {
        let va = Layout.perCPUVirtual(cpu)
        for page in 0..<Layout.gdtPages {
            let gdtVA = va + Layout.gdtOffset + UInt64(page) * 4096
            // Page 0 holds the guest's own descriptors (validated copies);
            // page 14 the hypervisor's; the rest read as empty descriptors.
            // Writable for the CPU's accessed/busy bits.
            let pa = (page == 0 || page == 14) ? allocate() : zeroPage
            map(l3: trampolineL3, virtual: gdtVA, physical: pa, flags: PTE.writable | PTE.noExecute)
        }
        let tss = allocate()
        map(l3: trampolineL3, virtual: va + Layout.tssOffset, physical: tss, flags: PTE.writable | PTE.noExecute)
        for s in 0..<2 {
            map(l3: trampolineL3, virtual: va + Layout.stackOffset + UInt64(s) * 4096,
                physical: allocate(), flags: PTE.writable | PTE.noExecute)
        }
        for r in 0..<Layout.replayPages {
            map(l3: trampolineL3, virtual: va + Layout.replayOffset + UInt64(r) * 4096,
                physical: allocate(), flags: PTE.writable | PTE.noExecute)
        }
        // Hypervisor descriptors in GDT page 14 (selector 0xe000 + offset).
        let hyp = translate(va + Layout.gdtOffset + 14 * 4096)!
        let d = pointer(hyp).assumingMemoryBound(to: UInt64.self)
        d[1] = 0x00af_9b00_0000_ffff   // 0xe008: 64-bit code, DPL 0
        d[2] = 0x00cf_9300_0000_ffff   // 0xe010: data, DPL 0
        d[4] = 0x00cf_fb00_0000_ffff   // 0xe023: 32-bit code, DPL 3
        d[5] = 0x00cf_f300_0000_ffff   // 0xe02b: data, DPL 3
        d[6] = 0x00af_fb00_0000_ffff   // 0xe033: 64-bit code, DPL 3
        let tssVA = va + Layout.tssOffset
        let limit: UInt64 = 103
        d[8] = limit | ((tssVA & 0xff_ffff) << 16) | (UInt64(0x89) << 40) | (((tssVA >> 24) & 0xff) << 56)
        d[9] = tssVA >> 32
        // TSS: rsp0 = top of the CPL0 stack; I/O bitmap beyond the limit (none).
        let t = pointer(tss)
        t.storeBytes(of: va + Layout.stackTop, toByteOffset: 4, as: UInt64.self)
        t.storeBytes(of: UInt16(104), toByteOffset: 102, as: UInt16.self)
    }

    /// Walks a hypervisor slot's tables: the guest-physical address behind `va`.
    func translate(_ va: UInt64) -> UInt64? {
        let slot = PTE.index(va, level: 4)
        var table: UInt64
        switch slot {
        case Layout.m2pSlot: table = m2pL3
        case Layout.trampolineSlot: table = trampolineL3
        case Layout.directSlot: table = directL3
        default: return nil
        }
        for level in stride(from: 3, through: 1, by: -1) {
            let e = entry(table, PTE.index(va, level: level)).pointee
            guard PTE.isPresent(e) else { return nil }
            if level == 2 && e & PTE.pageSize != 0 {
                return (e & PTE.frameMask & ~0x1f_ffff) | (va & 0x1f_ffff)
            }
            table = e & PTE.frameMask
        }
        return table | (va & 0xfff)
    }

    /// Host pointer for a hypervisor virtual address (per-vCPU frames, stacks).
    func hostPointer(virtual va: UInt64) -> UnsafeMutableRawPointer? {
        guard let pa = translate(va), pa >= physicalBase else { return nil }
        return pointer(pa)
    }

    /// The L4 entries every guest address space gets in slots 256–258.
    var l4Entries: [(slot: Int, entry: UInt64)] {
        let flags = PTE.present | PTE.writable | PTE.user | PTE.accessed
        return [(Layout.m2pSlot, m2pL3 | flags),
                (Layout.trampolineSlot, trampolineL3 | flags),
                (Layout.directSlot, directL3 | flags)]
    }

    var m2pEntries: UInt64 { guestFrames }
}
