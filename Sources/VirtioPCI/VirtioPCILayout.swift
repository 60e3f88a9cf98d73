/// Where things are in a virtio-pci function (virtio 1.2 §4.1): its PCI
/// configuration space and its one 64-bit memory BAR.
///
/// The BAR holds every structure, each on its own page so that a guest
/// mapping them separately never needs sub-page protection:
///
///     0x0000 common configuration      0x3000 notifications (4 bytes a queue)
///     0x1000 ISR status                0x4000 MSI-X table
///     0x2000 device configuration      0x5000 MSI-X pending bits
enum VirtioPCILayout {
    static let barSize: UInt64 = 0x8000
    static let commonOffset: UInt64 = 0x0000, commonLength: UInt64 = 0x38
    static let isrOffset: UInt64 = 0x1000, isrLength: UInt64 = 4
    static let deviceOffset: UInt64 = 0x2000, deviceLength: UInt64 = 0x1000
    static let notifyOffset: UInt64 = 0x3000
    /// Queue n's doorbell is at notifyOffset + n * multiplier.
    static let notifyMultiplier: UInt32 = 4
    static let msixTableOffset: UInt64 = 0x4000
    static let msixPBAOffset: UInt64 = 0x5000
    /// MSI-X vectors a function offers at most (one per queue plus config).
    static let maxVectors = 64

    // Configuration space: the capability list.
    static let capabilitiesStart: UInt8 = 0x40
    static let commonCap: UInt8 = 0x40      // 16 bytes
    static let notifyCap: UInt8 = 0x50      // 20 bytes (with notify_off_multiplier)
    static let isrCap: UInt8 = 0x64         // 16 bytes
    static let deviceCap: UInt8 = 0x74      // 16 bytes
    static let msixCap: UInt8 = 0x84        // 12 bytes, last in the list
}

/// The PCI IDs and class a virtio device type gets (§4.1.2).
public enum VirtioDeviceType: UInt16, Sendable {
    case network = 1
    case block = 2
    case entropy = 4
    case balloon = 5
    case socket = 19

    /// Modern (non-transitional) device ID: 0x1040 + the virtio type.
    var pciDeviceID: UInt16 { 0x1040 + rawValue }

    /// Base class, subclass, programming interface, as QEMU reports them.
    var pciClass: UInt32 {
        switch self {
        case .network: 0x02_00_00      // Ethernet controller
        case .block: 0x01_00_00        // SCSI storage controller (virtio-blk's traditional class)
        case .entropy, .balloon: 0xff_00_00      // unclassified
        case .socket: 0x07_80_00       // other communication controller
        }
    }
}

/// Device status bits (§2.1).
enum DeviceStatus {
    static let acknowledge: UInt8 = 1
    static let driver: UInt8 = 2
    static let driverOK: UInt8 = 4
    static let featuresOK: UInt8 = 8
    static let needsReset: UInt8 = 0x40
    static let failed: UInt8 = 0x80
}

/// Transport-level feature bits (§6).
public enum VirtioFeature {
    public static let indirectDescriptors: UInt64 = 1 << 28
    public static let eventIndex: UInt64 = 1 << 29
    public static let version1: UInt64 = 1 << 32
    /// What this transport offers on top of a device's own bits.
    static let transport: UInt64 = indirectDescriptors | eventIndex | version1
}

/// MSI-X "no vector" (§4.1.5.1.2): the driver wants no interrupt for this source.
let noVector: UInt16 = 0xffff
