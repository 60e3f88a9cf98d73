extension Virtqueue {
    /// Takes the next chain the driver made available and validates it.
    ///
    /// A malformed chain is consumed and returned as `.refused` (that request
    /// fails, the queue goes on); a corrupt ring (available index too far
    /// ahead, head beyond the table) sets `fault` and returns `.failed`.
    /// The returned chain's segments stay valid until the next pop.
    public func popAvailable() -> PopResult {
        guard let ring else { return .failed(.notReady) }
        if let fault { return .failed(fault) }

        if lastAvailIndex == shadowAvailIndex {
            if let error = refreshAvailIndex(ring) { return fail(error) }
            if lastAvailIndex == shadowAvailIndex {
                guard features.contains(.eventIndex), notificationsEnabled else { return .empty }
                // The driver may have added a buffer while it still saw an older
                // avail_event and so not notified us. Publish where we are, then
                // (after a full fence: store before load) look once more.
                ring.storeAvailEvent(lastAvailIndex)
                fullMemoryFence()
                if let error = refreshAvailIndex(ring) { return fail(error) }
                if lastAvailIndex == shadowAvailIndex { return .empty }
            }
        }

        let head = ring.availEntry(atSlot: lastAvailIndex & ring.slotMask)
        lastAvailIndex &+= 1
        if features.contains(.eventIndex), notificationsEnabled {
            ring.storeAvailEvent(lastAvailIndex)
        }
        guard head < ring.size else { return fail(.headOutOfRange(head: head, size: ring.size)) }
        do {
            return .chain(try walkChain(from: head, in: ring))
        } catch {
            return .refused(head: head, error)
        }
    }

    /// Reads avail.idx into the shadow, refusing one that runs more than a
    /// queue's worth ahead: the driver can have at most `size` chains out.
    private func refreshAvailIndex(_ ring: SplitRing) -> VirtqueueError? {
        let index = ring.availIndexAcquiring
        guard index &- lastAvailIndex <= ring.size else {
            return .availIndexRanAhead(availIndex: index, lastSeen: lastAvailIndex, size: ring.size)
        }
        shadowAvailIndex = index
        return nil
    }
}
