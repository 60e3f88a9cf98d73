import HVM
import XenPV

/// A guest that can be asked to shut down or reboot itself, the clean way
/// its own kernel and init do it (as `xl shutdown` / `xl reboot` ask).
protocol GuestShutdownTarget: AnyObject, Sendable {
    /// Asks; returns how ("xenstore", "acpi-power-button").
    func requestShutdown(reboot: Bool) throws(ControlError) -> String
}

/// PV: Xen's way, `control/shutdown` = "poweroff" or "reboot" in the guest's
/// xenstore. Linux's xenbus watches it (drivers/xen/manage.c), clears it and
/// runs an orderly poweroff or reboot; the guest then ends with
/// SCHEDOP_shutdown, which the run takes like any other poweroff or reboot.
extension PVDomain: GuestShutdownTarget {
    func requestShutdown(reboot: Bool) throws(ControlError) -> String {
        do { try askGuestToShutDown(reboot: reboot) } catch { throw ControlError(error.description) }
        return "xenstore"
    }
}

/// HVM: the ACPI power button for a poweroff, as Xen does for an HVM guest
/// without PV drivers. There is no ACPI way to ask for a reboot; Xen needs
/// the guest's PV drivers for it, and so is refused here.
extension HVMDomain: GuestShutdownTarget {
    func requestShutdown(reboot: Bool) throws(ControlError) -> String {
        guard !reboot else {
            throw ControlError("reboot: an HVM guest cannot be asked to reboot (ACPI has a power button, not a reset button); reboot it from inside, or shut it down")
        }
        do { try pressPowerButton() } catch { throw ControlError(error.description) }
        return "acpi-power-button"
    }
}
