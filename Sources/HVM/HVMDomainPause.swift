import KVM

/// `xl pause` / `xl unpause` for an HVM domain: every vCPU thread leaves
/// KVM_RUN and sleeps at the pause gate until it opens. kvm-clock is left
/// running (KVM derives it from the host's clock), so the guest's time is
/// right as soon as it runs again; each vCPU reports the stop to the guest
/// with KVM_KVMCLOCK_CTRL before re-entering. KVM's steal time counts only
/// the host's run-queue wait of a vCPU thread; each vCPU adds the time it
/// was paused to the guest's steal-time record itself (HVMStealTime.swift),
/// so the guest sees it as steal, as a PV guest sees it in its runstate.
extension HVMDomain {
    public var isPaused: Bool { pauseGate.isClosed }

    /// Pauses the domain; returns once every present vCPU sleeps at the gate.
    public func pause() throws(HVMRequestError) {
        guard exitReason == nil else { throw HVMRequestError("pause: the guest is ending") }
        _ = pauseGate.set(closed: true)
        for cpu in cpus { cpu.kickForPause() }
        let settled = PauseGate.waitUntil(seconds: 10) { [self] in
            exitReason != nil || cpus.allSatisfy(\.isStoppedForPause)
        }
        guard settled else {
            unpause()
            let stuck = cpus.filter { !$0.isStoppedForPause }.map { String($0.id) }.joined(separator: ",")
            throw HVMRequestError("pause: vCPU \(stuck) did not stop within 10 s; the guest runs on")
        }
    }

    /// Lets the vCPUs run again.
    public func unpause() {
        _ = pauseGate.set(closed: false)
        for cpu in cpus { cpu.kickForPause() }
    }
}
