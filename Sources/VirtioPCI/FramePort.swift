import HostNetwork

/// Where a virtio-net device's frames go and come from: a TAP device, or a
/// test's fake. Plain Ethernet frames, no headers.
public protocol FramePort: AnyObject, Sendable {
    /// Readable when a frame waits (polled by the service thread).
    var fileDescriptor: Int32 { get }
    /// Reads one frame; nil when none waits.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int?
    /// Sends one frame; false if it was dropped.
    func send(_ frame: UnsafeRawBufferPointer) -> Bool
}

extension TapDevice: FramePort {
    public var fileDescriptor: Int32 { fd }
}
