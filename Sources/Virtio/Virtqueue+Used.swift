extension Virtqueue {
    /// Completes request `id` (a chain's head) having written `length` bytes
    /// into its writable buffers, and makes it visible to the driver.
    public func pushUsed(id: UInt16, length: UInt32) throws(VirtqueueError) {
        try addUsed(id: id, length: length)
        publishUsed()
    }

    /// Writes a used element without publishing it: batch several, then
    /// `publishUsed()` once.
    public func addUsed(id: UInt16, length: UInt32) throws(VirtqueueError) {
        guard let ring else { throw .notReady }
        if let fault { throw fault }
        guard id < ring.size else { throw .usedIDOutOfRange(id: id, size: ring.size) }
        ring.storeUsedElement(atSlot: usedIndex & ring.slotMask, id: UInt32(id), length: length)
        usedIndex &+= 1
    }

    /// Publishes every used element added so far: stores used.idx after a
    /// release fence, so the driver never sees an index ahead of its elements.
    public func publishUsed() {
        guard let ring, fault == nil, publishedUsedIndex != usedIndex else { return }
        ring.storeUsedIndexReleasing(usedIndex)
        publishedUsedIndex = usedIndex
    }
}
