import Machine

/// BAR0: the memory-mapped structures, dispatched by offset.
extension VirtioPCITransport {
    public func mmioRead(address: UInt64, size: Int) -> UInt64? {
        state.withLock { s -> UInt64? in
            guard let base = decodedBase(s), address >= base, address - base < Self.barSize else { return nil }
            let offset = address - base
            guard size == 1 || size == 2 || size == 4 || size == 8, Self.barSize - offset >= UInt64(size) else { return 0 }
            typealias L = VirtioPCILayout
            switch offset {
            case L.commonOffset..<(L.commonOffset + L.commonLength):
                return commonRead(offset: offset - L.commonOffset, size: size, s)
            case L.isrOffset..<(L.isrOffset + L.isrLength):
                // Reading ISR acknowledges it (§4.1.4.5).
                defer { s.isr = 0 }
                return offset == L.isrOffset ? UInt64(s.isr) : 0
            case L.deviceOffset..<(L.deviceOffset + L.deviceLength):
                return device.readConfig(offset: Int(offset - L.deviceOffset), size: size)
            case L.msixTableOffset..<L.msixPBAOffset:
                return s.msix.read(offset: offset - L.msixTableOffset, size: size) ?? 0
            case L.msixPBAOffset..<(L.msixPBAOffset + 8):
                return s.msix.readPending(offset: offset - L.msixPBAOffset, size: size)
            default:
                return 0        // doorbells and gaps read as zero
            }
        }
    }

    public func mmioWrite(address: UInt64, size: Int, value: UInt64) -> Bool {
        var ringDoorbell = false
        let claimed = state.withLock { s -> Bool in
            guard let base = decodedBase(s), address >= base, address - base < Self.barSize else { return false }
            let offset = address - base
            guard size == 1 || size == 2 || size == 4 || size == 8, Self.barSize - offset >= UInt64(size) else { return true }
            typealias L = VirtioPCILayout
            switch offset {
            case L.commonOffset..<(L.commonOffset + L.commonLength):
                commonWrite(offset: offset - L.commonOffset, size: size, value: value, &s)
            case L.notifyOffset..<(L.notifyOffset + UInt64(s.queues.count) * UInt64(L.notifyMultiplier)):
                // Without ioeventfd a doorbell comes here; any write to any
                // queue's doorbell wakes the thread, which looks at every queue.
                ringDoorbell = true
            case L.deviceOffset..<(L.deviceOffset + L.deviceLength):
                // The device judges the field and the access's shape.
                device.writeConfig(offset: Int(offset - L.deviceOffset), size: size, value: value)
            case L.msixTableOffset..<L.msixPBAOffset:
                s.msix.write(offset: offset - L.msixTableOffset, size: size, value: value) {
                    interrupts.signalMSI(address: $0.address, data: $0.data)
                }
            default:
                break       // ISR, pending bits
            }
            return true
        }
        if ringDoorbell { wake() }
        return claimed
    }
}

/// `size` bytes of `bytes` at `offset` as a little-endian value; bytes past
/// the end read as zero.
func littleEndian(_ bytes: [UInt8], at offset: Int, size: Int) -> UInt64 {
    var value: UInt64 = 0
    for i in 0..<size where offset + i < bytes.count {
        value |= UInt64(bytes[offset + i]) << (8 * UInt64(i))
    }
    return value
}
