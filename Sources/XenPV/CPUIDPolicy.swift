import CKVM
import KVM
import Synchronization

/// What CPUID says to a PV guest: the host's leaves filtered like Xen's PV
/// policy (no PSE/PGE/1G pages, no SMEP/SMAP/UMIP/PKU/LA57/INVPCID/PCID, no
/// VMX/SVM/MTRR/x2APIC/TSC-deadline, no XSAVES), with Xen's signature at
/// 0x40000000 so Linux takes its Xen PV path.
///
/// XSAVE and the AVX family come from the host CPU itself: guest user space
/// runs natively and its own `cpuid` sees the host's AVX, so the guest kernel
/// must save and restore the whole XSAVE state on its context switches.
/// Without XSAVE it saves only the FXSAVE part, and the upper halves of the
/// YMM registers leak between processes (glibc's AVX2 string functions then
/// fail at random: systemd crashed in strlen).
struct CPUIDPolicy: Sendable {
    let leaves: [CPUIDEntry]

    static let hostHasCX16: Bool = {
        var a: UInt32 = 0, b: UInt32 = 0, c: UInt32 = 0, d: UInt32 = 0
        ckvm_cpuid(1, 0, &a, &b, &c, &d)
        return c & (1 << 13) != 0
    }()

    static func native(_ leaf: UInt32, _ sub: UInt32 = 0) -> CPUIDEntry {
        var a: UInt32 = 0, b: UInt32 = 0, c: UInt32 = 0, d: UInt32 = 0
        ckvm_cpuid(leaf, sub, &a, &b, &c, &d)
        return CPUIDEntry(function: leaf, index: sub, flags: leaf == 0xd ? 1 : 0, eax: a, ebx: b, ecx: c, edx: d)
    }

    /// Leaf 0xD for the state the guest kernel is to save: x87, SSE, AVX
    /// and AVX-512 where the host has them, with the sizes that set needs
    /// (the host's own XCR0 may hold more, such as PKRU), in the standard
    /// format: no XSAVES (CPL0-only; the PV kernel runs at CPL3) and so no
    /// XSAVEC either.
    static let hostXSAVELeaves: [CPUIDEntry] = {
        guard native(1).ecx & (1 << 26) != 0 else { return [] }
        var top = native(0xd, 0)
        top.eax &= 0b1110_0111          // x87, SSE, AVX, AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM)
        top.edx = 0
        var components: [CPUIDEntry] = []
        var size: UInt32 = 576          // legacy area and XSAVE header
        for i in UInt32(2)..<8 where top.eax & (1 << i) != 0 {
            let c = native(0xd, i)
            components.append(c)
            size = max(size, c.ebx + c.eax)     // offset + size
        }
        top.ebx = size; top.ecx = size
        var one = native(0xd, 1)
        one.eax &= ~UInt32(0b1010)      // no XSAVEC, no XSAVES: the standard format, sized above
        one.ebx = 0; one.ecx = 0; one.edx = 0
        return [top, one] + components
    }()

    private static let cache = Mutex<CPUIDPolicy?>(nil)

    static func shared(_ kvm: KVMSystem) -> CPUIDPolicy {
        cache.withLock { c in
            if let c { return c }
            let p = CPUIDPolicy(supported: (try? kvm.supportedCPUID()) ?? [])
            c = p
            return p
        }
    }

