/// One split virtqueue (virtio 1.x, spec 2.7) seen from the device side: the
/// core every virtio device model shares.
///
/// The transport writes the driver's settings into `configuration` and calls
/// `enable()`, which refuses rings that are misaligned or not wholly in guest
/// memory. The device then loops on `popAvailable()`, completes requests with
/// `pushUsed(id:length:)` (or `addUsed` + `publishUsed` for a batch) and asks
/// `needsNotification()` whether to interrupt the driver.
///
/// Everything the guest wrote is untrusted: each descriptor is read once and
/// checked before any buffer is handed out, and malformed input comes back as
/// a `VirtqueueError` value, never a trap. Not thread-safe: one thread (the
/// device's) drives a queue; the guest's vCPUs share only the ring memory.
public final class Virtqueue<Memory: GuestMemoryView> {
    public let memory: Memory
    /// The largest queue size the device offers (QueueNumMax), a power of two.
    public let maxSize: UInt16
    public let limits: VirtqueueLimits

    /// The driver's settings. Any change disables the queue until `enable()`:
    /// the driver must not move rings under a live queue.
    public var configuration: VirtqueueConfiguration {
        didSet { ring = nil }
    }

    /// Set when the ring turned out corrupt; the queue then refuses all work
    /// until `enable()` or `reset()`. Report it with the device's NEEDS_RESET status.
    public internal(set) var fault: VirtqueueError?

    /// The resolved rings while enabled.
    var ring: SplitRing?
    /// Features as they were when enabled.
    var features: VirtqueueFeatures = []

    /// The next available-ring index the device will consume.
    var lastAvailIndex: UInt16 = 0
    /// The avail.idx last read from the guest, so a busy queue reads it once
    /// per batch rather than once per chain.
    var shadowAvailIndex: UInt16 = 0
    /// The next used-ring index the device will fill.
    var usedIndex: UInt16 = 0
    /// The used.idx the driver can see.
    var publishedUsedIndex: UInt16 = 0
    /// The used index when `needsNotification()` last ran, if it ran since enable.
    var lastNotificationCheck: UInt16?
    /// Whether the device currently wants the driver's notifications.
    var notificationsEnabled = true

    /// Segment slots reused by every pop: handing out a chain never allocates.
    let segmentStorage: UnsafeMutableBufferPointer<BufferSegment>

    /// A disabled queue over `memory` accepting sizes up to `maxSize`
    /// (rounded down to a power of two, at most 32768).
    public init(memory: Memory, maxSize: UInt16 = 256, limits: VirtqueueLimits = VirtqueueLimits()) {
        let clamped = min(max(maxSize, 1), 32768)
        self.maxSize = 1 << (15 - clamped.leadingZeroBitCount)
        self.memory = memory
        self.limits = limits
        self.configuration = VirtqueueConfiguration(size: self.maxSize)
        self.segmentStorage = .allocate(capacity: limits.maxSegments)
    }

    deinit {
        segmentStorage.deallocate()
    }

    /// True while the queue is enabled and its ring is sound.
    public var isReady: Bool { ring != nil && fault == nil }

    /// True when the ring turned out corrupt and only a reset helps.
    public var needsReset: Bool { fault != nil }

    /// Validates `configuration` and starts the queue from index 0.
    ///
    /// Refuses a size that is not a power of two or exceeds `maxSize`, and any
    /// of the three areas that is misaligned or not wholly in guest memory.
    public func enable() throws(VirtqueueError) {
        ring = nil
        let config = configuration
        let size = config.size
        guard size != 0, size & (size &- 1) == 0 else { throw .sizeNotPowerOfTwo(size) }
        guard size <= maxSize else { throw .sizeTooLarge(size, maximum: maxSize) }
        let descriptors = try resolve(.descriptorTable, at: config.descriptorTable, size: size)
        let driver = try resolve(.driverArea, at: config.driverArea, size: size)
        let device = try resolve(.deviceArea, at: config.deviceArea, size: size)
        resetState()
        features = config.features
        ring = SplitRing(size: size, descriptors: descriptors, driver: driver, device: device)
    }

    /// Back to the state after init: disabled, default configuration, no fault.
    public func reset() {
        configuration = VirtqueueConfiguration(size: maxSize)
        resetState()
    }

    private func resetState() {
        ring = nil
        fault = nil
        features = []
        lastAvailIndex = 0
        shadowAvailIndex = 0
        usedIndex = 0
        publishedUsedIndex = 0
        lastNotificationCheck = nil
        notificationsEnabled = true
    }

    private func resolve(
        _ area: VirtqueueArea, at address: UInt64, size: UInt16
    ) throws(VirtqueueError) -> UnsafeMutableRawPointer {
        guard address % area.alignment == 0 else { throw .areaMisaligned(area, address: address) }
        let length = area.length(forSize: size)
        guard let pointer = memory.pointer(address, length: length) else {
            throw .areaOutsideGuestMemory(area, address: address, length: length)
        }
        return pointer
    }

    /// Records a corrupt ring; the queue stays failed until reset.
    func fail(_ error: VirtqueueError) -> PopResult {
        fault = error
        return .failed(error)
    }
}
