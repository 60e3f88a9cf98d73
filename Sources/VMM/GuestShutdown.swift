import XenPV

/// A guest that can be asked to shut down or reboot itself, the clean way
/// its own kernel and init do it (as `xl shutdown` / `xl reboot` ask).
protocol GuestShutdownTarget: AnyObject, Sendable {
    func requestShutdown(reboot: Bool) throws(ControlError)
}

/// PV: Xen's way, `control/shutdown` = "poweroff" or "reboot" in the guest's
/// xenstore. Linux's xenbus watches it (drivers/xen/manage.c), clears it and
/// runs an orderly poweroff or reboot; the guest then ends with
/// SCHEDOP_shutdown, which the run takes like any other poweroff or reboot.
/// HVM guests have no xenstore here (no ACPI power button yet), so they are
/// not this kind of target: the toolstack stops them instead.
extension PVDomain: GuestShutdownTarget {
    func requestShutdown(reboot: Bool) throws(ControlError) {
        do { try askGuestToShutDown(reboot: reboot) } catch { throw ControlError(error.description) }
    }
}
