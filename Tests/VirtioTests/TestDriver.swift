@testable import Virtio

/// Descriptor flags as a driver writes them.
enum Flag {
    static let next: UInt16 = 1
    static let write: UInt16 = 2
    static let indirect: UInt16 = 4
}

/// Plays the guest driver against a queue in heap memory: writes descriptors
/// and the available ring, reads the used ring.
final class TestDriver {
    static let descriptorTable: UInt64 = 0x1000
    static let driverArea: UInt64 = 0x3000
    static let deviceArea: UInt64 = 0x4000
    /// Where tests put buffers and indirect tables.
    static let data: UInt64 = 0x10000

    let memory: HeapGuestMemory
    let queue: Virtqueue<HeapGuestMemory>
    let size: UInt16
    private(set) var availIndex: UInt16 = 0

    /// An enabled queue of `size` entries with rings at the fixed addresses above.
    init(
        size: UInt16 = 8,
        features: VirtqueueFeatures = [.indirectDescriptors],
        limits: VirtqueueLimits = VirtqueueLimits(),
        memorySize: Int = 1 << 20
    ) throws {
        memory = HeapGuestMemory(size: memorySize)
        queue = Virtqueue(memory: memory, maxSize: 256, limits: limits)
        self.size = size
        queue.configuration = VirtqueueConfiguration(
            size: size,
            descriptorTable: Self.descriptorTable,
            driverArea: Self.driverArea,
            deviceArea: Self.deviceArea,
            features: features)
        try queue.enable()
    }

    /// Writes descriptor `index` of the descriptor table, or of the indirect
    /// table at `table`.
    func setDescriptor(
        _ index: UInt16, address: UInt64, length: UInt32, flags: UInt16 = 0, next: UInt16 = 0,
        table: UInt64 = TestDriver.descriptorTable
    ) {
        let at = table + 16 * UInt64(index)
        memory.store(address, at: at)
        memory.store(length, at: at + 8)
        memory.store(flags, at: at + 12)
        memory.store(next, at: at + 14)
    }

    /// Puts `head` in the next available slot and publishes it.
    func makeAvailable(_ head: UInt16) {
        memory.store(head, at: Self.driverArea + 4 + 2 * UInt64(availIndex & (size - 1)))
        availIndex &+= 1
        memory.store(availIndex, at: Self.driverArea + 2)
    }

    /// Overwrites avail.idx as a misbehaving driver would.
    func setAvailIndex(_ index: UInt16) {
        availIndex = index
        memory.store(index, at: Self.driverArea + 2)
    }

    func setAvailFlags(_ flags: UInt16) {
        memory.store(flags, at: Self.driverArea)
    }

    func setUsedEvent(_ index: UInt16) {
        memory.store(index, at: Self.driverArea + 4 + 2 * UInt64(size))
    }

    var usedFlags: UInt16 { memory.load(Self.deviceArea)! }
    var usedIndex: UInt16 { memory.load(Self.deviceArea + 2)! }
    var availEvent: UInt16 { memory.load(Self.deviceArea + 4 + 8 * UInt64(size))! }

    func usedElement(atSlot slot: UInt16) -> (id: UInt32, length: UInt32) {
        let at = Self.deviceArea + 4 + 8 * UInt64(slot)
        return (memory.load(at)!, memory.load(at + 4)!)
    }
}

extension PopResult {
    var chain: DescriptorChain? {
        if case .chain(let chain) = self { return chain }
        return nil
    }

    /// The error of a refused chain.
    var refusal: VirtqueueError? {
        if case .refused(_, let error) = self { return error }
        return nil
    }

    var refusedHead: UInt16? {
        if case .refused(let head, _) = self { return head }
        return nil
    }

    /// The error of a failed queue.
    var failure: VirtqueueError? {
        if case .failed(let error) = self { return error }
        return nil
    }

    var isEmpty: Bool {
        if case .empty = self { return true }
        return false
    }
}
