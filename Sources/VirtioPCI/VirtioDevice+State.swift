import Machine

/// Devices whose own state is only what the guest was shown: their
/// configuration (a disk's capacity and limits, a NIC's MAC). It is saved
/// to be compared, not restored: the device is built from the domain's
/// configuration, and a guest that found another disk size or MAC under
/// it would go wrong quietly, so a mismatch is refused. Everything else
/// (requests, frames) lives in the queues: the service thread completes
/// each chain it takes within its pass, and a save happens between passes.
extension VirtioDevice {
    func saveConfiguration(into writer: inout StateWriter) {
        writer.block(configSpace)
    }

    func checkConfiguration(from reader: inout StateReader, naming what: String) throws(DeviceStateError) {
        let saved = try reader.block(limit: Int(VirtioPCILayout.deviceLength))
        guard saved == configSpace else {
            throw DeviceStateError("\(reader.what): the guest saw another \(what) (its configuration differs)")
        }
    }
}

/// A frame taken from the TAP and not yet delivered is dropped, as a
/// network may; the rest is the queues'.
extension VirtioNet {
    public func saveDeviceState(into writer: inout StateWriter) { saveConfiguration(into: &writer) }
    public func restoreDeviceState(from reader: inout StateReader) throws(DeviceStateError) {
        try checkConfiguration(from: &reader, naming: "MAC address")
    }
}

/// Requests are done within the pass that takes them: nothing in flight.
extension VirtioBlock {
    public func saveDeviceState(into writer: inout StateWriter) { saveConfiguration(into: &writer) }
    public func restoreDeviceState(from reader: inout StateReader) throws(DeviceStateError) {
        try checkConfiguration(from: &reader, naming: "disk (size or read-only)")
    }
}
