import KVM

/// `xl pause` / `xl unpause` for a PV domain. Every vCPU stops at the pause
/// gate at the top of its return to the guest (where its whole context is in
/// the VMM's hands, not in KVM) and sleeps there, outside KVM_RUN, using no
/// host CPU; a vCPU asleep in SCHEDOP_block or SCHEDOP_poll comes out of it
/// to stop at the gate too, so a paused domain has every vCPU in one place.
///
/// Time: the guest's system time is the host's monotonic clock, so it goes
/// on while the domain is paused and the guest's wall clock is right the
/// moment it runs again (as on Xen, where system time never stops for a
/// paused domain). The paused time shows in each vCPU's runstate area as
/// RUNSTATE_offline, which Linux (xen_steal_clock: runnable + offline)
/// counts as steal. Xen keeps a vCPU that was blocked when paused in
/// RUNSTATE_blocked; here it is offline too, since it is woken to stop at
/// the gate (so an idle guest also sees the pause as steal).
extension PVDomain {
    public var isPaused: Bool { pauseGate.isClosed }

    /// Pauses the domain; returns once every online vCPU sleeps at the gate.
    /// Pausing a paused domain changes nothing.
    public func pause() throws(DomainRequestError) {
        guard exitReason == nil else { throw DomainRequestError("pause: the guest is ending") }
        _ = pauseGate.set(closed: true)
        for cpu in vcpus { cpu.kick() }
        let settled = PauseGate.waitUntil(seconds: 10) { [self] in
            exitReason != nil || vcpus.allSatisfy(\.isStoppedForPause)
        }
        guard settled else {
            _ = pauseGate.set(closed: false)
            for cpu in vcpus { cpu.kick() }
            let stuck = vcpus.filter { !$0.isStoppedForPause }.map { String($0.id) }.joined(separator: ",")
            throw DomainRequestError("pause: vCPU \(stuck) did not stop within 10 s; the guest runs on")
        }
    }

    /// Lets the vCPUs run again. Unpausing a running domain changes nothing.
    public func unpause() {
        _ = pauseGate.set(closed: false)
        for cpu in vcpus { cpu.kick() }
    }
}

extension PVCPU {
    /// Stopped at the gate, or unable to run guest code before it gets
    /// there (offline, or its thread not yet running).
    var isStoppedForPause: Bool {
        parkedForPause.load(ordering: .acquiring) || !online.load(ordering: .acquiring)
            || !pthreadReady.load(ordering: .acquiring) || isStopping
    }

    /// Sleeps at the pause gate; the time asleep is RUNSTATE_offline.
    func parkWhilePaused() {
        enterRunstate(.offline)
        parkedForPause.store(true, ordering: .releasing)
        domain.pauseGate.waitWhileClosed { isStopping }
        parkedForPause.store(false, ordering: .releasing)
        enterRunstate(.running)
        publishTime()
        // The guest's timer may have come due while the thread slept (its
        // signal was taken by the sleep): deliver it now, or set it again.
        checkTimer()
        if timerDeadline != 0 { armTimer(at: timerFireAt) }
    }
}
