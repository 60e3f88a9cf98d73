import Glibc
import Synchronization

/// A domain's pause switch (`xl pause`): while it is closed, each vCPU
/// thread stops at a point where the VMM holds all of that vCPU's state and
/// sleeps there, outside KVM_RUN, until it opens again. The requester kicks
/// the threads; this only carries the flag and the sleeping.
public final class PauseGate: Sendable {
    private let closed = Atomic<Bool>(false)

    public init() {}

    /// Whether vCPUs are to stop (or have stopped) at the gate.
    public var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// Closes (`true`) or opens the gate; returns whether that changed it.
    public func set(closed value: Bool) -> Bool {
        closed.exchange(value, ordering: .acquiringAndReleasing) != value
    }

    /// On a vCPU thread: sleeps while the gate is closed and `stopping` is
    /// false. Opening the gate kicks the threads; the timeout only bounds how
    /// long a lost kick could go unnoticed (a sleeping thread costs no CPU).
    public func waitWhileClosed(stopping: () -> Bool) {
        while isClosed && !stopping() {
            _ = VCPU.waitForKick(timeoutNanoseconds: 2_000_000_000)
        }
    }

    /// Polls `condition` every millisecond until it holds or `seconds` pass.
    public static func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        while true {
            if condition() { return true }
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            if Double(now.tv_sec - start.tv_sec) + Double(now.tv_nsec - start.tv_nsec) / 1e9 > seconds { return false }
            usleep(1000)
        }
    }
}
