import CKVM
import KVM

/// Time an HVM vCPU was kept from running by the host's toolstack (paused,
/// or in a save file) shows in the guest as steal, as the issue's "two
/// kinds of time" asks and as a PV guest sees it in its runstate. KVM's
/// own steal time is only the vCPU thread's wait for a host CPU; but KVM
/// updates the guest's `kvm_steal_time` record by adding to the `steal`
/// the guest's memory holds, so time the VMM adds there while the vCPU is
/// out of KVM_RUN (KVM then writes nothing to it) stays added.
extension HVMCPU {
    /// MSR_KVM_STEAL_TIME: the record's guest-physical address | enabled (bit 0).
    static let stealTimeMSR: UInt32 = 0x4b56_4d03

    /// Adds `nanoseconds` to the guest's steal time, if it has enabled the
    /// record. Call on this vCPU's thread, or before it first runs.
    func addSteal(nanoseconds: UInt64) {
        guard nanoseconds > 0, let msr = try? vcpu.readMSRs([Self.stealTimeMSR]).first, msr & 1 != 0 else { return }
        // struct kvm_steal_time: steal u64 at 0, version u32 at 8 (odd while written), 64 bytes.
        guard let record = domain.hostPointer(msr & ~UInt64(0x3f), length: 64) else { return }
        let version = record.advanced(by: 8).assumingMemoryBound(to: UInt32.self)
        let steal = record.assumingMemoryBound(to: UInt64.self)
        ckvm_store_release32(version, ckvm_load_acquire32(version) &+ 1)
        steal.pointee = steal.pointee &+ nanoseconds
        ckvm_store_release32(version, ckvm_load_acquire32(version) &+ 1)
    }
}
