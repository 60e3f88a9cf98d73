import Virtio

/// The common configuration structure (virtio 1.2 §4.1.4.3): feature
/// negotiation, device status and queue set-up.
///
///     0x00 device_feature_select  u32    0x16 queue_select       u16
///     0x04 device_feature         u32 R  0x18 queue_size         u16
///     0x08 driver_feature_select  u32    0x1a queue_msix_vector  u16
///     0x0c driver_feature         u32    0x1c queue_enable       u16
///     0x10 config_msix_vector     u16    0x1e queue_notify_off   u16 R
///     0x12 num_queues             u16 R  0x20 queue_desc         u64
///     0x14 device_status          u8     0x28 queue_driver       u64
///     0x15 config_generation      u8  R  0x30 queue_device       u64
extension VirtioPCITransport {
    /// Any aligned read: the fields are assembled and the bytes asked for returned.
    func commonRead(offset: UInt64, size: Int, _ s: TransportState<Memory>) -> UInt64 {
        guard offset % UInt64(size) == 0 else { return 0 }
        let queue = s.selectedQueue
        func field(_ at: UInt64) -> (value: UInt64, width: UInt64)? {
            switch at {
            case 0x00: (UInt64(s.deviceFeatureSelect), 4)
            case 0x04: (s.deviceFeatureSelect < 2 ? offeredFeatures >> (32 * UInt64(s.deviceFeatureSelect)) & 0xffff_ffff : 0, 4)
            case 0x08: (UInt64(s.driverFeatureSelect), 4)
            case 0x0c: (s.driverFeatureSelect < 2 ? s.driverFeatures >> (32 * UInt64(s.driverFeatureSelect)) & 0xffff_ffff : 0, 4)
            case 0x10: (UInt64(s.configVector), 2)
            case 0x12: (UInt64(s.queues.count), 2)
            case 0x14: (UInt64(s.status), 1)
            case 0x15: (UInt64(s.configGeneration), 1)
            case 0x16: (UInt64(s.queueSelect), 2)
            case 0x18: (UInt64(queue?.size ?? 0), 2)      // 0: no such queue
            case 0x1a: (UInt64(queue?.vector ?? noVector), 2)
            case 0x1c: (queue?.enabled == true ? 1 : 0, 2)
            case 0x1e: (UInt64(queue == nil ? 0 : s.queueSelect), 2)
            case 0x20: (queue?.descriptorTable ?? 0, 8)
            case 0x28: (queue?.driverArea ?? 0, 8)
            case 0x30: (queue?.deviceArea ?? 0, 8)
            default: nil
            }
        }
        var result: UInt64 = 0
        var byte = 0
        while byte < size {
            let at = offset + UInt64(byte)
            // Find the field holding this byte: fields start at most 7 bytes before.
            var start = at
            var found: (value: UInt64, width: UInt64)?
            while true {
                if let f = field(start), at - start < f.width { found = f; break }
                if start == 0 || at - start >= 7 { break }
                start -= 1
            }
            if let f = found {
                let b = (f.value >> (8 * (at - start))) & 0xff
                result |= b << (8 * UInt64(byte))
            }
            byte += 1
        }
        return result
    }

    /// Writes of a field's own width (or one half of a 64-bit field) are
    /// taken; anything else is ignored.
    func commonWrite(offset: UInt64, size: Int, value: UInt64, _ s: inout TransportState<Memory>) {
        let v32 = UInt32(truncatingIfNeeded: value)
        let v16 = UInt16(truncatingIfNeeded: value)
        switch (offset, size) {
        case (0x00, 4): s.deviceFeatureSelect = v32
        case (0x08, 4): s.driverFeatureSelect = v32
        case (0x0c, 4):
            // Features are fixed once FEATURES_OK is accepted (§3.1.1).
            guard s.status & DeviceStatus.featuresOK == 0, s.driverFeatureSelect < 2 else { return }
            let shift = 32 * UInt64(s.driverFeatureSelect)
            s.driverFeatures = s.driverFeatures & ~(0xffff_ffff << shift) | UInt64(v32) << shift
        case (0x10, 2): s.configVector = validVector(v16, s)
        case (0x14, 1): writeStatus(UInt8(truncatingIfNeeded: value), &s)
        case (0x16, 2): s.queueSelect = v16
        case (0x18, 2):
            guard let q = configurableQueue(s) else { return }
            q.size = v16        // checked when the queue is enabled
        case (0x1a, 2):
            guard let q = s.selectedQueue else { return }
            q.vector = validVector(v16, s)
        case (0x1c, 2):
            // Only 1 means anything; disabling needs a reset (no VIRTIO_F_RING_RESET).
            guard v16 == 1, let q = configurableQueue(s) else { return }
            enable(q, &s)
        case (0x20, 4), (0x24, 4), (0x28, 4), (0x2c, 4), (0x30, 4), (0x34, 4), (0x20, 8), (0x28, 8), (0x30, 8):
            guard let q = configurableQueue(s) else { return }
            let field = (offset - 0x20) / 8
            let high = offset % 8 == 4
            func merge(_ old: UInt64) -> UInt64 {
                if size == 8 { return value }
                return high ? old & 0xffff_ffff | UInt64(v32) << 32 : old & 0xffff_ffff_0000_0000 | UInt64(v32)
            }
            switch field {
            case 0: q.descriptorTable = merge(q.descriptorTable)
            case 1: q.driverArea = merge(q.driverArea)
            default: q.deviceArea = merge(q.deviceArea)
            }
        default:
            break       // read-only fields and odd shapes
        }
    }

