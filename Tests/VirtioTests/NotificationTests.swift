import Testing
@testable import Virtio

@Suite struct NotificationTests {
    @Test(arguments: [
        // (event, old, new, crossed)
        (0, 0, 1, true),
        (0, 1, 2, false),
        (5, 3, 6, true),
        (5, 3, 5, false),
        (5, 5, 5, false),
        (5, 5, 6, true),     // event ∈ [old, new)
        (0xFFFF, 0xFFFE, 0, true),   // wraps past the event
        (0, 0xFFFE, 2, true),
        (3, 0xFFFE, 2, false),
        (0xFFFE, 0xFFFF, 1, false),  // event already behind old
    ] as [(UInt16, UInt16, UInt16, Bool)])
    func eventIndexCrossing(event: UInt16, old: UInt16, new: UInt16, crossed: Bool) {
        #expect(eventIndexCrossed(event, from: old, to: new) == crossed)
    }

    private func completeOne(_ d: TestDriver) throws {
        d.makeAvailable(0)
        let chain = try #require(d.queue.popAvailable().chain)
        try d.queue.pushUsed(id: chain.head, length: 0)
    }

    @Test func eventIndexNotifiesWhenUsedEventIsCrossed() throws {
        let d = try TestDriver(features: [.eventIndex])
        d.setDescriptor(0, address: TestDriver.data, length: 1, flags: Flag.write)
        d.setUsedEvent(0)
        try completeOne(d)                      // used 0 → 1 crosses 0
        #expect(d.queue.needsNotification())    // (the first check always notifies)
        try completeOne(d)                      // 1 → 2: event 0 already passed
        #expect(!d.queue.needsNotification())
        d.setUsedEvent(3)
        try completeOne(d)                      // 2 → 3
        #expect(!d.queue.needsNotification())
        try completeOne(d)                      // 3 → 4 crosses 3
        #expect(d.queue.needsNotification())
        #expect(!d.queue.needsNotification())   // nothing new
    }

    @Test func eventIndexNotifiesOnceForABatchCrossingTheEvent() throws {
        let d = try TestDriver(features: [.eventIndex])
        d.setDescriptor(0, address: TestDriver.data, length: 1, flags: Flag.write)
        try completeOne(d)
        _ = d.queue.needsNotification()
        d.setUsedEvent(2)
        for _ in 0..<3 {
            d.makeAvailable(0)
            _ = try #require(d.queue.popAvailable().chain)
            try d.queue.addUsed(id: 0, length: 0)
        }
        d.queue.publishUsed()                   // 1 → 4 crosses 2
        #expect(d.queue.needsNotification())
    }

    @Test func noInterruptFlagSuppressesWithoutEventIndex() throws {
        let d = try TestDriver(features: [])
        d.setDescriptor(0, address: TestDriver.data, length: 1, flags: Flag.write)
        try completeOne(d)
        #expect(d.queue.needsNotification())
        #expect(!d.queue.needsNotification())   // nothing new published
        d.setAvailFlags(1)
        try completeOne(d)
        #expect(!d.queue.needsNotification())
        d.setAvailFlags(0)
        try completeOne(d)
        #expect(d.queue.needsNotification())
    }

    @Test func popMovesAvailEventWithEventIndex() throws {
        let d = try TestDriver(features: [.eventIndex])
        d.setDescriptor(0, address: TestDriver.data, length: 1)
        d.makeAvailable(0)
        d.makeAvailable(0)
        _ = d.queue.popAvailable()
        #expect(d.availEvent == 1)
        _ = d.queue.popAvailable()
        #expect(d.availEvent == 2)
        #expect(d.queue.popAvailable().isEmpty)
        #expect(d.availEvent == 2)
    }

    @Test func popLeavesAvailEventAloneWithoutEventIndex() throws {
        let d = try TestDriver(features: [])
        d.setDescriptor(0, address: TestDriver.data, length: 1)
        d.makeAvailable(0)
        _ = d.queue.popAvailable()
        #expect(d.availEvent == 0)
    }

    @Test func disablingNotificationsSetsNoNotifyWithoutEventIndex() throws {
        let d = try TestDriver(features: [])
        d.queue.disableNotifications()
        #expect(d.usedFlags == 1)
        #expect(!d.queue.enableNotifications())
        #expect(d.usedFlags == 0)
    }

    @Test func enablingNotificationsReportsBuffersThatArrivedMeanwhile() throws {
        let d = try TestDriver(features: [])
        d.setDescriptor(0, address: TestDriver.data, length: 1)
        d.queue.disableNotifications()
        d.makeAvailable(0)
        #expect(d.queue.enableNotifications())
        #expect(d.queue.popAvailable().chain != nil)
        #expect(!d.queue.enableNotifications())
    }

    @Test func disablingNotificationsFreezesAvailEventWithEventIndex() throws {
        let d = try TestDriver(features: [.eventIndex])
        d.setDescriptor(0, address: TestDriver.data, length: 1)
        d.queue.disableNotifications()
        #expect(d.usedFlags == 0)               // event index uses avail_event, not the flag
        d.makeAvailable(0)
        d.makeAvailable(0)
        _ = d.queue.popAvailable()
        _ = d.queue.popAvailable()
        #expect(d.availEvent == 0)
        #expect(!d.queue.enableNotifications())
        #expect(d.availEvent == 2)
        d.makeAvailable(0)
        #expect(d.queue.enableNotifications())
    }
}
