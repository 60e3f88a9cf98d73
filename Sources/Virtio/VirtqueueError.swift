/// Everything that can go wrong with a virtqueue, as values.
///
/// Three kinds (see `kind`): the driver's configuration is unusable (enable
/// refused), one chain is malformed (that request fails, the queue goes on),
/// or the ring itself is corrupt (the queue needs a reset). Guest input never
/// traps.
public enum VirtqueueError: Error, Sendable, Hashable, CustomStringConvertible {
    // Configuration, refused by `enable()`.
    case sizeNotPowerOfTwo(UInt16)
    case sizeTooLarge(UInt16, maximum: UInt16)
    case areaMisaligned(VirtqueueArea, address: UInt64)
    case areaOutsideGuestMemory(VirtqueueArea, address: UInt64, length: UInt64)

    /// The queue has not been enabled, or was reset or reconfigured since.
    case notReady

    /// A position handed to `resume(at:)` that no queue of this size can be at.
    case positionImpossible(VirtqueuePosition, size: UInt16)

    // Ring corruption: the queue needs a reset.
    /// avail.idx is more than a queue's worth ahead of what the device consumed.
    case availIndexRanAhead(availIndex: UInt16, lastSeen: UInt16, size: UInt16)
    /// An available-ring entry names a descriptor beyond the table.
    case headOutOfRange(head: UInt16, size: UInt16)

    // A malformed chain: that request fails.
    case nextOutOfRange(DescriptorPosition, next: UInt16, tableSize: Int)
    /// The chain visits more descriptors than its table holds, so it revisits one.
    case descriptorLoop(head: UInt16, tableSize: Int)
    case bufferOutsideGuestMemory(DescriptorPosition, address: UInt64, length: UInt32)
    /// A device-readable buffer follows a device-writable one.
    case readableAfterWritable(DescriptorPosition)
    case chainTooLarge(head: UInt16, limit: UInt64)
    case tooManySegments(head: UInt16, limit: Int)
    case indirectNotNegotiated(DescriptorPosition)
    /// A descriptor in an indirect table points at another indirect table.
    case nestedIndirect(DescriptorPosition)
    /// A descriptor has both INDIRECT and NEXT.
    case indirectWithNext(DescriptorPosition)
    /// An indirect table's length is zero or not a multiple of 16.
    case indirectTableLength(DescriptorPosition, length: UInt32)
    case indirectTableOutsideGuestMemory(DescriptorPosition, address: UInt64, length: UInt32)

    // Device misuse: a bug in the device model, refused all the same.
    case usedIDOutOfRange(id: UInt16, size: UInt16)

    public enum Kind: Sendable {
        /// `enable()` refused the driver's configuration.
        case configuration
        /// The operation needs an enabled queue.
        case notReady
        /// The ring is corrupt; the queue stays failed until reset.
        case ringCorrupt
        /// One chain was refused; the queue goes on.
        case malformedChain
        /// The device passed something invalid.
        case deviceMisuse
    }

    public var kind: Kind {
        switch self {
        case .sizeNotPowerOfTwo, .sizeTooLarge, .areaMisaligned, .areaOutsideGuestMemory:
            .configuration
        case .positionImpossible:
            .configuration
        case .notReady:
            .notReady
        case .availIndexRanAhead, .headOutOfRange:
            .ringCorrupt
        case .nextOutOfRange, .descriptorLoop, .bufferOutsideGuestMemory, .readableAfterWritable,
             .chainTooLarge, .tooManySegments, .indirectNotNegotiated, .nestedIndirect,
             .indirectWithNext, .indirectTableLength, .indirectTableOutsideGuestMemory:
            .malformedChain
        case .usedIDOutOfRange:
            .deviceMisuse
        }
    }

    /// True when the queue cannot go on until the driver resets it.
    public var requiresReset: Bool { kind == .ringCorrupt }

    public var description: String {
        switch self {
        case .sizeNotPowerOfTwo(let size):
            "queue size \(size) is not a power of two"
        case .sizeTooLarge(let size, let maximum):
            "queue size \(size) exceeds the device maximum \(maximum)"
        case .areaMisaligned(let area, let address):
            "\(area) at \(hex(address)) is not \(area.alignment)-byte aligned"
        case .areaOutsideGuestMemory(let area, let address, let length):
            "\(area) lies outside guest memory (\(hex(address)) + \(hex(length)))"
        case .notReady:
            "queue is not enabled"
        case .positionImpossible(let p, let size):
            "a queue of size \(size) cannot be at \(p)"
        case .availIndexRanAhead(let availIndex, let lastSeen, let size):
            "available index \(availIndex) is more than the queue size \(size) ahead of \(lastSeen)"
        case .headOutOfRange(let head, let size):
            "available ring names descriptor \(head), beyond the queue size \(size)"
        case .nextOutOfRange(let position, let next, let tableSize):
            "\(position) chains to \(next), beyond its table of \(tableSize)"
        case .descriptorLoop(let head, let tableSize):
            "chain \(head) loops: more than \(tableSize) descriptors visited"
        case .bufferOutsideGuestMemory(let position, let address, let length):
            "\(position) points outside guest memory (\(hex(address)) + \(hex(length)))"
        case .readableAfterWritable(let position):
            "\(position) is device-readable but follows a device-writable descriptor"
        case .chainTooLarge(let head, let limit):
            "chain \(head) describes more than \(limit) bytes"
        case .tooManySegments(let head, let limit):
            "chain \(head) has more than \(limit) buffers"
        case .indirectNotNegotiated(let position):
            "\(position) is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated"
        case .nestedIndirect(let position):
            "\(position) points at an indirect table from within an indirect table"
        case .indirectWithNext(let position):
            "\(position) has both INDIRECT and NEXT set"
        case .indirectTableLength(let position, let length):
            "\(position) points at an indirect table of \(length) bytes, not a positive multiple of 16"
        case .indirectTableOutsideGuestMemory(let position, let address, let length):
            "\(position) points at an indirect table outside guest memory (\(hex(address)) + \(hex(length)))"
        case .usedIDOutOfRange(let id, let size):
            "used id \(id) is beyond the queue size \(size)"
        }
    }
}
