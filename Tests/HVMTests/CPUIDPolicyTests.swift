import KVM
import Testing
@testable import HVM

/// KVM-like supported leaves: enough to check what the policy does to them.
private let supported: [CPUIDEntry] = [
    CPUIDEntry(function: 0, eax: 0xd, ebx: 0x6874_7541, ecx: 0x444d_4163, edx: 0x6974_6e65),
    CPUIDEntry(function: 1, eax: 0xa0_0f11, ebx: 0x0000_0800, ecx: 0x7ef8_3203, edx: 0x178b_fbff),
    CPUIDEntry(function: 4, index: 0, flags: 1, eax: 0x121, ebx: 0, ecx: 0, edx: 0),
    CPUIDEntry(function: 4, index: 3, flags: 1, eax: 0x163, ebx: 0, ecx: 0, edx: 0),
    CPUIDEntry(function: 7, index: 0, flags: 1, eax: 0, ebx: 0x219c_07ab, ecx: 0x0040_069c, edx: 0x10),
    CPUIDEntry(function: 0xb, index: 0, flags: 1, eax: 0, ebx: 0, ecx: 0, edx: 0),
    CPUIDEntry(function: 0xb, index: 1, flags: 1, eax: 0, ebx: 0, ecx: 0, edx: 0),
    CPUIDEntry(function: 0xd, index: 0, flags: 1, eax: 7, ebx: 0x340, ecx: 0x340, edx: 0),
    CPUIDEntry(function: 0x4000_0000, eax: 0x4000_0001, ebx: 0x4b4d_564b, ecx: 0x564b_4d56, edx: 0x4d),
    CPUIDEntry(function: 0x4000_0001, eax: 0x0100_7efb, ebx: 0, ecx: 0, edx: 0),
]

@Suite struct CPUIDPolicyTests {
    @Test func apicIDsAndTopologyFollowTheVCPUIndex() {
        let p = HVMCPUIDPolicy(supported: supported, emulatedKernel: false)
        for id in [0, 1, 5, 31] {
            let leaves = p.entries(forVCPU: id, count: 32)
            let l1 = leaves.first { $0.function == 1 }!
            #expect(l1.ebx >> 24 == UInt32(id))
            #expect((l1.ebx >> 16) & 0xff == 32)
            #expect(l1.edx & (1 << 28) != 0)                       // HTT
            #expect(l1.ecx & (1 << 31) != 0)                       // hypervisor
            let smt = leaves.first { $0.function == 0xb && $0.index == 0 }!
            let core = leaves.first { $0.function == 0xb && $0.index == 1 }!
            #expect(smt.edx == UInt32(id) && core.edx == UInt32(id))
            #expect(smt.ebx == 1 && core.ebx == 32 && core.eax == 5)   // 5 bits of APIC ID for 32 cores
            let l4 = leaves.first { $0.function == 4 && $0.index == 0 }!
            #expect(l4.eax >> 26 == 31)
        }
    }

    @Test func hardwareKVMKeepsFeaturesAndPVLeaves() {
        let p = HVMCPUIDPolicy(supported: supported, emulatedKernel: false)
        let l1 = p.leaves.first { $0.function == 1 }!
        #expect(l1.ecx & (1 << 26) != 0)                           // XSAVE stays
        let kvm = p.leaves.first { $0.function == 0x4000_0001 }!
        #expect(kvm.eax & HVMCPUIDPolicy.kvmFeatureClocksource2 != 0)
        #expect(kvm.eax & HVMCPUIDPolicy.kvmFeatureStealTime != 0)
        #expect(kvm.eax & HVMCPUIDPolicy.kvmFeaturePVEOI != 0)
        #expect(kvm.eax & HVMCPUIDPolicy.kvmFeaturePVSendIPI != 0)
        #expect(p.leaves.contains { $0.function == 0xd })
    }

    @Test func emulatedKernelIsOfferedOnlyWhatKVMsEmulatorSurvives() {
        let p = HVMCPUIDPolicy(supported: supported, emulatedKernel: true)
        let l1 = p.leaves.first { $0.function == 1 }!
        for bit in [13, 26, 27, 28] { #expect(l1.ecx & (1 << UInt32(bit)) == 0, "leaf 1 ecx bit \(bit)") }
        let l7 = p.leaves.first { $0.function == 7 }!
        #expect(l7.ebx & (1 << 20) == 0)                           // SMAP: clac/stac
        #expect(!p.leaves.contains { $0.function == 0xd })         // no XSAVE state
        let kvm = p.leaves.first { $0.function == 0x4000_0001 }!
        #expect(kvm.eax & HVMCPUIDPolicy.usingHypercalls == 0)     // nothing that needs vmcall
        #expect(kvm.eax & HVMCPUIDPolicy.kvmFeatureClocksource2 != 0)
        #expect(kvm.eax & HVMCPUIDPolicy.kvmFeatureStealTime != 0)
    }

    /// KVM here lists leaf 0xb with its SMT level only: the core level must
    /// still be there, or the guest sees one CPU per package.
    @Test func topologyLevelsAreFilledInWhenKVMListsOnlyTheFirst() {
        let sparse = supported.filter { !($0.function == 0xb && $0.index > 0) }
        let p = HVMCPUIDPolicy(supported: sparse, emulatedKernel: false)
        let leaves = p.entries(forVCPU: 3, count: 4)
        let core = leaves.first { $0.function == 0xb && $0.index == 1 }
        #expect(core.map { $0.eax == 2 && $0.ebx == 4 && $0.ecx == 0x201 && $0.edx == 3 } == true)
        let end = leaves.first { $0.function == 0xb && $0.index == 2 }
        #expect(end.map { $0.ebx == 0 && ($0.ecx >> 8) & 0xff == 0 } == true)
        #expect(leaves.filter { $0.function == 0xb }.allSatisfy { $0.flags & 1 != 0 })
        #expect(!leaves.contains { $0.function == 0x1f })
    }
}
