import HVM
import XenPV

/// How a run ended, whatever the mode.
enum RunEnd: Equatable {
    case poweroff, reboot, stopped
    case crash(String)
    case userSpaceUnsupported
}

/// What the runner's console and signal threads need of a running guest,
/// PV or HVM.
protocol ConsoleGuest: AnyObject, Sendable {
    var hasEnded: Bool { get }
    /// Ends the run as `.stopped` (a signal, the detach key).
    func stopRun()
    /// Host input waiting for the guest to take it: the reader pauses while
    /// there is, so piped input is paced to the guest.
    var consoleHasPendingInput: Bool { get }
    func enqueueConsoleInput(_ bytes: UnsafeRawBufferPointer)
    /// Offers queued input to the guest again (it may have made room).
    func pushConsoleInput()
    /// Runs the guest to its end.
    func runToEnd() -> RunEnd
}

extension PVDomain: ConsoleGuest {
    var hasEnded: Bool { exitReason != nil }
    func stopRun() { end(.stopped) }
    var consoleHasPendingInput: Bool { console.hasPendingInput }
    func enqueueConsoleInput(_ bytes: UnsafeRawBufferPointer) { console.enqueueInput(bytes) }
    func pushConsoleInput() { console.kick(domain: self) }
    func runToEnd() -> RunEnd {
        switch run() {
        case .poweroff: .poweroff
        case .reboot: .reboot
        case .stopped: .stopped
        case .crash(let m): .crash(m)
        }
    }
}

extension HVMDomain: ConsoleGuest {
    var hasEnded: Bool { exitReason != nil }
    func stopRun() { end(.stopped) }
    func runToEnd() -> RunEnd {
        switch run() {
        case .poweroff: .poweroff
        case .reboot: .reboot
        case .stopped: .stopped
        case .crash(let m): .crash(m)
        case .userSpaceUnsupported: .userSpaceUnsupported
        }
    }
}
