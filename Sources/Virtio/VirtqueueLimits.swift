/// Device-chosen bounds on what one descriptor chain may ask of the device.
public struct VirtqueueLimits: Sendable, Hashable {
    /// Most buffers (descriptors that are not indirect-table pointers) in one
    /// chain. The queue preallocates this many segment slots once, so popping
    /// a chain never allocates. 1024 matches what Linux and QEMU accept.
    public var maxSegments: Int

    /// Most bytes (readable plus writable) one chain may describe. The default
    /// is 4 GiB - 1: a used element reports written bytes in 32 bits.
    public var maxChainBytes: UInt64

    public init(maxSegments: Int = 1024, maxChainBytes: UInt64 = UInt64(UInt32.max)) {
        // At least one slot: every valid chain has a buffer.
        self.maxSegments = max(1, maxSegments)
        self.maxChainBytes = maxChainBytes
    }
}
