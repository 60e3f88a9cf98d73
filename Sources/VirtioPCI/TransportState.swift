import Virtio

/// One queue as the transport sees it: the driver's pending settings, its
/// MSI-X vector, and the core virtqueue that does the ring work.
final class QueueSlot<Memory: GuestMemoryView> {
    let virtqueue: Virtqueue<Memory>
    var size: UInt16
    var descriptorTable: UInt64 = 0
    var driverArea: UInt64 = 0
    var deviceArea: UInt64 = 0
    var vector: UInt16 = noVector
    /// True once the driver enabled the queue and the core accepted its rings.
    var enabled = false

    init(memory: Memory, maxSize: UInt16) {
        virtqueue = Virtqueue(memory: memory, maxSize: maxSize)
        size = virtqueue.maxSize
    }

    func reset() {
        virtqueue.reset()
        size = virtqueue.maxSize
        descriptorTable = 0
        driverArea = 0
        deviceArea = 0
        vector = noVector
        enabled = false
    }
}

/// Everything a virtio-pci function's registers hold, under its lock.
struct TransportState<Memory: GuestMemoryView>: @unchecked Sendable {  // only ever inside its Mutex
    // PCI configuration space.
    var command: UInt16
    /// BAR0's address (the low 15 bits, below its size, always read 0).
    var barAddress: UInt64
    var interruptLine: UInt8 = 0

    // Common configuration.
    var status: UInt8 = 0
    var deviceFeatureSelect: UInt32 = 0
    var driverFeatureSelect: UInt32 = 0
    var driverFeatures: UInt64 = 0
    /// The features in force since FEATURES_OK was accepted.
    var negotiatedFeatures: UInt64 = 0
    var configVector: UInt16 = noVector
    /// config_generation: bumped whenever the host changes the device
    /// configuration, so a driver reading several fields can tell it raced a
    /// change (§4.1.4.3.1). Kept across resets: it only ever moves on.
    var configGeneration: UInt8 = 0
    var queueSelect: UInt16 = 0
    var queues: [QueueSlot<Memory>]
    var isr: UInt8 = 0
    var msix: MSIXTable

    /// Where the doorbells are bound with ioeventfd, if they are.
    var boundDoorbellBase: UInt64?

    /// The queue `queue_select` names, if it exists.
    var selectedQueue: QueueSlot<Memory>? {
        Int(queueSelect) < queues.count ? queues[Int(queueSelect)] : nil
    }

    /// Whether memory accesses to BAR0 reach the device.
    var decodesMemory: Bool { command & PCICommand.memorySpace != 0 }
}

enum PCICommand {
    static let memorySpace: UInt16 = 0x0002
    static let busMaster: UInt16 = 0x0004
    static let interruptDisable: UInt16 = 0x0400
    static let writable: UInt16 = memorySpace | busMaster | interruptDisable
}
