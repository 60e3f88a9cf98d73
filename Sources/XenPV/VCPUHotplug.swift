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
        offlineInHypercall = true
        setTimer(deadline: 0)
        resetTickLag()
        enterRunstate(.offline)
        while !isStopping && !online.load(ordering: .acquiring) {
            _ = VCPU.waitForKick(timeoutNanoseconds: 1_000_000_000)
        }
        offlineInHypercall = false
        enterRunstate(.running)
    }

    /// VCPUOP_down from another vCPU: this one stops at its next return to
    /// the guest (parkWhileDown). Returns once it has, so the caller may
    /// then change its vcpu_info and runstate areas (as Xen pauses a vCPU
    /// for those); a vCPU already down is left as it is.
    func takeDown() -> Int64 {
        guard online.exchange(false, ordering: .acquiringAndReleasing) else { return 0 }
        kick()
        _ = PauseGate.waitUntil(seconds: 5) { parkedDown.load(ordering: .acquiring) || isStopping }
        return 0
    }

    /// Sleeps, offline, until VCPUOP_up (or the end of the run).
    func parkWhileDown() {
        enterRunstate(.offline)
        parkedDown.store(true, ordering: .releasing)
        while !isStopping && !online.load(ordering: .acquiring) {
            _ = VCPU.waitForKick(timeoutNanoseconds: 1_000_000_000)
        }
        parkedDown.store(false, ordering: .releasing)
        enterRunstate(.running)
        publishTime()
    }
}
