import Glibc
import KVM

/// What CPUID tells an HVM guest: KVM's supported set, with this vCPU's
/// APIC ID and the machine's topology (one socket, `count` cores, one thread
/// each), the hypervisor bit, and KVM's paravirtual leaves (kvm-clock, steal
/// time, PV EOI).
///
/// On a software-nested KVM (this machine's `kvm_pvm`), every CPL0
/// instruction goes through KVM's emulator, so the guest is offered only
/// what that emulator survives: no XSAVE family (`xsave`/`xrstor` fail), no
/// SMAP (`clac`/`stac` fail), no PCID/INVPCID, no features whose use goes
/// through `vmcall` (PV IPIs, PV yield, PV unhalt: Linux then loops on the
/// hypercall). On hardware KVM the full set stays.
struct HVMCPUIDPolicy: Sendable {
    let leaves: [CPUIDEntry]
    let emulatedKernel: Bool

    /// True on a KVM that emulates guest CPL0 code (module kvm_pvm loaded).
    static var kernelIsEmulated: Bool { access("/sys/module/kvm_pvm", F_OK) == 0 }

    // KVM_FEATURE_* bit numbers (arch/x86/include/uapi/asm/kvm_para.h).
    static let kvmFeatureClocksource: UInt32 = 1 << 0
    static let kvmFeatureNopIODelay: UInt32 = 1 << 1
    static let kvmFeatureClocksource2: UInt32 = 1 << 3
    static let kvmFeatureStealTime: UInt32 = 1 << 5
    static let kvmFeaturePVEOI: UInt32 = 1 << 6
    static let kvmFeaturePVUnhalt: UInt32 = 1 << 7
    static let kvmFeaturePVTLBFlush: UInt32 = 1 << 9
    static let kvmFeaturePVSendIPI: UInt32 = 1 << 11
    static let kvmFeaturePVSchedYield: UInt32 = 1 << 13
    static let kvmFeatureClocksourceStable: UInt32 = 1 << 24

    /// The KVM paravirtual features offered (when KVM supports them).
    static let offered: UInt32 = {
        let time: UInt32 = kvmFeatureClocksource | kvmFeatureClocksource2 | kvmFeatureClocksourceStable | kvmFeatureStealTime
        let other: UInt32 = kvmFeatureNopIODelay | kvmFeaturePVEOI | kvmFeaturePVTLBFlush
        return time | other | usingHypercalls
    }()
    /// Features whose use goes through `vmcall`.
    static let usingHypercalls: UInt32 = kvmFeaturePVUnhalt | kvmFeaturePVSendIPI | kvmFeaturePVSchedYield
    static let offeredWithoutHypercalls: UInt32 = offered & ~usingHypercalls

    init(supported: [CPUIDEntry], emulatedKernel: Bool) {
        self.emulatedKernel = emulatedKernel
        var out: [CPUIDEntry] = []
        for var e in supported {
            switch e.function {
            case 1:
                e.ecx |= 1 << 31                                   // running on a hypervisor
                if emulatedKernel {
                    // MONITOR(3) VMX(5) CX16(13: the emulator lacks cmpxchg16b) PCID(17)
                    // XSAVE(26) OSXSAVE(27) AVX(28) F16C(29) RDRAND(30)
                    e.ecx &= ~UInt32(0x7c02_2028)
                }
            case 7 where e.index == 0:
                if emulatedKernel {
                    // FSGSBASE(0) AVX2(5) INVPCID(10) RTM(11) AVX512*(16,17,21,26-31) RDSEED(18) SMAP(20)
                    e.ebx &= ~UInt32(0xfc37_0c21)
                    e.ecx &= ~UInt32(0x1_001c)                      // UMIP PKU OSPKE LA57
                    e.edx = 0
                }
            case 0xd where emulatedKernel:
                continue                                           // no XSAVE state at all
            case 0x4000_0001:
                e.eax &= emulatedKernel ? Self.offeredWithoutHypercalls : Self.offered
            default:
                break
            }
            out.append(e)
        }
        // KVM may list the topology leaves with their first level only (it
        // does here); a guest asking for the core level would then read
        // zeros and find one CPU per package. `entries` fills the levels in.
        for leaf: UInt32 in [0xb, 0x1f] where out.contains(where: { $0.function == leaf }) {
            for level: UInt32 in 0...2 where !out.contains(where: { $0.function == leaf && $0.index == level }) {
                out.append(CPUIDEntry(function: leaf, index: level, flags: 1, eax: 0, ebx: 0, ecx: 0, edx: 0))
            }
        }
        leaves = out
    }

    /// The leaves for vCPU `id` of `count`: APIC IDs equal vCPU indices.
    func entries(forVCPU id: Int, count: Int) -> [CPUIDEntry] {
        let apicID = UInt32(truncatingIfNeeded: id)
        let cores = UInt32(max(1, min(count, 255)))
        // Bits of APIC ID needed for the core level.
        var coreBits: UInt32 = 0
        while (1 << coreBits) < cores { coreBits += 1 }
        return leaves.map { e in
            var e = e
            switch e.function {
            case 1:
                e.ebx = (e.ebx & 0x0000_ffff) | (apicID << 24) | (cores << 16)
                e.edx |= 1 << 28                                   // HTT: the count field is valid
            case 4:
                // Cores per package - 1 in 31:26; threads sharing this cache - 1 in 25:14.
                e.eax = (e.eax & 0x3ff) | ((cores - 1) << 26)
                let level = (e.eax >> 5) & 7
                let sharing: UInt32 = level >= 3 ? cores - 1 : 0
                e.eax |= sharing << 14
            case 0xb, 0x1f:
                // Level 0: SMT, one thread; level 1: cores; then invalid.
                switch e.index {
                case 0: e.eax = 0; e.ebx = 1; e.ecx = (1 << 8) | 0
                case 1: e.eax = coreBits; e.ebx = cores; e.ecx = (2 << 8) | 1
                default: e.eax = 0; e.ebx = 0; e.ecx = e.index
                }
                e.edx = apicID
            case 0x8000_0001:
                e.ecx &= ~UInt32(1 << 1)                           // CmpLegacy: no legacy HT
            case 0x8000_0008:
                e.ecx = (e.ecx & ~UInt32(0xf0ff)) | (cores - 1)    // AMD: NC = cores - 1
            default:
                break
            }
            return e
        }
    }
}
