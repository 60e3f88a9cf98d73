import Glibc
import KVM

/// Xen-style page typing for a PV guest's page tables, the core of its
/// isolation: a frame in use as a page table (L1–L4) has no writable mapping,
/// and every entry of a validated table points only at the guest's own frames
/// (or the few hypervisor frames it may map, like shared_info). Counts are
/// references from validated parent entries, pins, and CR3 loads; a frame
/// whose count drops to zero is devalidated and becomes ordinary memory.
///
/// Every entry the VMM writes into a validated table is recorded in the
/// caller's replay list: KVM's shadow MMU only notices writes made by guest
/// instructions, so the trampoline re-stores each one before the guest runs.
struct PageTypes {
    enum Kind: UInt8 { case none = 0, l1 = 1, l2 = 2, l3 = 3, l4 = 4, descriptor = 5 }

    let frames: UInt64
    // Per-frame tables in untouched anonymous memory: only the entries of
    // frames that become tables or get mapped cost resident memory.
    private(set) var kind: ZeroedTable<UInt8>
    private(set) var typeCount: ZeroedTable<UInt32>
    private(set) var writableCount: ZeroedTable<UInt32>
    private(set) var pinned: ZeroedTable<Bool>
    /// Frames the guest gave back (XENMEM_decrease_reservation): not its own
    /// until it populates them again, so no new mapping or table may name them.
    private(set) var ballooned: ZeroedTable<Bool>
    private(set) var balloonedCount: UInt64 = 0
    /// Hypervisor frames outside RAM the guest may map (shared_info), always RW.
    var extraFrames: Set<UInt64> = []
    /// L4 entries for slots 256–258, installed into every validated L4.
    var hypervisorL4: [(slot: Int, entry: UInt64)] = []

    init(frames: UInt64) {
        self.frames = frames
        kind = ZeroedTable(count: Int(frames))
        typeCount = ZeroedTable(count: Int(frames))
        writableCount = ZeroedTable(count: Int(frames))
        pinned = ZeroedTable(count: Int(frames))
        ballooned = ZeroedTable(count: Int(frames))
    }

    enum Failure: Error, CustomStringConvertible {
        case notOwned(frame: UInt64)
        case typeConflict(frame: UInt64, has: UInt8, wanted: UInt8)
        case writableMapping(frame: UInt64)
        case superpage(frame: UInt64, level: Int)
        case notPinned(frame: UInt64)
        var description: String {
            switch self {
            case .notOwned(let f): "maps frame 0x\(String(f, radix: 16)), which the guest does not own"
            case .typeConflict(let f, let h, let w): "frame 0x\(String(f, radix: 16)) is in use as type \(h), not \(w)"
            case .writableMapping(let f): "frame 0x\(String(f, radix: 16)) is a page table and cannot be mapped writable"
            case .superpage(let f, let l): "superpage entry at level \(l) in frame 0x\(String(f, radix: 16))"
            case .notPinned(let f): "frame 0x\(String(f, radix: 16)) is not pinned"
            }
        }
    }

    /// The guest may map or type `frame`: it is guest RAM not ballooned out.
    @inline(__always) func owns(_ frame: UInt64) -> Bool { frame < frames && !ballooned[Int(frame)] }

    /// `frame` is guest RAM, owned now or not: references taken while it was
    /// owned are still dropped after it is ballooned out.
    @inline(__always) func inRAM(_ frame: UInt64) -> Bool { frame < frames }

    // MARK: Ballooning

    /// The guest gives `frame` back. Refused for a frame in use as a page
    /// table or descriptor page; a leftover mapping keeps working (as in
    /// Xen, where the page is freed when its last reference goes).
    mutating func giveBack(_ frame: UInt64) -> Bool {
        guard owns(frame), typeCount[Int(frame)] == 0 else { return false }
        ballooned[Int(frame)] = true
        balloonedCount += 1
        return true
    }

    /// The guest takes ballooned-out `frame` again.
    mutating func takeBack(_ frame: UInt64) -> Bool {
        guard inRAM(frame), ballooned[Int(frame)] else { return false }
        ballooned[Int(frame)] = false
        balloonedCount -= 1
        return true
    }

    func kindOf(_ frame: UInt64) -> Kind {
        frame < frames ? Kind(rawValue: kind[Int(frame)]) ?? .none : .none
    }

    func isPageTable(_ frame: UInt64) -> Bool {
        frame < frames && typeCount[Int(frame)] > 0 && (1...4).contains(kind[Int(frame)])
    }

