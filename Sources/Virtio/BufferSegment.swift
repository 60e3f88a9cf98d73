/// One guest buffer of a chain, already checked to lie wholly in guest memory.
///
/// The bytes are shared with the guest, which may change them while the
/// device works: copy what you need to validate before validating it.
public struct BufferSegment {
    /// Where the buffer starts in guest-physical memory (for dirty tracking, traces).
    public let guestAddress: UInt64
    /// The host address of the buffer's first byte.
    public let pointer: UnsafeMutableRawPointer
    public let length: UInt32
    /// True for buffers the device writes (VIRTQ_DESC_F_WRITE), false for ones it reads.
    public let isDeviceWritable: Bool

    public init(guestAddress: UInt64, pointer: UnsafeMutableRawPointer, length: UInt32, isDeviceWritable: Bool) {
        self.guestAddress = guestAddress
        self.pointer = pointer
        self.length = length
        self.isDeviceWritable = isDeviceWritable
    }

    /// The buffer as raw bytes.
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: pointer, count: Int(length))
    }
}
