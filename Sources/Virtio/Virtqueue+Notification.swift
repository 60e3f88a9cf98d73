extension Virtqueue {
    /// Whether to interrupt the driver for the used elements published since
    /// the last call. Call after `publishUsed()`/`pushUsed`.
    ///
    /// With VIRTIO_F_EVENT_IDX: only if the used index crossed the driver's
    /// used_event since the last check (always on the first check after
    /// enable). Without it: if anything was published and the driver has not
    /// set VRING_AVAIL_F_NO_INTERRUPT.
    public func needsNotification() -> Bool {
        guard let ring, fault == nil else { return false }
        // used.idx (a store) must be visible before we read the driver's
        // suppression (a load), or we could both decide not to act.
        fullMemoryFence()
        let new = publishedUsedIndex
        let old = lastNotificationCheck
        lastNotificationCheck = new
        if features.contains(.eventIndex) {
            guard let old else { return true }
            return eventIndexCrossed(ring.usedEvent, from: old, to: new)
        }
        guard old != new else { return false }
        return ring.availFlags & SplitRing.availNoInterrupt == 0
    }

    /// Asks the driver not to notify (kick) the device, e.g. while the device
    /// polls. Advisory: the driver may still notify.
    ///
    /// Without VIRTIO_F_EVENT_IDX this sets VRING_USED_F_NO_NOTIFY; with it,
    /// the device stops moving avail_event forward.
    public func disableNotifications() {
        guard let ring, fault == nil else { return }
        notificationsEnabled = false
        if !features.contains(.eventIndex) {
            ring.storeUsedFlags(SplitRing.usedNoNotify)
        }
    }

    /// Asks the driver to notify the device of new buffers again. Returns
    /// true when buffers arrived meanwhile (the driver may not notify for
    /// those): keep popping instead of waiting.
    public func enableNotifications() -> Bool {
        guard let ring, fault == nil else { return false }
        notificationsEnabled = true
        if features.contains(.eventIndex) {
            ring.storeAvailEvent(lastAvailIndex)
        } else {
            ring.storeUsedFlags(0)
        }
        // Our store must be visible before we read avail.idx (a load): the
        // driver stores avail.idx before reading our flag or event.
        fullMemoryFence()
        return ring.availIndexAcquiring != lastAvailIndex
    }
}

/// vring_need_event (spec 2.7.10): true when moving the index from `old` to
/// `new` passed `event`, all modulo 2^16.
func eventIndexCrossed(_ event: UInt16, from old: UInt16, to new: UInt16) -> Bool {
    new &- event &- 1 < new &- old
}
