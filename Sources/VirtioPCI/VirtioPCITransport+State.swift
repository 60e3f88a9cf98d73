import Machine
import Virtio

/// The function's state for a save image: PCI configuration (command, BAR,
/// interrupt line, MSI-X), the common configuration, each queue's settings
/// and its position in its rings, then the device model's own state as a
/// block. Guest memory, rings included, is saved apart.
///
/// Saving needs the service thread stopped (`stop()`), so no pass is under
/// way. Restoring is for a transport built as the saved one was (same
/// device type, queues, BAR as firmware placed it), before `start()`; it
/// leaves the device as if its driver had just programmed it: the queues
/// enabled on the same rings at the same indices, the doorbells bound
/// with ioeventfd at the restored BAR, and a pass over the queues due as
/// soon as the thread starts (doorbells rung before the save are not
/// lost). Interrupts go out as MSI messages (KVM_SIGNAL_MSI) from the
/// table, so there are no routes or irqfds to set up again. The rings are
/// not touched: guest memory must hold them again by `start()`.
extension VirtioPCITransport: StatefulDevice {
    public func saveState(into w: inout StateWriter) {
        state.withLock { s in
            w.u8(SavedTransport.version)
            w.u16(device.type.rawValue)
            w.u16(UInt16(s.queues.count))

            w.u16(s.command)
            w.u64(s.barAddress)
            w.u8(s.interruptLine)
            w.u16(s.msix.control)
            w.u64(s.msix.pending)
            w.u16(UInt16(s.msix.count))
            for e in s.msix.entries {
                for word in [e.addressLow, e.addressHigh, e.data, e.control] { w.u32(word) }
            }

            w.u8(s.status)
            w.u32(s.deviceFeatureSelect)
            w.u32(s.driverFeatureSelect)
            w.u64(s.driverFeatures)
            w.u16(s.configVector)
            w.u8(s.configGeneration)
            w.u16(s.queueSelect)
            w.u8(s.isr)

            for q in s.queues {
                w.u16(q.size)
                w.u64(q.descriptorTable)
                w.u64(q.driverArea)
                w.u64(q.deviceArea)
                w.u16(q.vector)
                let position = q.enabled ? q.virtqueue.position : nil
                w.bool(position != nil)
                if let p = position {
                    w.u16(p.nextAvailIndex)
                    w.u16(p.usedIndex)
                    w.u16(p.publishedUsedIndex)
                    w.bool(p.lastNotificationCheck != nil)
                    w.u16(p.lastNotificationCheck ?? 0)
                    w.bool(p.notificationsEnabled)
                }
            }

            var deviceState = StateWriter()
            device.saveDeviceState(into: &deviceState)
            w.block(deviceState.bytes)
        }
    }

    public func restoreState(from r: inout StateReader) throws(DeviceStateError) {
        let saved = try SavedTransport(from: &r, queueCount: state.withLock { $0.queues.count },
                                       vectors: state.withLock { $0.msix.count })
        func refuse(_ what: String) -> DeviceStateError { DeviceStateError("\(r.what): \(what)") }
        guard saved.deviceType == device.type.rawValue else {
            throw refuse("saved as virtio device type \(saved.deviceType), this is virtio-\(device.type)")
        }
        try check(saved, refuse)

        try state.withLock { (s: inout TransportState<Memory>) throws(DeviceStateError) in
            let pci = (s.command, s.barAddress, s.interruptLine)
            do throws(DeviceStateError) {
                try apply(saved, to: &s, refuse)
                var deviceReader = StateReader(saved.deviceState, what: "\(r.what) (virtio-\(device.type))")
                try device.restoreDeviceState(from: &deviceReader)
                try deviceReader.finish()
            } catch {
                // A fresh device again, not half of the saved one.
                reset(&s)
                s.msix.reset()
                (s.command, s.barAddress, s.interruptLine) = pci
                throw error
            }
            // The ioeventfds go where the restored BAR is.
            updateDoorbells(&s)
        }
        // The first pass after `start()` looks at every queue.
        wake()
    }

    /// Everything that can be judged before anything changes.
    private func check(_ saved: SavedTransport, _ refuse: (String) -> DeviceStateError) throws(DeviceStateError) {
        guard saved.command & ~PCICommand.writable == 0 else {
            throw refuse("PCI command 0x\(String(saved.command, radix: 16)) has bits the function does not implement")
        }
        guard saved.barAddress & (Self.barSize - 1) == 0 else {
            throw refuse("BAR0 at 0x\(String(saved.barAddress, radix: 16)) is not aligned to its size")
        }
        let status = saved.status
        if status & DeviceStatus.featuresOK != 0 {
            // FEATURES_OK sticks only for a set the device accepts (as `writeStatus` judges it).
            guard status & DeviceStatus.driver != 0, saved.driverFeatures & ~offeredFeatures == 0,
                  saved.driverFeatures & VirtioFeature.version1 != 0
            else { throw refuse("features 0x\(String(saved.driverFeatures, radix: 16)) accepted, this device offers 0x\(String(offeredFeatures, radix: 16))") }
        } else if status & DeviceStatus.driverOK != 0 {
            throw refuse("DRIVER_OK without FEATURES_OK")
        }
        guard saved.isr & ~3 == 0 else { throw refuse("ISR 0x\(String(saved.isr, radix: 16)): only bits 0 and 1 exist") }
        func validVector(_ v: UInt16) -> Bool { v == noVector || Int(v) < saved.msixEntries.count }
        guard validVector(saved.configVector) else { throw refuse("configuration vector \(saved.configVector) beyond the MSI-X table of \(saved.msixEntries.count)") }
        for (i, q) in saved.queues.enumerated() {
            guard validVector(q.vector) else { throw refuse("queue \(i) vector \(q.vector) beyond the MSI-X table of \(saved.msixEntries.count)") }
            if q.position != nil {
                guard status & DeviceStatus.featuresOK != 0 else { throw refuse("queue \(i) enabled before FEATURES_OK") }
            }
        }
    }