    init(supported: [CPUIDEntry]) {
        var out: [CPUIDEntry] = []
        for var e in supported {
            if e.function >= 0x4000_0000 && e.function < 0x5000_0000 { continue }
            switch e.function {
            case 1:
                // ecx: no VMX(5) SMX(6) PCID(17) x2APIC(21) TSC-deadline(24) XSAVE(26) OSXSAVE(27) AVX(28) hypervisor stays
                e.ecx &= ~UInt32(0x3d221060)
                // ... except XSAVE, AVX, FMA and F16C as the host has them, and
                // OSXSAVE with XSAVE, as Xen shows it to PV guests (see above).
                let host = CPUIDPolicy.native(1).ecx & UInt32(0x3400_1000)
                e.ecx |= host
                if host & (1 << 26) != 0 { e.ecx |= 1 << 27 }
                e.ecx |= UInt32(0x8000_0000)
                // CMPXCHG16B: guest code runs at CPL3 natively, so offer it even
                // where KVM's emulator (CPL0 only) lacks it; without it Linux
                // falls back to an emulation that runs `cli`.
                if CPUIDPolicy.hostHasCX16 { e.ecx |= UInt32(1 << 13) }
                // edx: no PSE(3) MTRR(12) PGE(13) PSE36(17) ACPI(22) (thermal), keep the rest
                e.edx &= ~UInt32(0x20423008)
            case 7 where e.index == 0:
                // ebx: no FSGSBASE(0) TSC_ADJUST(1) AVX2(5) SMEP(7) INVPCID(10) AVX512*(16,17,21,26-31) SMAP(20) RTM/HLE(4,11)
                e.ebx &= ~UInt32(0xfc330cb3)
                // AVX2 and AVX-512 as the host has them (see above).
                e.ebx |= CPUIDPolicy.native(7).ebx & UInt32(0xdc23_0020)
                // ecx: no UMIP(2) PKU(3) OSPKE(4) LA57(16) VAES etc. needing AVX(9,10) RDPID ok
                e.ecx &= ~UInt32(0x15e1c)
                e.edx = 0
            case 0xd:
                continue      // the host's, below
            case 0x8000_0001:
                // edx: no PDPE1GB(26); ecx: no SVM(2)
                e.edx &= ~UInt32(0x400_0000)
                e.ecx &= ~UInt32(4)
            default: break
            }
            out.append(e)
        }
        out += CPUIDPolicy.hostXSAVELeaves
        let sig: (UInt32, UInt32, UInt32) = (0x566e_6558, 0x6558_4d4d, 0x4d4d_566e)   // "XenVMMXenVMM"
        out.append(CPUIDEntry(function: 0x4000_0000, eax: 0x4000_0004, ebx: sig.0, ecx: sig.1, edx: sig.2))
        out.append(CPUIDEntry(function: 0x4000_0001, eax: (4 << 16) | 17, ebx: 0, ecx: 0, edx: 0))
        out.append(CPUIDEntry(function: 0x4000_0002, eax: 1, ebx: 0x4000_0000, ecx: 0, edx: 0))
        out.append(CPUIDEntry(function: 0x4000_0003, eax: 0, ebx: 0, ecx: 0, edx: 0))
        out.append(CPUIDEntry(function: 0x4000_0004, eax: 0, ebx: 0, ecx: 0, edx: 0))
        leaves = out
    }

    func entries(forVCPU id: Int, count: Int) -> [CPUIDEntry] {
        leaves.map { e in
            var e = e
            if e.function == 1 {
                e.ebx = (e.ebx & 0x00ff_ffff) | (UInt32(id) << 24)
                e.ebx = (e.ebx & 0xff00_ffff) | (UInt32(min(count, 255)) << 16)
            }
            return e
        }
    }

    /// The leaf the guest sees for (function, index).
    func lookup(function: UInt32, index: UInt32, vcpu: Int, count: Int) -> (UInt32, UInt32, UInt32, UInt32) {
        let significant: Set<UInt32> = [4, 7, 0xb, 0xd, 0xf, 0x10, 0x12, 0x14, 0x17, 0x18, 0x1d, 0x1e, 0x1f, 0x8000_001d, 0x8000_0020]
        let match = leaves.first { $0.function == function && (!significant.contains(function) || $0.index == index) }
        guard var e = match else { return (0, 0, 0, 0) }
        if function == 1 {
            e.ebx = (e.ebx & 0x0000_ffff) | (UInt32(id: vcpu) << 24) | (UInt32(min(count, 255)) << 16)
        }
        if function == 0xb || function == 0x1f { e.edx = UInt32(vcpu) }
        return (e.eax, e.ebx, e.ecx, e.edx)
    }
}

private extension UInt32 { init(id: Int) { self.init(truncatingIfNeeded: id) } }