    /// Takes a type reference, validating the frame's contents on first use.
    mutating func get(_ frame: UInt64, as wanted: Kind, memory: GuestMemory, replay: inout [UInt64]) -> Failure? {
        guard owns(frame) else { return .notOwned(frame: frame) }
        let i = Int(frame)
        if typeCount[i] > 0 {
            guard kind[i] == wanted.rawValue else {
                return .typeConflict(frame: frame, has: kind[i], wanted: wanted.rawValue)
            }
            typeCount[i] += 1
            return nil
        }
        if wanted != .descriptor && writableCount[i] > 0 { return .writableMapping(frame: frame) }
        if wanted == .descriptor && writableCount[i] > 0 { return .writableMapping(frame: frame) }
        // Mark before validating so a table that (illegally) refers to itself
        // conflicts instead of recursing forever.
        kind[i] = wanted.rawValue
        typeCount[i] = 1
        if let failure = validate(frame, as: wanted, memory: memory, replay: &replay) {
            kind[i] = 0
            typeCount[i] = 0
            return failure
        }
        return nil
    }

    /// Drops a type reference; at zero the table's own references are released.
    mutating func put(_ frame: UInt64, memory: GuestMemory) {
        guard inRAM(frame) else { return }
        let i = Int(frame)
        guard typeCount[i] > 0 else { return }
        typeCount[i] -= 1
        if typeCount[i] == 0 {
            let k = Kind(rawValue: kind[i]) ?? .none
            kind[i] = 0
            devalidate(frame, as: k, memory: memory)
        }
    }

    mutating func pin(_ frame: UInt64, as wanted: Kind, memory: GuestMemory, replay: inout [UInt64]) -> Failure? {
        guard owns(frame) else { return .notOwned(frame: frame) }
        if pinned[Int(frame)] {
            // Xen refuses a second pin; Linux never does it.
            return .typeConflict(frame: frame, has: kind[Int(frame)], wanted: wanted.rawValue)
        }
        if let f = get(frame, as: wanted, memory: memory, replay: &replay) { return f }
        pinned[Int(frame)] = true
        return nil
    }

    mutating func unpin(_ frame: UInt64, memory: GuestMemory) -> Failure? {
        guard inRAM(frame), pinned[Int(frame)] else { return .notPinned(frame: frame) }
        pinned[Int(frame)] = false
        put(frame, memory: memory)
        return nil
    }

    // MARK: Entries

    /// The entry as the hardware must see it: U on every level (the kernel runs
    /// at CPL3), accessed on upper levels; cache-control bits are not the guest's.
    @inline(__always)
    static func adjusted(_ e: UInt64, level: Int) -> UInt64 {
        guard PTE.isPresent(e) else { return e }
        var v = e | PTE.user
        if level > 1 { v |= PTE.accessed; v &= ~PTE.global }
        else { v &= ~(PTE.writeThrough | PTE.cacheDisable | PTE.pageSize) }
        return v
    }

    /// Takes the references entry `e` at `level` needs.
    mutating func acquire(_ e: UInt64, level: Int, in table: UInt64, memory: GuestMemory, replay: inout [UInt64]) -> Failure? {
        guard PTE.isPresent(e) else { return nil }
        let target = PTE.frame(e)
        if level == 1 {
            if extraFrames.contains(target) { return nil }
            guard owns(target) else { return .notOwned(frame: target) }
            if e & PTE.writable != 0 {
                let t = Int(target)
                if typeCount[t] > 0 && kind[t] != 0 { return .writableMapping(frame: target) }
                writableCount[t] += 1
            }
            return nil
        }
        if e & PTE.pageSize != 0 { return .superpage(frame: table, level: level) }
        return get(target, as: Kind(rawValue: UInt8(level - 1))!, memory: memory, replay: &replay)
    }

    mutating func release(_ e: UInt64, level: Int, memory: GuestMemory) {
        guard PTE.isPresent(e) else { return }
        let target = PTE.frame(e)
        if level == 1 {
            if e & PTE.writable != 0, inRAM(target), writableCount[Int(target)] > 0 {
                writableCount[Int(target)] -= 1
            }
            return
        }
        put(target, memory: memory)
    }

    private func isHypervisorSlot(_ index: Int, level: Int) -> Bool {
        level == 4 && Layout.hypervisorSlots.contains(index)
    }

