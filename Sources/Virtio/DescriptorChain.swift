/// One request from the driver: a validated descriptor chain.
///
/// The segments live in storage the queue owns and reuses, so popping does
/// not allocate. They stay valid until the next pop from the same queue (or
/// its reset or deinit); a device that keeps a request longer copies the
/// segments it needs first. Complete the request with
/// `Virtqueue.pushUsed(id: chain.head, length:)`.
public struct DescriptorChain {
    /// The head descriptor's index: the id to hand back in the used ring.
    public let head: UInt16
    /// All buffers in chain order: every device-readable one, then every writable one.
    public let segments: UnsafeBufferPointer<BufferSegment>
    /// How many leading segments are device-readable.
    public let readableCount: Int
    /// Sum of the readable segments' lengths.
    public let readableLength: UInt64
    /// Sum of the writable segments' lengths.
    public let writableLength: UInt64

    /// The device-readable buffers (the driver's request).
    public var readable: UnsafeBufferPointer<BufferSegment> {
        UnsafeBufferPointer(rebasing: segments[..<readableCount])
    }

    /// The device-writable buffers (room for the device's reply).
    public var writable: UnsafeBufferPointer<BufferSegment> {
        UnsafeBufferPointer(rebasing: segments[readableCount...])
    }
}
