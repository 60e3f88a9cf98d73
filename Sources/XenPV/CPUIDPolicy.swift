import CKVM
import KVM
import Synchronization

/// What CPUID says to a PV guest: the host's leaves filtered like Xen's PV
/// policy (no PSE/PGE/1G pages, no SMEP/SMAP/UMIP/PKU/LA57/INVPCID/PCID, no
/// VMX/SVM/MTRR/x2APIC/TSC-deadline, no XSAVE family: CR4.OSXSAVE stays off),
/// with Xen's signature at 0x40000000 so Linux takes its Xen PV path.
struct CPUIDPolicy: Sendable {
    let leaves: [CPUIDEntry]

    static let hostHasCX16: Bool = {
        var a: UInt32 = 0, b: UInt32 = 0, c: UInt32 = 0, d: UInt32 = 0
        ckvm_cpuid(1, 0, &a, &b, &c, &d)
        return c & (1 << 13) != 0
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
                // ecx: no UMIP(2) PKU(3) OSPKE(4) LA57(16) VAES etc. needing AVX(9,10) RDPID ok
                e.ecx &= ~UInt32(0x15e1c)
                e.edx = 0
            case 0xd:
                e.eax = 0; e.ebx = 0; e.ecx = 0; e.edx = 0
            case 0x8000_0001:
                // edx: no PDPE1GB(26); ecx: no SVM(2)
                e.edx &= ~UInt32(0x400_0000)
                e.ecx &= ~UInt32(4)
            default: break
            }
            out.append(e)
        }
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
