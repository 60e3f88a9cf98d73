/// The one way the virtio core reaches guest memory.
///
/// Every address a virtqueue handles comes from the guest, so the only
/// operation is a bounds-checked translation: a conforming type answers nil
/// for any range that is not wholly backed by host memory, and must compute
/// that without overflowing (`gpa + length` may exceed `UInt64.max`).
///
/// The returned pointer stays valid for as long as the memory view lives; the
/// guest may change the bytes behind it at any moment, so callers read each
/// value once and validate the copy.
public protocol GuestMemoryView {
    /// A host pointer to `length` bytes at guest-physical address `gpa`, or
    /// nil when any of those bytes lies outside guest memory.
    func pointer(_ gpa: UInt64, length: UInt64) -> UnsafeMutableRawPointer?
}
