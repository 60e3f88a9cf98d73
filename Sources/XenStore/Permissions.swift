/// One entry of a node's permission list. On the wire it is a letter and a
/// domain id: `n5`, `r0`, `w7`, `b3`.
///
/// A node's list is interpreted as xenstored does: the first entry names the
/// **owner** and the **default** access for every domain not listed; later
/// entries are per-domain exceptions. The owner, domain 0 and a domain whose
/// target (`XS_SET_TARGET`) is the owner may do anything.
public struct XenStorePermission: Hashable, Sendable, CustomStringConvertible {
    public enum Access: UInt8, Sendable {
        case none = 0x6e  // "n"
        case read = 0x72  // "r"
        case write = 0x77  // "w"
        case readWrite = 0x62  // "b" (both)

        var rights: XenStoreRights {
            switch self {
            case .none: []
            case .read: .read
            case .write: .write
            case .readWrite: [.read, .write]
            }
        }
    }

    /// A domain id, 0...65535.
    public var domain: Int
    public var access: Access

    public init(domain: Int, access: Access) {
        self.domain = domain
        self.access = access
    }

    /// Parses `n5`-style text; nil if malformed.
    public init?(_ text: String) {
        guard let p = Self.parse(Array(text.utf8)[...]) else { return nil }
        self = p
    }

    static func parse(_ bytes: ArraySlice<UInt8>) -> XenStorePermission? {
        guard let letter = bytes.first, let access = Access(rawValue: letter),
              let id = parseDecimal(bytes.dropFirst(), maxDigits: 5), id <= 0xffff
        else { return nil }
        return XenStorePermission(domain: id, access: access)
    }

    public var description: String {
        String(UnicodeScalar(access.rawValue)) + String(domain)
    }

    var domainID: UInt16 { UInt16(truncatingIfNeeded: domain) }
}

struct XenStoreRights: OptionSet, Sendable {
    let rawValue: UInt8
    static let read = XenStoreRights(rawValue: 1)
    static let write = XenStoreRights(rawValue: 2)
    static let owner = XenStoreRights(rawValue: 4)
    static let all: XenStoreRights = [.read, .write, .owner]
}

/// Who is asking: a domain, and the domain it acts for if dom0 gave it a target.
struct Requester: Sendable {
    var domain: UInt16
    var target: UInt16?

    var isPrivileged: Bool { domain == 0 }

    static let dom0 = Requester(domain: 0, target: nil)

    /// xenstored's `perm_for_conn`.
    func rights(_ perms: [XenStorePermission]) -> XenStoreRights {
        guard let first = perms.first else { return isPrivileged ? .all : [] }
        let owner = first.domainID
        if isPrivileged || owner == domain || (target != nil && owner == target) { return .all }
        for p in perms.dropFirst() where p.domainID == domain || (target != nil && p.domainID == target) {
            return p.access.rights
        }
        return first.access.rights
    }
}
