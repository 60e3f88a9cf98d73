/// A device that decodes guest-physical memory accesses outside RAM (PCI
/// BARs). The VMM offers each MMIO exit to its devices in turn; a device's
/// range may move (a guest reprograms a BAR), so each one answers for itself.
///
/// Guest-driven like `PortDevice`: any address, any size 1...8, any value.
/// Called from vCPU threads.
public protocol MMIODevice: AnyObject, Sendable {
    /// The value of a read of `size` bytes at `address`, or nil when the
    /// device does not decode that address.
    func mmioRead(address: UInt64, size: Int) -> UInt64?
    /// Handles a write; false when the device does not decode that address.
    func mmioWrite(address: UInt64, size: Int, value: UInt64) -> Bool
}

/// The MMIO devices of a machine; fixed once the machine is built.
public final class MMIOBus: @unchecked Sendable {
    private var devices: [any MMIODevice] = []

    public init() {}

    /// Adds a device; only while the machine is being built.
    public func register(_ device: any MMIODevice) {
        devices.append(device)
    }

    /// Unclaimed addresses read as all ones, as an empty bus does.
    public func read(address: UInt64, size: Int) -> UInt64 {
        for d in devices {
            if let v = d.mmioRead(address: address, size: size) { return v }
        }
        return size >= 8 ? UInt64.max : (1 << (8 * UInt64(size))) - 1
    }

    /// Writes to unclaimed addresses are dropped.
    public func write(address: UInt64, size: Int, value: UInt64) {
        for d in devices where d.mmioWrite(address: address, size: size, value: value) { return }
    }
}
