/// The negotiated device features that change how a virtqueue behaves.
///
/// Raw values are the virtio feature bits themselves, so a transport can mask
/// its negotiated feature word: `VirtqueueFeatures(negotiated: word)`.
public struct VirtqueueFeatures: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    /// The ring-relevant bits of a negotiated feature word; others are dropped.
    public init(negotiated features: UInt64) {
        self.init(rawValue: features & Self.all.rawValue)
    }

    /// VIRTIO_F_INDIRECT_DESC (bit 28): descriptors may point at a table of descriptors.
    public static let indirectDescriptors = VirtqueueFeatures(rawValue: 1 << 28)
    /// VIRTIO_F_EVENT_IDX (bit 29): used_event / avail_event replace the ring flags
    /// for notification suppression.
    public static let eventIndex = VirtqueueFeatures(rawValue: 1 << 29)

    public static let all: VirtqueueFeatures = [.indirectDescriptors, .eventIndex]
}
