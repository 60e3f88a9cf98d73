import Machine

/// The function's PCI configuration space: a type-0 header, BAR0, and the
/// capability list (four virtio structures, then MSI-X).
extension VirtioPCITransport {
    static var vendorID: UInt16 { 0x1af4 }
    /// Spec §4.1.2.1: non-transitional devices SHOULD use subsystem IDs of 0x40 or more.
    static var subsystemID: UInt16 { 0x40 }

    /// The header fields and capabilities that never change.
    static func makeConfigTemplate(device: any VirtioDevice, queueCount: Int) -> [UInt8] {
        var c = [UInt8](repeating: 0, count: 256)
        func put16(_ v: UInt16, _ at: Int) { c[at] = UInt8(v & 0xff); c[at + 1] = UInt8(v >> 8) }
        func put32(_ v: UInt32, _ at: Int) { put16(UInt16(v & 0xffff), at); put16(UInt16(v >> 16), at + 2) }
        put16(vendorID, 0x00)
        put16(device.type.pciDeviceID, 0x02)
        put16(0x0010, 0x06)                                 // status: capability list
        put32(device.type.pciClass << 8 | 1, 0x08)          // class, revision 1 (modern)
        put16(vendorID, 0x2c)
        put16(subsystemID, 0x2e)
        c[0x34] = VirtioPCILayout.capabilitiesStart
        c[0x3d] = 0                                         // no INTx pin: MSI-X only

        /// virtio_pci_cap: vendor cap, next, length, cfg_type, bar 0, id, padding, offset, length.
        func virtioCap(at p: UInt8, next: UInt8, length: UInt8, type: UInt8, offset: UInt64, size: UInt64) {
            let i = Int(p)
            c[i] = 0x09; c[i + 1] = next; c[i + 2] = length; c[i + 3] = type; c[i + 4] = 0
            put32(UInt32(offset), i + 8)
            put32(UInt32(size), i + 12)
        }
        typealias L = VirtioPCILayout
        virtioCap(at: L.commonCap, next: L.notifyCap, length: 16, type: 1,
                  offset: L.commonOffset, size: L.commonLength)
        virtioCap(at: L.notifyCap, next: L.isrCap, length: 20, type: 2,
                  offset: L.notifyOffset, size: UInt64(max(queueCount, 1)) * UInt64(L.notifyMultiplier))
        put32(L.notifyMultiplier, Int(L.notifyCap) + 16)
        virtioCap(at: L.isrCap, next: L.deviceCap, length: 16, type: 3, offset: L.isrOffset, size: L.isrLength)
        virtioCap(at: L.deviceCap, next: L.msixCap, length: 16, type: 4,
                  offset: L.deviceOffset, size: UInt64(max(device.configSpace.count, 1)))
        let m = Int(L.msixCap)
        c[m] = 0x11; c[m + 1] = 0                           // MSI-X, end of list
        put32(UInt32(L.msixTableOffset), m + 4)             // BIR 0
        put32(UInt32(L.msixPBAOffset), m + 8)               // BIR 0
        return c
    }

    public func configRead(offset: UInt16, size: Int) -> UInt32 {
        guard offset < 256, size == 1 || size == 2 || size == 4 else { return 0 }
        let dword = state.withLock { configDword(Int(offset & ~3), $0) }
        let value = dword >> (8 * UInt32(offset & 3))
        return size == 4 ? value : value & ((1 << (8 * UInt32(size))) - 1)
    }

