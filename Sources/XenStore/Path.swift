/// Xenstore path rules (docs/misc/xenstore.txt): a node name is made of
/// `A-Z a-z 0-9 - / _ @`; an absolute path starts with `/`, has no empty
/// component (`//`) and no trailing `/` except the root itself; a path
/// without the leading `/` is relative to the requesting domain's
/// `/local/domain/<domid>`. Paths starting with `@` name special watch
/// events and are accepted only where watches are.
enum XenStorePath {
    /// `XENSTORE_ABS_PATH_MAX`.
    static let absoluteMax = 3072
    /// `XENSTORE_REL_PATH_MAX`: the part below `/local/domain/<id>/`.
    static let relativeMax = 2048

    static let introduceDomain = "@introduceDomain"
    static let releaseDomain = "@releaseDomain"

    @inline(__always)
    static func isNameByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "-"), UInt8(ascii: "/"), UInt8(ascii: "_"), UInt8(ascii: "@"):
            true
        default:
            false
        }
    }

    static func domainPath(_ id: UInt16) -> String { "/local/domain/\(id)" }

    /// The canonical absolute path for `bytes` as domain `domain` sent it,
    /// and whether it was relative. Throws EINVAL for anything malformed.
    static func canonical<C: Collection>(_ bytes: C, domain: UInt16) throws(XenStoreError) -> (path: String, relative: Bool)
    where C.Element == UInt8 {
        guard let first = bytes.first, bytes.count <= absoluteMax else { throw .EINVAL }
        // "@..." names a special watch, never a node (nor a relative path).
        guard first != UInt8(ascii: "@") else { throw .EINVAL }
        for b in bytes where !isNameByte(b) { throw .EINVAL }
        let relative = first != UInt8(ascii: "/")
        var full: [UInt8]
        if relative {
            full = Array(domainPath(domain).utf8)
            full.append(UInt8(ascii: "/"))
            full.append(contentsOf: bytes)
        } else {
            full = Array(bytes)
        }
        try validateAbsolute(full)
        return (String(decoding: full, as: UTF8.self), relative)
    }

    /// A path given by host code (a Swift string), resolved like a request from `domain`.
    static func canonical(_ path: String, domain: UInt16) throws(XenStoreError) -> String {
        try canonical(Array(path.utf8), domain: domain).path
    }

    /// The shape rules for an absolute path whose bytes are all name bytes.
    static func validateAbsolute(_ p: [UInt8]) throws(XenStoreError) {
        let slash = UInt8(ascii: "/")
        guard p.first == slash, p.count <= absoluteMax else { throw .EINVAL }
        if p.count > 1 && p.last == slash { throw .EINVAL }
        var previous: UInt8 = 0
        for b in p {
            if b == slash && previous == slash { throw .EINVAL }
            guard isNameByte(b) else { throw .EINVAL }
            previous = b
        }
        // Below /local/domain/<id>/ the per-domain limit applies, as in xenstored.
        let prefix = Array("/local/domain/".utf8)
        if p.count > prefix.count && p.starts(with: prefix) {
            var i = prefix.count
            var digits = 0
            while i < p.count, p[i] >= UInt8(ascii: "0"), p[i] <= UInt8(ascii: "9"), digits < 5 {
                i += 1
                digits += 1
            }
            if digits > 0, i < p.count, p[i] == slash, p.count - (i + 1) > relativeMax {
                throw .EINVAL
            }
        }
    }

    /// Parent of an absolute canonical path; nil for the root.
    static func parent(_ path: String) -> String? {
        guard path != "/" else { return nil }
        let u = path.utf8
        guard let slash = u.lastIndex(of: UInt8(ascii: "/")) else { return nil }
        if slash == u.startIndex { return "/" }
        return String(path[path.startIndex..<slash])
    }

    /// The last component of an absolute canonical path ("" for the root).
    static func name(_ path: String) -> String {
        let u = path.utf8
        guard let slash = u.lastIndex(of: UInt8(ascii: "/")) else { return path }
        return String(path[u.index(after: slash)...])
    }

    /// `path + "/" + child`, minding the root.
    static func join(_ path: String, _ child: String) -> String {
        path == "/" ? "/" + child : path + "/" + child
    }

    /// Whether `path` is `ancestor` or lies below it.
    static func isAtOrBelow(_ path: String, _ ancestor: String) -> Bool {
        if ancestor == "/" { return path.utf8.first == UInt8(ascii: "/") }
        let p = path.utf8
        let a = ancestor.utf8
        guard p.count >= a.count, p.starts(with: a) else { return false }
        if p.count == a.count { return true }
        return p[p.index(p.startIndex, offsetBy: a.count)] == UInt8(ascii: "/")
    }

    /// `path` made relative to domain `domain` (for watches registered with a
    /// relative path); unchanged if it is not below that domain's path.
    static func relativize(_ path: String, domain: UInt16) -> String {
        let prefix = domainPath(domain) + "/"
        guard path.utf8.starts(with: prefix.utf8) else { return path }
        return String(decoding: path.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
    }
}

/// A decimal domain id as it appears in request arguments: 1 to 5 digits,
/// below `DOMID_FIRST_RESERVED` (0x7ff0).
func parseDomainID<C: Collection>(_ bytes: C) -> UInt16? where C.Element == UInt8 {
    guard let n = parseDecimal(bytes, maxDigits: 5), n < 0x7ff0 else { return nil }
    return UInt16(n)
}

/// A plain unsigned decimal (no sign, no spaces).
func parseDecimal<C: Collection>(_ bytes: C, maxDigits: Int) -> Int? where C.Element == UInt8 {
    guard !bytes.isEmpty, bytes.count <= maxDigits else { return nil }
    var n = 0
    for b in bytes {
        guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
        n = n * 10 + Int(b - UInt8(ascii: "0"))
    }
    return n
}
