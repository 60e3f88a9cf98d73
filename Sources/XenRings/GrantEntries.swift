import CKVM

/// Why a grant reference was refused to the backend.
public enum GrantRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    /// The reference is beyond the entries the guest has set up.
    case refOutOfRange(ref: UInt32, entries: Int)
    /// The entry's type is not GTF_permit_access (invalid, transfer or transitive).
    case notPermitAccess(ref: UInt32, flags: UInt16)
    /// The entry grants the page to another domain.
    case otherDomain(ref: UInt32, domid: UInt16)
    /// The backend needs to write but the grant is GTF_readonly.
    case readOnly(ref: UInt32)
    /// The entry names a frame that is not the guest's RAM (or was ballooned out).
    case frameNotGuestRAM(ref: UInt32, frame: UInt64)
    /// The grant is already claimed 65,535 times (no backend does that).
    case tooManyClaims(ref: UInt32)

    public var description: String {
        switch self {
        case .refOutOfRange(let r, let n): "grant \(r) is beyond the \(n) entries set up"
        case .notPermitAccess(let r, let f): "grant \(r) does not permit access (flags \(f))"
        case .otherDomain(let r, let d): "grant \(r) is for domain \(d), not the backend's"
        case .readOnly(let r): "grant \(r) is read-only but the backend must write"
        case .frameNotGuestRAM(let r, let f): "grant \(r) names frame \(f), which is not the guest's RAM"
        case .tooManyClaims(let r): "grant \(r) is claimed too many times"
        }
    }
}

/// A v1 grant table as it lies in memory (`grant_table.h`): 8-byte entries
/// `{ u16 flags; u16 domid; u32 frame }` written by the guest, next to a pin
/// count per entry kept by us (as Xen keeps in its active entries).
///
/// Claiming an entry for the backend domain checks it (permit-access type,
/// the backend's domain id, not read-only when the backend writes), sets
/// GTF_reading (and GTF_writing) with a compare-and-swap, since the guest
/// changes the flags concurrently, counts the claim, then reads the frame.
/// Releasing clears a flag only when the last claim that needs it ends: a
/// grant in use twice (a ring page that a request also names as a data
/// page, say) stays in use for as long as either use lasts. While a grant is
/// claimed its frame is the one read by the first claim, as in Xen's active
/// entries: a guest that rewrites the frame of a grant in use changes nothing.
///
/// Claims and releases of one table must not run concurrently with each
/// other (the owner serializes them: `GrantTable` with a mutex); the guest
/// may write the entries at any time. No allocation, no Foundation.
public struct GrantEntries {
    /// Entry flags (`GTF_*`).
    public static let permitAccess: UInt16 = 1, typeMask: UInt16 = 3
    public static let readOnly: UInt16 = 1 << 2, reading: UInt16 = 1 << 3, writing: UInt16 = 1 << 4

    /// The first entry (guest-shared memory).
    public let base: UnsafeMutableRawPointer
    /// One word per entry (ours, never the guest's): claims in bits 0-15,
    /// writable claims in bits 16-31, the frame in use in bits 32-63.
    let pins: UnsafeMutablePointer<UInt64>
    /// Entries the table can ever have (the pins' length).
    public let capacity: Int

    /// `pins` holds `capacity` zeroed words, kept for the table's lifetime.
    public init(base: UnsafeMutableRawPointer, pins: UnsafeMutablePointer<UInt64>, capacity: Int) {
        self.base = base
        self.pins = pins
        self.capacity = capacity
    }

    /// Claims entry `ref` (of the `entries` the guest has set up) for
    /// `domain`; returns the granted frame. The frame still has to be checked
    /// against the guest's RAM by the caller.
    public func claim(_ ref: UInt32, writable: Bool, entries: Int, domain: UInt16 = 0) -> Result<UInt64, GrantRefusal> {
        let limit = min(entries, capacity)
        guard Int(ref) < limit else { return .failure(.refOutOfRange(ref: ref, entries: limit)) }
        let pin = pins[Int(ref)]
        // 65,535 open claims of one grant: no backend holds that many.
        guard pin & 0xffff < 0xffff else { return .failure(.tooManyClaims(ref: ref)) }
        let entry = base + Int(ref) * 8
        var word = entry.load(as: UInt32.self)
        while true {
            let flags = UInt16(truncatingIfNeeded: word), domid = UInt16(truncatingIfNeeded: word >> 16)
            guard flags & Self.typeMask == Self.permitAccess else { return .failure(.notPermitAccess(ref: ref, flags: flags)) }
            guard domid == domain else { return .failure(.otherDomain(ref: ref, domid: domid)) }
            guard !writable || flags & Self.readOnly == 0 else { return .failure(.readOnly(ref: ref)) }
            let inUse = Self.reading | (writable ? Self.writing : 0)
            let seen = ckvm_atomic_cmpxchg32(entry, word, word | UInt32(inUse))
            if seen == word { break }
            word = seen
        }
        // The frame is read after the flags are set, as Xen does: from then
        // on the guest cannot take the grant back. A grant already claimed
        // keeps the frame its first claim read.
        let frame = pin & 0xffff != 0 ? pin >> 32 : UInt64((entry + 4).load(as: UInt32.self))
        pins[Int(ref)] = (frame << 32 | pin & 0xffff_ffff) &+ (writable ? 0x1_0001 : 1)
        return .success(frame)
    }

    /// Ends one claim of `ref`, `writable` as it was claimed. GTF_writing
    /// goes with the last writable claim, GTF_reading with the last claim.
    /// A release without a claim does nothing.
    public func release(_ ref: UInt32, writable: Bool, entries: Int) {
        guard Int(ref) < min(entries, capacity) else { return }
        let pin = pins[Int(ref)]
        guard pin & 0xffff > 0, !writable || pin >> 16 & 0xffff > 0 else { return }
        let left = pin &- (writable ? 0x1_0001 : 1)
        pins[Int(ref)] = left & 0xffff == 0 ? 0 : left
        var clear: UInt16 = 0
        if left >> 16 & 0xffff == 0 { clear |= Self.writing }
        if left & 0xffff == 0 { clear |= Self.reading }
        _ = ckvm_atomic_and16(base + Int(ref) * 8, ~clear)
    }

    /// The claims of `ref` still open: all of them, and the writable ones.
    public func pinCount(_ ref: UInt32) -> (claims: Int, writable: Int) {
        guard Int(ref) < capacity else { return (0, 0) }
        let pin = pins[Int(ref)]
        return (Int(pin & 0xffff), Int(pin >> 16 & 0xffff))
    }
}

/// What the backends need from a domain's grants: a page the guest granted
/// to the backend domain, claimed (the guest cannot end the access) until
/// released. `PVDomain` is one; `HeapGrantDomain` is one in plain memory.
public protocol GrantMapper: AnyObject {
    /// The 4 KiB page grant `ref` names, claimed for reading (and writing,
    /// if `writable`), or why not.
    func claim(grant ref: UInt32, writable: Bool) -> Result<UnsafeMutableRawPointer, GrantRefusal>
    /// Ends one claim `claim(grant:writable:)` made, with the same `writable`.
    func release(grant ref: UInt32, writable: Bool)
}

extension GrantMapper {
    /// `claim(grant:writable:)` without the reason.
    @inline(__always)
    public func claimGrant(_ ref: UInt32, writable: Bool) -> UnsafeMutableRawPointer? {
        if case .success(let page) = claim(grant: ref, writable: writable) { return page }
        return nil
    }

    @inline(__always)
    public func releaseGrant(_ ref: UInt32, writable: Bool) { release(grant: ref, writable: writable) }
}