    private mutating func validate(_ frame: UInt64, as k: Kind, memory: GuestMemory, replay: inout [UInt64]) -> Failure? {
        guard k != .none, k != .descriptor else { return nil }
        let level = Int(k.rawValue)
        let base = frame << 12
        let entries = memory.pointer(base, length: 4096)!.assumingMemoryBound(to: UInt64.self)
        for idx in 0..<512 {
            if isHypervisorSlot(idx, level: level) { continue }
            let e = UInt64(littleEndian: entries[idx])
            if let failure = acquire(e, level: level, in: frame, memory: memory, replay: &replay) {
                // Undo what this table already took.
                for undo in 0..<idx where !isHypervisorSlot(undo, level: level) {
                    release(UInt64(littleEndian: entries[undo]), level: level, memory: memory)
                }
                return failure
            }
        }
        // Adjust entries for the hardware and record them all: KVM may hold a
        // stale shadow of this frame from an earlier life as a page table.
        for idx in 0..<512 {
            if isHypervisorSlot(idx, level: level) { continue }
            let e = UInt64(littleEndian: entries[idx])
            let a = PageTypes.adjusted(e, level: level)
            if a != e { entries[idx] = a.littleEndian }
            if e != 0 { replay.append(base + UInt64(idx) * 8) }
        }
        if level == 4 {
            for idx in Layout.hypervisorSlots { entries[idx] = 0 }
            for (slot, e) in hypervisorL4 {
                entries[slot] = e.littleEndian
                replay.append(base + UInt64(slot) * 8)
            }
        }
        return nil
    }

    private mutating func devalidate(_ frame: UInt64, as k: Kind, memory: GuestMemory) {
        guard k != .none, k != .descriptor else { return }
        let level = Int(k.rawValue)
        let entries = memory.pointer(frame << 12, length: 4096)!.assumingMemoryBound(to: UInt64.self)
        for idx in 0..<512 where !isHypervisorSlot(idx, level: level) {
            release(UInt64(littleEndian: entries[idx]), level: level, memory: memory)
        }
    }

    /// Writes entry `index` of table `frame` (which may or may not be a validated
    /// table) the way mmu_update does: validated tables check and take the new
    /// entry's references before dropping the old one's.
    mutating func update(frame: UInt64, index: Int, value: UInt64, preserveAD: Bool,
                         memory: GuestMemory, replay: inout [UInt64]) -> Failure? {
        guard owns(frame) || extraFrames.contains(frame) else { return .notOwned(frame: frame) }
        let address = (frame << 12) + UInt64(index) * 8
        guard let p = memory.pointer(address, length: 8) else {
            return .notOwned(frame: frame)   // shared_info is not a table; refuse
        }
        let entry = p.assumingMemoryBound(to: UInt64.self)
        let old = UInt64(littleEndian: entry.pointee)
        let k = kindOf(frame)
        guard isPageTable(frame) else {
            // Ordinary memory: a plain write. It may still hold a stale KVM
            // shadow from an earlier life as a table; validation replays it.
            if typeCount[Int(frame)] > 0 && k == .descriptor {
                return .typeConflict(frame: frame, has: k.rawValue, wanted: 0)
            }
            entry.pointee = value.littleEndian
            return nil
        }
        let level = Int(k.rawValue)
        if isHypervisorSlot(index, level: level) { return nil }   // silently ignored, as Xen
        var new = value
        if preserveAD { new |= old & (PTE.accessed | PTE.dirty) }
        if let f = acquire(new, level: level, in: frame, memory: memory, replay: &replay) { return f }
        new = PageTypes.adjusted(new, level: level)
        entry.pointee = new.littleEndian
        replay.append(address)
        release(old, level: level, memory: memory)
        return nil
    }

}

/// A fixed-size table of trivially-copyable values, zero-initialised by the
/// kernel (anonymous mmap): pages nobody writes stay unbacked. One owner; the
/// memory lives as long as the process's domain (unmapped with it).
struct ZeroedTable<Element: BitwiseCopyable> {
    private let storage: Storage

    final class Storage {
        let base: UnsafeMutablePointer<Element>
        let bytes: Int
        init(count: Int) {
            bytes = max(1, count * MemoryLayout<Element>.stride)
            let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            precondition(p != MAP_FAILED && p != nil, "cannot map a page-type table")
            base = p!.bindMemory(to: Element.self, capacity: count)
        }
        deinit { munmap(base, bytes) }
    }

    let count: Int

    init(count: Int) {
        self.count = count
        storage = Storage(count: count)
    }

    subscript(i: Int) -> Element {
        get { storage.base[i] }
        nonmutating set { storage.base[i] = newValue }
    }
}
