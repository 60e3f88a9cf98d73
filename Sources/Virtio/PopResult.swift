/// What `Virtqueue.popAvailable()` found.
public enum PopResult {
    /// A valid chain, ready for the device.
    case chain(DescriptorChain)
    /// The driver has made nothing new available.
    case empty
    /// The next chain is malformed and was consumed without being handed out.
    /// Only this request fails: complete it (typically
    /// `pushUsed(id: head, length: 0)`) so the driver can reclaim its
    /// descriptors, and keep popping.
    case refused(head: UInt16, VirtqueueError)
    /// The queue cannot be used: not enabled, or its ring is corrupt and it
    /// needs a reset (`error.requiresReset`; set the device's NEEDS_RESET
    /// status). Stays so until the driver reconfigures or resets the queue.
    case failed(VirtqueueError)
}
