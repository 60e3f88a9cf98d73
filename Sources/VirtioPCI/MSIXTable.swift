/// A function's MSI-X table and pending bits (PCI 3.0 §6.8.2), with the
/// capability's enable and function-mask bits.
///
/// The table is guest-written: an entry's address and data are whatever the
/// driver stored, and KVM is the one to judge them when they are signalled.
struct MSIXTable {
    struct Entry {
        var addressLow: UInt32 = 0
        var addressHigh: UInt32 = 0
        var data: UInt32 = 0
        /// Vector control; bit 0 masks the vector. Masked at reset.
        var control: UInt32 = 1
        var isMasked: Bool { control & 1 != 0 }
        var address: UInt64 { UInt64(addressHigh) << 32 | UInt64(addressLow) }
    }

    static let entryBytes: UInt64 = 16
    static let enableBit: UInt16 = 0x8000
    static let functionMaskBit: UInt16 = 0x4000

    private(set) var entries: [Entry]
    private(set) var pending: UInt64 = 0
    /// The capability's message control bits the driver sets (enable, function mask).
    private(set) var control: UInt16 = 0

    init(vectors: Int) {
        entries = Array(repeating: Entry(), count: max(1, min(vectors, VirtioPCILayout.maxVectors)))
    }

    var count: Int { entries.count }
    var isEnabled: Bool { control & Self.enableBit != 0 }

    /// Message control as read: table size - 1 in bits 10:0.
    var messageControl: UInt16 { control | UInt16(entries.count - 1) }

    mutating func reset() {
        for i in entries.indices { entries[i] = Entry() }
        pending = 0
        control = 0
    }

    /// A write of message control; returns the messages that became
    /// deliverable (pending vectors now unmasked).
    mutating func writeMessageControl(_ value: UInt16, deliver: (Entry) -> Void) {
        control = value & (Self.enableBit | Self.functionMaskBit)
        flushPending(deliver: deliver)
    }

    /// A table read of `size` (4 or 8) at byte `offset` in the table; nil
    /// for an access outside it or of another shape (reads as zero).
    func read(offset: UInt64, size: Int) -> UInt64? {
        guard size == 4 || size == 8, offset % UInt64(size) == 0,
              offset < UInt64(entries.count) * Self.entryBytes else { return nil }
        let entry = entries[Int(offset / Self.entryBytes)]
        let words = [entry.addressLow, entry.addressHigh, entry.data, entry.control]
        let word = Int(offset % Self.entryBytes) / 4
        return size == 4 ? UInt64(words[word]) : UInt64(words[word + 1]) << 32 | UInt64(words[word])
    }

    /// A table write; unmasking a vector with a pending message delivers it.
    mutating func write(offset: UInt64, size: Int, value: UInt64, deliver: (Entry) -> Void) {
        guard size == 4 || size == 8, offset % UInt64(size) == 0,
              offset < UInt64(entries.count) * Self.entryBytes else { return }
        let index = Int(offset / Self.entryBytes)
        var word = Int(offset % Self.entryBytes) / 4
        var remaining = value
        for _ in 0..<(size / 4) {
            let v = UInt32(truncatingIfNeeded: remaining)
            switch word {
            case 0: entries[index].addressLow = v
            case 1: entries[index].addressHigh = v
            case 2: entries[index].data = v
            default: entries[index].control = v & 1     // other bits reserved
            }
            word += 1
            remaining >>= 32
        }
        flushPending(deliver: deliver)
    }

    /// Puts back a saved table: the entries (as many as this table has),
    /// pending bits and message control. Nil, changing nothing, for values
    /// the table cannot hold: another size, reserved control bits, pending
    /// bits beyond the table; the reason is left in `problem`.
    mutating func restore(entries saved: [Entry], pending savedPending: UInt64, control savedControl: UInt16,
                          problem: inout String) -> Bool {
        guard saved.count == entries.count else {
            problem = "\(saved.count) MSI-X vectors saved, the table has \(entries.count)"
            return false
        }
        if let bad = saved.firstIndex(where: { $0.control & ~1 != 0 }) {
            problem = "MSI-X vector \(bad) control 0x\(String(saved[bad].control, radix: 16)) has reserved bits"
            return false
        }
        let tableBits: UInt64 = entries.count >= 64 ? ~0 : (1 << UInt64(entries.count)) - 1
        guard savedPending & ~tableBits == 0 else {
            problem = "MSI-X pending bits 0x\(String(savedPending, radix: 16)) beyond a table of \(entries.count)"
            return false
        }
        guard savedControl & ~(Self.enableBit | Self.functionMaskBit) == 0 else {
            problem = "MSI-X message control 0x\(String(savedControl, radix: 16)) has bits the driver cannot set"
            return false
        }
        entries = saved
        pending = savedPending
        control = savedControl
        return true
    }

    /// Pending bits: 64 vectors fit the first qword.
    func readPending(offset: UInt64, size: Int) -> UInt64 {
        guard offset == 0 else { return 0 }
        return size == 4 ? pending & 0xffff_ffff : pending
    }

    /// Signals `vector`: delivered now, or remembered while masked. Vectors
    /// out of the table (or NO_VECTOR) and a disabled MSI-X deliver nothing.
    mutating func signal(_ vector: UInt16, deliver: (Entry) -> Void) {
        guard isEnabled, Int(vector) < entries.count else { return }
        if control & Self.functionMaskBit != 0 || entries[Int(vector)].isMasked {
            pending |= 1 << UInt64(vector)
        } else {
            deliver(entries[Int(vector)])
        }
    }

    private mutating func flushPending(deliver: (Entry) -> Void) {
        guard pending != 0, isEnabled, control & Self.functionMaskBit == 0 else { return }
        for i in entries.indices where pending & (1 << UInt64(i)) != 0 && !entries[i].isMasked {
            pending &= ~(1 << UInt64(i))
            deliver(entries[i])
        }
    }
}