    /// A vector the table has, or NO_VECTOR: a driver reading NO_VECTOR back
    /// knows the mapping failed (§4.1.5.1.2).
    private func validVector(_ vector: UInt16, _ s: TransportState<Memory>) -> UInt16 {
        Int(vector) < s.msix.count ? vector : noVector
    }

    /// The selected queue, if the driver may still change it: features
    /// negotiated, queue not yet enabled, device not failed.
    private func configurableQueue(_ s: TransportState<Memory>) -> QueueSlot<Memory>? {
        guard s.status & DeviceStatus.featuresOK != 0, s.status & DeviceStatus.needsReset == 0,
              let q = s.selectedQueue, !q.enabled else { return nil }
        return q
    }

    /// Hands the driver's settings to the core, which checks size and rings.
    private func enable(_ q: QueueSlot<Memory>, _ s: inout TransportState<Memory>) {
        q.virtqueue.configuration = VirtqueueConfiguration(
            size: q.size, descriptorTable: q.descriptorTable, driverArea: q.driverArea,
            deviceArea: q.deviceArea, features: VirtqueueFeatures(negotiated: s.negotiatedFeatures))
        do {
            try q.virtqueue.enable()
            q.enabled = true
        } catch {
            requireReset("queue \(s.queueSelect) refused: \(error)", &s)
        }
    }

    /// The device status state machine (§2.1, §3.1.1). Writing 0 resets.
    /// Otherwise bits only accumulate; FEATURES_OK sticks only for an
    /// acceptable feature set, DRIVER_OK only after FEATURES_OK; NEEDS_RESET
    /// is the device's to set.
    private func writeStatus(_ value: UInt8, _ s: inout TransportState<Memory>) {
        if value == 0 {
            reset(&s)
            return
        }
        let old = s.status
        let kept = old & ~DeviceStatus.needsReset
        guard value & kept == kept else { return }      // clearing a bit takes a reset
        var new = value & ~DeviceStatus.needsReset | old & DeviceStatus.needsReset
        let adding = new & ~old
        if adding & DeviceStatus.featuresOK != 0 {
            let acceptable = new & DeviceStatus.driver != 0
                && s.driverFeatures & ~offeredFeatures == 0
                && s.driverFeatures & VirtioFeature.version1 != 0
            if acceptable {
                s.negotiatedFeatures = s.driverFeatures
            } else {
                new &= ~DeviceStatus.featuresOK
            }
        }
        if adding & DeviceStatus.driverOK != 0 && new & DeviceStatus.featuresOK == 0 {
            new &= ~DeviceStatus.driverOK
        }
        s.status = new
        // Buffers made available before DRIVER_OK get looked at now.
        if new & ~old & DeviceStatus.driverOK != 0 { wake() }
    }

    /// Device reset: every register back to its initial value, every queue
    /// disabled, the device model's request state dropped.
    func reset(_ s: inout TransportState<Memory>) {
        s.status = 0
        s.deviceFeatureSelect = 0
        s.driverFeatureSelect = 0
        s.driverFeatures = 0
        s.negotiatedFeatures = 0
        s.configVector = noVector
        s.queueSelect = 0
        s.isr = 0
        for q in s.queues { q.reset() }
        device.reset()
    }
}
