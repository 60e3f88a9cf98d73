import KVM

/// vCPU hot remove and add. Linux offlines a CPU by running VCPUOP_down on
/// it (smp_pv.c xen_pv_play_dead) and brings it back with VCPUOP_up from
/// another CPU; the downed vCPU then carries on right after its hypercall.
extension PVCPU {
    /// VCPUOP_down on itself: offline (VCPUOP_is_up says 0, so the CPU
    /// taking it down may finish) until VCPUOP_up. The thread sleeps
    /// meanwhile, using no host CPU; events and timers only wake it to look.
    func parkOffline() {
        online.store(false, ordering: .releasing)
        setTimer(deadline: 0)
        enterRunstate(.offline)
        while !isStopping && !online.load(ordering: .acquiring) {
            _ = VCPU.waitForKick(timeoutNanoseconds: 1_000_000_000)
        }
        enterRunstate(.running)
    }
}
