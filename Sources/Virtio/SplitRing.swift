import Synchronization

/// The three areas of an enabled split virtqueue, resolved to host pointers
/// once at enable time, with the field layout of spec 2.7 (all little-endian).
///
/// Every accessor reads or writes shared memory the guest can change at any
/// time; each value is loaded once and returned as a copy. Unaligned loads
/// are used throughout so a memory view with an odd host base cannot fault.
struct SplitRing {
    static let descriptorSize: UInt64 = 16

    /// Available-ring flag: the driver asks not to be interrupted.
    static let availNoInterrupt: UInt16 = 1
    /// Used-ring flag: the device asks not to be notified.
    static let usedNoNotify: UInt16 = 1

    let size: UInt16
    let descriptors: UnsafeMutableRawPointer
    let driver: UnsafeMutableRawPointer
    let device: UnsafeMutableRawPointer

    /// Ring indices run freely over 16 bits; slots are indices modulo size.
    var slotMask: UInt16 { size &- 1 }

    // MARK: Driver area (available ring): the device only reads it.

    var availFlags: UInt16 { load(driver, 0) }

    /// avail.idx, loaded with acquire semantics: ring entries and descriptors
    /// the driver published before bumping it are visible to later loads.
    var availIndexAcquiring: UInt16 {
        let value: UInt16 = load(driver, 2)
        atomicMemoryFence(ordering: .acquiring)
        return value
    }

    func availEntry(atSlot slot: UInt16) -> UInt16 {
        load(driver, 4 + 2 * Int(slot))
    }

    /// used_event: with VIRTIO_F_EVENT_IDX, the driver wants an interrupt once
    /// the used index passes this value.
    var usedEvent: UInt16 { load(driver, 4 + 2 * Int(size)) }

    // MARK: Device area (used ring): the device writes, the driver reads.

    func storeUsedFlags(_ flags: UInt16) {
        store(flags, device, 0)
    }

    /// used.idx, stored after a release fence so the elements written before
    /// it are visible to a driver that sees the new index.
    func storeUsedIndexReleasing(_ index: UInt16) {
        atomicMemoryFence(ordering: .releasing)
        store(index, device, 2)
    }

    func storeUsedElement(atSlot slot: UInt16, id: UInt32, length: UInt32) {
        let offset = 4 + 8 * Int(slot)
        store(id, device, offset)
        store(length, device, offset + 4)
    }

    /// avail_event: with VIRTIO_F_EVENT_IDX, the device wants a notification
    /// once the available index passes this value.
    func storeAvailEvent(_ index: UInt16) {
        store(index, device, 4 + 8 * Int(size))
    }

    // MARK: Descriptor table

    func descriptor(at index: UInt16) -> Descriptor {
        Descriptor(loadingFrom: descriptors + Int(index) * Int(Self.descriptorSize))
    }

    // MARK: Raw access

    private func load<T: FixedWidthInteger>(_ base: UnsafeMutableRawPointer, _ offset: Int) -> T {
        T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    private func store<T: FixedWidthInteger>(_ value: T, _ base: UnsafeMutableRawPointer, _ offset: Int) {
        base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }
}

/// A full barrier: orders a store of ours before a following load of a value
/// the driver writes (the notification-suppression handshakes need this;
/// acquire and release fences do not order a store before a load).
@inline(__always)
func fullMemoryFence() {
    atomicMemoryFence(ordering: .sequentiallyConsistent)
}