    public func configWrite(offset: UInt16, size: Int, value: UInt32) {
        guard offset < 256, size == 1 || size == 2 || size == 4, Int(offset & 3) + size <= 4 else { return }
        let dwordOffset = Int(offset & ~3)
        let shift = 8 * UInt32(offset & 3)
        let lanes: UInt32 = (size == 4 ? 0xffff_ffff : (1 << (8 * UInt32(size))) - 1) << shift
        state.withLock { s in
            // Merge the written bytes into the register's dword, then apply
            // the whole dword: a byte write to a BAR behaves as on hardware.
            let merged = configDword(dwordOffset, s) & ~lanes | (value << shift) & lanes
            switch dwordOffset {
            case 0x04 where lanes & 0xffff != 0:
                s.command = UInt16(truncatingIfNeeded: merged) & PCICommand.writable
                updateDoorbells(&s)
            case 0x10 where lanes != 0:
                let low = UInt64(merged) & 0xffff_fff0 & ~(Self.barSize - 1)
                s.barAddress = s.barAddress & 0xffff_ffff_0000_0000 | low
                updateDoorbells(&s)
            case 0x14:
                s.barAddress = UInt64(merged) << 32 | s.barAddress & 0xffff_ffff
                updateDoorbells(&s)
            case 0x3c where lanes & 0xff != 0:
                s.interruptLine = UInt8(truncatingIfNeeded: merged)
            case Int(VirtioPCILayout.msixCap) where lanes & 0xffff_0000 != 0:
                s.msix.writeMessageControl(UInt16(truncatingIfNeeded: merged >> 16)) {
                    interrupts.signalMSI(address: $0.address, data: $0.data)
                }
            default:
                break       // read-only: IDs, class, capabilities, status bits
            }
        }
    }

    /// The dword at `offset` (a multiple of 4) as the guest reads it.
    func configDword(_ offset: Int, _ s: TransportState<Memory>) -> UInt32 {
        switch offset {
        case 0x04:
            return UInt32(template32(0x04) & 0xffff_0000) | UInt32(s.command)
        case 0x10:
            return UInt32(truncatingIfNeeded: s.barAddress) | 0x4      // 64-bit memory, not prefetchable
        case 0x14:
            return UInt32(truncatingIfNeeded: s.barAddress >> 32)
        case 0x3c:
            return template32(0x3c) & ~0xff | UInt32(s.interruptLine)
        case Int(VirtioPCILayout.msixCap):
            return template32(offset) & 0xffff | UInt32(s.msix.messageControl) << 16
        default:
            return template32(offset)
        }
    }

    private func template32(_ offset: Int) -> UInt32 {
        UInt32(configTemplate[offset]) | UInt32(configTemplate[offset + 1]) << 8
            | UInt32(configTemplate[offset + 2]) << 16 | UInt32(configTemplate[offset + 3]) << 24
    }

    // MARK: Doorbells

    /// Where BAR0 is decoded now, if it is: memory decoding on, an address
    /// assigned, and the whole BAR below 2^64.
    func decodedBase(_ s: TransportState<Memory>) -> UInt64? {
        guard s.decodesMemory, s.barAddress != 0, s.barAddress <= UInt64.max - Self.barSize else { return nil }
        return s.barAddress
    }

    /// Moves the ioeventfd bindings to where the BAR now is.
    func updateDoorbells(_ s: inout TransportState<Memory>) {
        guard let doorbells else { return }
        let wanted = decodedBase(s)
        guard wanted != s.boundDoorbellBase else { return }
        if let old = s.boundDoorbellBase { unbindDoorbells(base: old, count: s.queues.count) }
        s.boundDoorbellBase = nil
        guard let base = wanted else { return }
        for i in 0..<s.queues.count {
            let address = base + VirtioPCILayout.notifyOffset + UInt64(i) * UInt64(VirtioPCILayout.notifyMultiplier)
            guard doorbells.bind(address: address, length: 2, eventFD: kick) else {
                // Partly bound is worse than not at all: doorbells fall back to MMIO exits.
                unbindDoorbells(base: base, count: i)
                return
            }
        }
        s.boundDoorbellBase = base
    }

    func unbindDoorbells(base: UInt64, count: Int) {
        for i in 0..<count {
            let address = base + VirtioPCILayout.notifyOffset + UInt64(i) * UInt64(VirtioPCILayout.notifyMultiplier)
            doorbells?.unbind(address: address, length: 2, eventFD: kick)
        }
    }
}
