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

    public var description: String {
        switch self {
        case .refOutOfRange(let r, let n): "grant \(r) is beyond the \(n) entries set up"
        case .notPermitAccess(let r, let f): "grant \(r) does not permit access (flags \(f))"
        case .otherDomain(let r, let d): "grant \(r) is for domain \(d), not the backend's"
        case .readOnly(let r): "grant \(r) is read-only but the backend must write"
        case .frameNotGuestRAM(let r, let f): "grant \(r) names frame \(f), which is not the guest's RAM"
        }
    }
}

/// A v1 grant table as it lies in memory (`grant_table.h`): 8-byte entries
/// `{ u16 flags; u16 domid; u32 frame }`, written by the guest.
///
/// Claiming an entry for the backend domain checks it (permit-access type,
/// the backend's domain id, not read-only when the backend writes), sets
/// GTF_reading (and GTF_writing) with a compare-and-swap, since the guest
/// changes the flags concurrently, then reads the frame. Releasing clears
/// the in-use flags. No allocation, no Foundation.
public struct GrantEntries {
    /// Entry flags (`GTF_*`).
    public static let permitAccess: UInt16 = 1, typeMask: UInt16 = 3
    public static let readOnly: UInt16 = 1 << 2, reading: UInt16 = 1 << 3, writing: UInt16 = 1 << 4

    /// The first entry (guest-shared memory).
    public let base: UnsafeMutableRawPointer

    public init(base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// Claims entry `ref` (of the `entries` the guest has set up) for
    /// `domain`; returns the granted frame. The frame still has to be checked
    /// against the guest's RAM by the caller.
    public func claim(_ ref: UInt32, writable: Bool, entries: Int, domain: UInt16 = 0) -> Result<UInt64, GrantRefusal> {
        guard Int(ref) < entries else { return .failure(.refOutOfRange(ref: ref, entries: entries)) }
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
        // on the guest cannot take the grant back.
        return .success(UInt64((entry + 4).load(as: UInt32.self)))
    }

    /// Ends a claim: clears the in-use flags.
    public func release(_ ref: UInt32, entries: Int) {
        guard Int(ref) < entries else { return }
        _ = ckvm_atomic_and16(base + Int(ref) * 8, ~(Self.reading | Self.writing))
    }
}

/// What the backends need from a domain's grants: a page the guest granted
/// to the backend domain, claimed (the guest cannot end the access) until
/// released. `PVDomain` is one; `HeapGrantDomain` is one in plain memory.
public protocol GrantMapper: AnyObject {
    /// The 4 KiB page grant `ref` names, claimed for reading (and writing,
    /// if `writable`), or why not.
    func claim(grant ref: UInt32, writable: Bool) -> Result<UnsafeMutableRawPointer, GrantRefusal>
    /// Ends a claim `claim(grant:writable:)` made.
    func release(grant ref: UInt32)
}

extension GrantMapper {
    /// `claim(grant:writable:)` without the reason.
    @inline(__always)
    public func claimGrant(_ ref: UInt32, writable: Bool) -> UnsafeMutableRawPointer? {
        if case .success(let page) = claim(grant: ref, writable: writable) { return page }
        return nil
    }

    @inline(__always)
    public func releaseGrant(_ ref: UInt32) { release(grant: ref) }
}
