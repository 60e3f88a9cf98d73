import Machine
import Virtio

/// A virtio device model behind a transport: what it offers, and the work it
/// does on its queues.
///
/// The transport calls every method with its lock held, from the device's
/// service thread (or a test), never concurrently: a model keeps its state
/// in plain properties.
public protocol VirtioDevice: AnyObject, Sendable {
    var type: VirtioDeviceType { get }
    /// Device-specific feature bits (the transport adds VERSION_1,
    /// INDIRECT_DESC and EVENT_IDX).
    var deviceFeatures: UInt64 { get }
    /// Each queue's largest size (QueueNumMax); the count is the number of queues.
    var queueMaxSizes: [UInt16] { get }
    /// The device-specific configuration structure as it is now. Its length
    /// is fixed when the transport is made (the capability advertises it).
    var configSpace: [UInt8] { get }

    /// `size` bytes at `offset` in the device configuration, little-endian.
    /// The default reads `configSpace`; bytes past its end read as zero.
    func readConfig(offset: Int, size: Int) -> UInt64
    /// The driver wrote the device configuration (virtio 1.2 §4.1.4.6).
    /// The default ignores it: most devices' configuration is read-only.
    func writeConfig(offset: Int, size: Int, value: UInt64)

    /// The driver reset the device: drop any request state.
    func reset()

    /// Takes what the driver made available on queue `index`, does it and
    /// completes each request on `queue`. Refused chains are completed with
    /// length 0; a failed queue (corrupt ring) is left for the transport.
    func service<Memory: GuestMemoryView>(queue index: Int, _ queue: Virtqueue<Memory>)

    /// A host file descriptor whose readability means work for the device
    /// (a TAP's received frames), polled while `wantsHostInput` is true.
    var hostInputFD: Int32? { get }
    var wantsHostInput: Bool { get }

    /// Work left after a pass over the queues (a reply owed on a queue
    /// already served, or a budget used up): the transport passes again.
    var hasPendingWork: Bool { get }

    /// Appends the device's own state for a save image (the transport
    /// keeps the registers and queues, and writes this as a block of its
    /// own state). Called with the service thread stopped. The default
    /// saves nothing: a device whose state is all in its queues.
    func saveDeviceState(into writer: inout StateWriter)
    /// Puts back what `saveDeviceState` wrote, consuming exactly that
    /// (untrusted: check everything), on a device just built as the saved
    /// one was, after the transport restored its registers and queues and
    /// before the service thread starts. The default accepts only nothing.
    func restoreDeviceState(from reader: inout StateReader) throws(DeviceStateError)
}

extension VirtioDevice {
    public var hostInputFD: Int32? { nil }
    public var wantsHostInput: Bool { false }
    public func readConfig(offset: Int, size: Int) -> UInt64 { littleEndian(configSpace, at: offset, size: size) }
    public func writeConfig(offset: Int, size: Int, value: UInt64) {}
    public var hasPendingWork: Bool { false }
    public func saveDeviceState(into writer: inout StateWriter) {}
    public func restoreDeviceState(from reader: inout StateReader) throws(DeviceStateError) {}
}

/// How a device's interrupts reach the guest: one MSI-X message at a time.
public protocol MSISignaller: Sendable {
    func signalMSI(address: UInt64, data: UInt32)
}

/// Binds a queue doorbell's address to the device's eventfd so that guest
/// notifications skip the VMM's vCPU threads (KVM_IOEVENTFD). Optional: a
/// transport without one takes doorbell writes as MMIO.
public protocol DoorbellBinder: Sendable {
    func bind(address: UInt64, length: UInt32, eventFD: Int32) -> Bool
    func unbind(address: UInt64, length: UInt32, eventFD: Int32)
}