    private func apply(_ saved: SavedTransport, to s: inout TransportState<Memory>,
                       _ refuse: (String) -> DeviceStateError) throws(DeviceStateError) {
        var problem = ""
        guard s.msix.restore(entries: saved.msixEntries, pending: saved.msixPending, control: saved.msixControl,
                             problem: &problem)
        else { throw refuse(problem) }
        s.command = saved.command
        s.barAddress = saved.barAddress
        s.interruptLine = saved.interruptLine
        s.status = saved.status
        s.deviceFeatureSelect = saved.deviceFeatureSelect
        s.driverFeatureSelect = saved.driverFeatureSelect
        s.driverFeatures = saved.driverFeatures
        s.negotiatedFeatures = saved.status & DeviceStatus.featuresOK != 0 ? saved.driverFeatures : 0
        s.configVector = saved.configVector
        s.configGeneration = saved.configGeneration
        s.queueSelect = saved.queueSelect
        s.isr = saved.isr
        for (i, (slot, q)) in zip(s.queues, saved.queues).enumerated() {
            slot.size = q.size
            slot.descriptorTable = q.descriptorTable
            slot.driverArea = q.driverArea
            slot.deviceArea = q.deviceArea
            slot.vector = q.vector
            guard let position = q.position else { continue }
            // The same checks as a driver's queue_enable: size, alignment,
            // rings wholly in guest memory.
            slot.virtqueue.configuration = VirtqueueConfiguration(
                size: q.size, descriptorTable: q.descriptorTable, driverArea: q.driverArea,
                deviceArea: q.deviceArea, features: VirtqueueFeatures(negotiated: s.negotiatedFeatures))
            do {
                try slot.virtqueue.enable()
                try slot.virtqueue.resume(at: position)
            } catch {
                throw refuse("queue \(i): \(error)")
            }
            slot.enabled = true
        }
    }
}

/// A transport's saved state as read, before it is judged.
private struct SavedTransport {
    /// Bumped when the layout changes; other versions are refused.
    static let version: UInt8 = 1
    /// The most a device model's own state may take: the balloon's map of
    /// 2^32 frames, and room to spare.
    static let maxDeviceStateBytes = 1 << 30

    struct Queue {
        var size: UInt16
        var descriptorTable: UInt64
        var driverArea: UInt64
        var deviceArea: UInt64
        var vector: UInt16
        /// Set for an enabled queue.
        var position: VirtqueuePosition?
    }

    var deviceType: UInt16
    var command: UInt16
    var barAddress: UInt64
    var interruptLine: UInt8
    var msixControl: UInt16
    var msixPending: UInt64
    var msixEntries: [MSIXTable.Entry] = []
    var status: UInt8
    var deviceFeatureSelect: UInt32
    var driverFeatureSelect: UInt32
    var driverFeatures: UInt64
    var configVector: UInt16
    var configGeneration: UInt8
    var queueSelect: UInt16
    var isr: UInt8
    var queues: [Queue] = []
    var deviceState: [UInt8] = []

    /// Reads a transport's state, refusing a version, queue count or table
    /// size other than this transport's before reading per-queue data.
    init(from r: inout StateReader, queueCount: Int, vectors: Int) throws(DeviceStateError) {
        let version = try r.u8()
        guard version == Self.version else {
            throw DeviceStateError("\(r.what): saved state version \(version), this VMM reads \(Self.version)")
        }
        deviceType = try r.u16()
        let savedQueues = Int(try r.u16())
        guard savedQueues == queueCount else {
            throw DeviceStateError("\(r.what): \(savedQueues) queues saved, this device has \(queueCount)")
        }
        command = try r.u16()
        barAddress = try r.u64()
        interruptLine = try r.u8()
        msixControl = try r.u16()
        msixPending = try r.u64()
        let savedVectors = Int(try r.u16())
        guard savedVectors == vectors else {
            throw DeviceStateError("\(r.what): \(savedVectors) MSI-X vectors saved, this function has \(vectors)")
        }
        for _ in 0..<savedVectors {
            msixEntries.append(MSIXTable.Entry(addressLow: try r.u32(), addressHigh: try r.u32(),
                                               data: try r.u32(), control: try r.u32()))
        }
        status = try r.u8()
        deviceFeatureSelect = try r.u32()
        driverFeatureSelect = try r.u32()
        driverFeatures = try r.u64()
        configVector = try r.u16()
        configGeneration = try r.u8()
        queueSelect = try r.u16()
        isr = try r.u8()
        for _ in 0..<savedQueues {
            var q = Queue(size: try r.u16(), descriptorTable: try r.u64(), driverArea: try r.u64(),
                          deviceArea: try r.u64(), vector: try r.u16())
            if try r.bool() {
                let next = try r.u16(), used = try r.u16(), published = try r.u16()
                let checked = try r.bool()
                let check = try r.u16()
                q.position = VirtqueuePosition(
                    nextAvailIndex: next, usedIndex: used, publishedUsedIndex: published,
                    lastNotificationCheck: checked ? check : nil, notificationsEnabled: try r.bool())
            }
            queues.append(q)
        }
        deviceState = try r.block(limit: Self.maxDeviceStateBytes)
    }
}
