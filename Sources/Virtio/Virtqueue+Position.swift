/// Where an enabled queue stands in its rings: the device-side indices that
/// live only in the device (the rings themselves are guest memory). Saving a
/// device records this; a restored device enables the same rings and
/// resumes here, so it goes on exactly where it stopped.
public struct VirtqueuePosition: Sendable, Hashable, CustomStringConvertible {
    /// The next available-ring index the device will consume.
    public var nextAvailIndex: UInt16
    /// The next used-ring index the device will fill.
    public var usedIndex: UInt16
    /// The used.idx last published to the driver (behind `usedIndex` by
    /// elements added but not yet published).
    public var publishedUsedIndex: UInt16
    /// The published used index when the device last asked whether to
    /// interrupt, or nil if it has not since enable (with EVENT_IDX the
    /// first check always interrupts).
    public var lastNotificationCheck: UInt16?
    /// Whether the device wants the driver's notifications.
    public var notificationsEnabled: Bool

    public init(nextAvailIndex: UInt16, usedIndex: UInt16, publishedUsedIndex: UInt16,
                lastNotificationCheck: UInt16?, notificationsEnabled: Bool) {
        self.nextAvailIndex = nextAvailIndex
        self.usedIndex = usedIndex
        self.publishedUsedIndex = publishedUsedIndex
        self.lastNotificationCheck = lastNotificationCheck
        self.notificationsEnabled = notificationsEnabled
    }

    public var description: String {
        "next available \(nextAvailIndex), used \(usedIndex) (published \(publishedUsedIndex))"
    }
}

extension Virtqueue {
    /// The queue's position; nil while it is not enabled.
    public var position: VirtqueuePosition? {
        guard ring != nil else { return nil }
        return VirtqueuePosition(
            nextAvailIndex: lastAvailIndex, usedIndex: usedIndex, publishedUsedIndex: publishedUsedIndex,
            lastNotificationCheck: lastNotificationCheck, notificationsEnabled: notificationsEnabled)
    }

    /// Puts a just-enabled queue at `position` (from a saved device).
    ///
    /// The position comes from a file, so it is checked against what the
    /// enabled ring can hold: chains taken but not yet completed, and used
    /// elements added but not yet published, are each at most a ring's
    /// worth. The available index the driver has in memory is judged when
    /// the queue next pops, as always. Touches no guest memory: the rings
    /// already hold what the saved device wrote.
    public func resume(at position: VirtqueuePosition) throws(VirtqueueError) {
        guard let ring, fault == nil else { throw .notReady }
        guard position.nextAvailIndex &- position.usedIndex <= ring.size,
              position.usedIndex &- position.publishedUsedIndex <= ring.size
        else { throw .positionImpossible(position, size: ring.size) }
        lastAvailIndex = position.nextAvailIndex
        shadowAvailIndex = position.nextAvailIndex     // read avail.idx afresh
        usedIndex = position.usedIndex
        publishedUsedIndex = position.publishedUsedIndex
        lastNotificationCheck = position.lastNotificationCheck
        notificationsEnabled = position.notificationsEnabled
    }
}
