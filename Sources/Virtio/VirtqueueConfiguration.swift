/// What the driver programs into a queue through the transport (virtio-pci
/// common configuration or virtio-mmio registers) before enabling it.
public struct VirtqueueConfiguration: Sendable, Hashable {
    /// Number of descriptors; a power of two no larger than the device's maximum.
    public var size: UInt16
    /// Guest-physical address of the descriptor table (16 bytes per entry).
    public var descriptorTable: UInt64
    /// Guest-physical address of the driver area, the available ring.
    public var driverArea: UInt64
    /// Guest-physical address of the device area, the used ring.
    public var deviceArea: UInt64
    /// The negotiated features that affect the ring.
    public var features: VirtqueueFeatures

    public init(
        size: UInt16,
        descriptorTable: UInt64 = 0,
        driverArea: UInt64 = 0,
        deviceArea: UInt64 = 0,
        features: VirtqueueFeatures = []
    ) {
        self.size = size
        self.descriptorTable = descriptorTable
        self.driverArea = driverArea
        self.deviceArea = deviceArea
        self.features = features
    }
}

/// One of the three guest memory areas of a split virtqueue.
public enum VirtqueueArea: Sendable, Hashable, CustomStringConvertible {
    case descriptorTable
    case driverArea
    case deviceArea

    /// Required alignment of the area's guest-physical address (spec 2.7).
    public var alignment: UInt64 {
        switch self {
        case .descriptorTable: 16
        case .driverArea: 2
        case .deviceArea: 4
        }
    }

    /// Bytes the area occupies for a queue of `size` descriptors, including
    /// the event-index field at the end of each ring.
    public func length(forSize size: UInt16) -> UInt64 {
        let n = UInt64(size)
        return switch self {
        case .descriptorTable: SplitRing.descriptorSize * n
        case .driverArea: 4 + 2 * n + 2   // flags, idx, ring[n], used_event
        case .deviceArea: 4 + 8 * n + 2   // flags, idx, ring[n] of (id, len), avail_event
        }
    }

    public var description: String {
        switch self {
        case .descriptorTable: "descriptor table"
        case .driverArea: "driver area (available ring)"
        case .deviceArea: "device area (used ring)"
        }
    }
}
