import HVM
import XenPV

/// What the control socket can ask of the running guest, PV or HVM.
protocol ControlTarget: AnyObject, Sendable {
    /// `info`'s reply after `ok `: key=value words.
    func info() -> String
    func setVCPUs(_ count: Int) throws(ControlError)
    func setMemory(bytes: UInt64) throws(ControlError)
    /// VM exits of all vCPUs so far.
    var exitCount: UInt64 { get }
    /// Stops every vCPU (returns once they are stopped) / lets them run.
    func pauseGuest() throws(ControlError)
    func unpauseGuest()
    var isPaused: Bool { get }
    /// Saves the guest to `path` and ends the run; the reply's key=value words.
    func save(to path: String) throws(ControlError) -> String
}

extension ControlTarget {
    /// `info`'s state word.
    var stateWord: String { isPaused ? "paused" : "running" }
}

extension PVDomain: ControlTarget {
    func info() -> String {
        "name=\(config.name) mode=pv vcpus-online=\(onlineVCPUCount) vcpus-max=\(config.maxVCPUs)"
            + " memory-target-kib=\(memoryTargetKiB) memory-max-kib=\(config.memoryBytes >> 10)"
            + " memory-current-kib=\(currentMemoryKiB) state=\(stateWord)"
    }

    func pauseGuest() throws(ControlError) {
        do { try pause() } catch { throw ControlError(error.description) }
    }

    func unpauseGuest() { unpause() }

    func save(to path: String) throws(ControlError) -> String {
        let r: SaveResult
        do { r = try save(to: path, suspendTimeoutSeconds: 60) } catch { throw ControlError(error.description) }
        Runner.fail("guest '\(config.name)' saved to \(path)")
        return "saved=\(path) bytes=\(r.bytes) pages=\(r.pages) suspend-ms=\(r.suspendNanoseconds / 1_000_000)"
            + " write-ms=\(r.writeNanoseconds / 1_000_000)"
    }

    func setVCPUs(_ count: Int) throws(ControlError) {
        do { try setAvailableVCPUs(count) } catch { throw ControlError(error.description) }
    }

    func setMemory(bytes: UInt64) throws(ControlError) {
        do { try setMemoryTarget(bytes: bytes) } catch { throw ControlError(error.description) }
    }
}

extension HVMDomain: ControlTarget {
    /// memory-current-kib counts what the device freed; balloon-actual-kib
    /// is the balloon's size as the guest's driver reports it.
    func info() -> String {
        "name=\(name) mode=hvm vcpus-online=\(presentVCPUCount) vcpus-max=\(maxVCPUCount)"
            + " memory-target-kib=\(memoryTargetBytes >> 10) memory-max-kib=\(memoryBytes >> 10)"
            + " memory-current-kib=\(currentMemoryBytes >> 10) balloon-actual-kib=\(balloonActualBytes >> 10)"
            + " state=\(stateWord)"
    }

    func pauseGuest() throws(ControlError) {
        do { try pause() } catch { throw ControlError(error.description) }
    }

    func unpauseGuest() { unpause() }

    func save(to path: String) throws(ControlError) -> String {
        let r: HVMSaveResult
        do { r = try save(to: path) } catch { throw ControlError(error.description) }
        Runner.fail("guest '\(name)' saved to \(path)")
        return "saved=\(path) bytes=\(r.bytes) pages=\(r.pages) paused-ms=\(r.pausedNanoseconds / 1_000_000)"
    }

    /// ACPI CPU hotplug: the reply comes once the guest has been told (the
    /// GED interrupt raised), not once it has acted, as for PV.
    func setVCPUs(_ count: Int) throws(ControlError) {
        do { try setPresentVCPUs(count) } catch { throw ControlError(error.description) }
    }

    func setMemory(bytes: UInt64) throws(ControlError) {
        do { try setMemoryTarget(bytes: bytes) } catch { throw ControlError(error.description) }
    }
}
