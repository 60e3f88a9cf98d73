/// A device on the x86 I/O port space. Every legacy device has this shape;
/// the VMM routes a port exit to the device whose range holds the port.
///
/// Guest-driven: `read` and `write` see only what the guest put in the
/// registers and must accept any port inside `ports`, any access size
/// (1, 2 or 4) and any value without trapping. An access a device does not
/// implement reads as all ones and is otherwise ignored, as on real hardware.
public protocol PortDevice: AnyObject, Sendable {
    /// The ports the device decodes.
    var ports: ClosedRange<UInt16> { get }
    /// A guest `in` of `size` bytes at `port`.
    func read(port: UInt16, size: Int) -> UInt32
    /// A guest `out` of `size` bytes at `port`.
    func write(port: UInt16, size: Int, value: UInt32)
}

/// The I/O port space: devices by port range, no overlaps.
public final class PortBus: @unchecked Sendable {
    private var devices: [PortDevice] = []

    public init() {}

    /// Adds a device; refuses one whose range overlaps a registered device.
    public func register(_ device: PortDevice) -> Bool {
        guard !devices.contains(where: { $0.ports.overlaps(device.ports) }) else { return false }
        devices.append(device)
        devices.sort { $0.ports.lowerBound < $1.ports.lowerBound }
        return true
    }

    public func device(at port: UInt16) -> PortDevice? {
        for d in devices where d.ports.contains(port) { return d }
        return nil
    }

    /// Unclaimed ports read as all ones.
    public func read(port: UInt16, size: Int) -> UInt32 {
        guard let d = device(at: port) else { return size >= 4 ? 0xffff_ffff : (1 << (8 * UInt32(size))) - 1 }
        return d.read(port: port, size: size)
    }

    /// Writes to unclaimed ports are dropped.
    public func write(port: UInt16, size: Int, value: UInt32) {
        device(at: port)?.write(port: port, size: size, value: value)
    }
}
