/// A domain as an `xl.cfg` file describes it, checked: the keys Xenolith
/// acts on, with xl's meanings and defaults (xl.cfg(5)). Keys Xenolith does
/// not know are kept as warnings, as xl ignores what it does not use.
public struct XLDomainConfig: Sendable, Equatable {
    public enum GuestType: String, Sendable { case pv, hvm }

    /// What to do when the guest powers off, reboots or crashes.
    public enum Action: String, Sendable, CaseIterable {
        case destroy, restart, preserve
        case renameRestart = "rename-restart"
        case coredumpDestroy = "coredump-destroy"
        case coredumpRestart = "coredump-restart"
        case softReset = "soft-reset"
    }

    public var name: String
    public var type: GuestType = .pv
    /// Boot memory and the most the balloon may give back, in MiB.
    public var memoryMiB: Int = 512
    public var maxMemoryMiB: Int
    public var vcpus: Int = 1
    public var maxVCPUs: Int
    public var kernel: String?
    public var ramdisk: String?
    /// The kernel command line: `cmdline`, else `root=` and `extra` joined.
    public var cmdline: String?
    public var disks: [XLDiskSpec] = []
    public var vifs: [XLVifSpec] = []
    public var onPoweroff: Action = .destroy
    public var onReboot: Action = .restart
    public var onCrash: Action = .destroy
    /// Credit scheduler: relative weight (1–65535, default 256) and cap in
    /// percent of one CPU (0: none).
    public var weight: Int = 256
    public var cap: Int = 0
    /// xl's `cpus`: the host CPUs the domain's vCPUs may run on (hard
    /// affinity, "1", "0-3,6" or "all"); nil: anywhere.
    public var cpus: [Int]?
    /// Keys the file sets that Xenolith does not act on.
    public var ignoredKeys: [String] = []

    /// Reads and checks `text`; every error names `path` and the line.
    public init(path: String, text: String) throws(XLConfigError) {
        let file = try XLConfigFile(path: path, text: text)
        try self.init(file)
    }

    public init(_ file: XLConfigFile) throws(XLConfigError) {
        var reader = Reader(file: file)
        guard let name = try reader.string("name") else {
            throw XLConfigError(path: file.path, line: 1, "'name' is required")
        }
        guard Self.isValidName(name) else {
            throw reader.error("name", "'\(name)' is not a valid domain name (1–64 of A-Z a-z 0-9 . _ -, not starting with '-' or '.')")
        }
        self.name = name
        let builder = try reader.string("builder")
        switch try reader.string("type") ?? (builder == "hvm" ? "hvm" : "pv") {
        case "pv": type = .pv
        case "hvm": type = .hvm
        case "pvh": throw reader.error("type", "type \"pvh\" is not supported (use \"pv\" or \"hvm\")")
        case let other: throw reader.error("type", "type \"\(other)\" is not one of \"pv\", \"hvm\"")
        }
        if let m = try reader.integer("memory", in: 64...(1 << 22)) { memoryMiB = m }
        maxMemoryMiB = try reader.integer("maxmem", in: 64...(1 << 22)) ?? memoryMiB
        guard maxMemoryMiB >= memoryMiB else {
            throw reader.error("maxmem", "maxmem (\(maxMemoryMiB)) is below memory (\(memoryMiB))")
        }
        if let v = try reader.integer("vcpus", in: 1...32) { vcpus = v }
        maxVCPUs = try reader.integer("maxvcpus", in: 1...32) ?? vcpus
        guard maxVCPUs >= vcpus else {
            throw reader.error("maxvcpus", "maxvcpus (\(maxVCPUs)) is below vcpus (\(vcpus))")
        }
        kernel = try reader.string("kernel")
        ramdisk = try reader.string("ramdisk")
        if let c = try reader.string("cmdline") {
            cmdline = c
        } else {
            let root = try reader.string("root").map { "root=" + $0 }
            let extra = try reader.string("extra")
            let parts = [root, extra].compactMap { $0 }
            cmdline = parts.isEmpty ? nil : parts.joined(separator: " ")
        }
        for (spec, line) in try reader.stringList("disk") {
            do { disks.append(try XLDiskSpec(spec)) } catch {
                throw XLConfigError(path: file.path, line: line, "disk '\(spec)': \(error.message)")
            }
        }
        for (spec, line) in try reader.stringList("vif") {
            do { vifs.append(try XLVifSpec(spec)) } catch {
                throw XLConfigError(path: file.path, line: line, "vif '\(spec)': \(error.message)")
            }
        }
        var seenVdevs: Set<String> = []
        for d in disks where !seenVdevs.insert(d.vdev).inserted {
            throw reader.error("disk", "vdev \(d.vdev) is given twice")
        }
        onPoweroff = try reader.action("on_poweroff") ?? .destroy
        onReboot = try reader.action("on_reboot") ?? .restart
        onCrash = try reader.action("on_crash") ?? .destroy
        weight = try reader.integer("cpu_weight", in: 1...65535) ?? 256
        cap = try reader.integer("cap", in: 0...(100 * 32)) ?? 0
        guard cap <= 100 * maxVCPUs else {
            throw reader.error("cap", "cap (\(cap)) is above 100 × maxvcpus (\(100 * maxVCPUs)): a domain cannot use more")
        }
        if let list = try reader.string("cpus"), list != "all" {
            guard let parsed = CPUList.parse(list) else {
                throw reader.error("cpus", "cpus \"\(list.prefix(64))\" is not a CPU list like \"1\", \"0-3,6\" or \"all\"")
            }
            cpus = parsed
        }
        ignoredKeys = file.settings.map(\.key).filter { !reader.known.contains($0) }
    }

    /// xl's rule, narrowed to what is safe in a path and a URL.
    public static func isValidName(_ name: String) -> Bool {
        let u = Array(name.utf8)
        guard !u.isEmpty, u.count <= 64, u[0] != UInt8(ascii: "-"), u[0] != UInt8(ascii: ".") else { return false }
        return u.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
                || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }
    }
}

/// Typed access to settings, recording which keys were read.
private struct Reader {
    let file: XLConfigFile
    var known: Set<String> = []

    init(file: XLConfigFile) { self.file = file }

    func error(_ key: String, _ message: String) -> XLConfigError {
        XLConfigError(path: file.path, line: file.setting(key)?.line ?? 1, message)
    }

    mutating func string(_ key: String) throws(XLConfigError) -> String? {
        known.insert(key)
        guard let s = file.setting(key) else { return nil }
        guard case .string(let v) = s.value else {
            throw XLConfigError(path: file.path, line: s.line, "'\(key)' must be a quoted string")
        }
        return v
    }

    /// A number, or a quoted number as xl also takes.
    mutating func integer(_ key: String, in range: ClosedRange<Int>) throws(XLConfigError) -> Int? {
        known.insert(key)
        guard let s = file.setting(key) else { return nil }
        let n: Int64?
        switch s.value {
        case .number(let v): n = v
        case .string(let text): n = Int64(text)
        case .list: n = nil
        }
        guard let n else { throw XLConfigError(path: file.path, line: s.line, "'\(key)' must be a number") }
        guard n >= Int64(range.lowerBound), n <= Int64(range.upperBound) else {
            throw XLConfigError(path: file.path, line: s.line, "'\(key)' is \(n); it must be \(range.lowerBound) to \(range.upperBound)")
        }
        return Int(n)
    }

    /// A list of quoted strings, each with its line (lists span lines).
    mutating func stringList(_ key: String) throws(XLConfigError) -> [(String, Int)] {
        known.insert(key)
        guard let s = file.setting(key) else { return [] }
        guard case .list(let items) = s.value else {
            throw XLConfigError(path: file.path, line: s.line, "'\(key)' must be a list: \(key) = [ '...', ... ]")
        }
        var out: [(String, Int)] = []
        for item in items {
            guard case .string(let v) = item else {
                throw XLConfigError(path: file.path, line: s.line, "'\(key)' must list quoted strings")
            }
            out.append((v, s.line))
        }
        guard out.count <= 16 else { throw XLConfigError(path: file.path, line: s.line, "'\(key)': at most 16 entries") }
        return out
    }

    mutating func action(_ key: String) throws(XLConfigError) -> XLDomainConfig.Action? {
        guard let v = try string(key) else { return nil }
        guard let a = XLDomainConfig.Action(rawValue: v) else {
            let all = XLDomainConfig.Action.allCases.map(\.rawValue).joined(separator: ", ")
            throw error(key, "'\(key)' is \"\(v)\"; it must be one of \(all)")
        }
        return a
    }
}

/// A failure inside one disk or vif string, placed by its caller.
public struct XLSpecError: Error, Sendable {
    public let message: String
    init(_ m: String) { message = m }
}

/// One `disk` entry (xl-disk-configuration(5)): key=value pairs, flags and
/// the positional `target, format, vdev, access`; or the older
/// `[format:]target,vdev[:cdrom],access` with a prefix such as `file:`,
/// `phy:` or `raw:`, whose positions are target, vdev, access.
public struct XLDiskSpec: Sendable, Equatable {
    public var target: String
    public var format = "raw"
    public var vdev: String
    public var readOnly = false
    public var cdrom = false

    static let deprecatedPrefixes = ["file:", "phy:", "raw:", "aio:", "tap:aio:", "tap2:aio:", "tap:", "tap2:", "qcow:", "qcow2:", "vhd:"]

    public init(_ spec: String) throws(XLSpecError) {
        var target: String?, format: String?, vdev: String?, access: String?
        var positional: [String] = []
        var legacy = false
        for raw in spec.split(separator: ",", omittingEmptySubsequences: false) {
            let part = raw.trimmingSpaces
            if let eq = part.firstIndex(of: "=") {
                let key = String(part[..<eq]), value = String(part[part.index(after: eq)...])
                func set(_ slot: inout String?) throws(XLSpecError) {
                    guard slot == nil else { throw XLSpecError("'\(key)' is given twice") }
                    slot = value
                }
                switch key {
                case "target": try set(&target)
                case "format": try set(&format)
                case "vdev": try set(&vdev)
                case "access": try set(&access)
                case "devtype":
                    guard value == "cdrom" else { throw XLSpecError("devtype '\(value)' is not supported (only cdrom)") }
                    cdrom = true
                case "backend", "backendtype", "script":
                    break                                  // the VMM is the only backend
                default: throw XLSpecError("unknown key '\(key)'")
                }
            } else if part == "cdrom" {
                cdrom = true
            } else if part == "direct-io-safe" {
                // xl's leave for the backend to use O_DIRECT: Xenolith's
                // disks use it unless `--disk ...,cache=writeback` asks otherwise.
            } else {
                positional.append(String(part))
            }
        }
        if let first = positional.first, let prefix = Self.deprecatedPrefixes.first(where: { first.hasPrefix($0) }) {
            legacy = true
            positional[0] = String(first.dropFirst(prefix.count))
            let kind = prefix.split(separator: ":").last.map(String.init) ?? "raw"
            if format == nil, ["qcow", "qcow2", "vhd"].contains(kind) { format = kind }
        }
        let slots = legacy ? ["target", "vdev", "access"] : ["target", "format", "vdev", "access"]
        guard positional.count <= slots.count else { throw XLSpecError("too many positional parameters") }
        for (slot, value) in zip(slots, positional) where !value.isEmpty {
            switch slot {
            case "target": guard target == nil else { throw XLSpecError("target is given twice") }; target = value
            case "format": guard format == nil else { throw XLSpecError("format is given twice") }; format = value
            case "vdev":
                guard vdev == nil else { throw XLSpecError("vdev is given twice") }
                if value.hasSuffix(":cdrom") { cdrom = true; vdev = String(value.dropLast(6)) } else { vdev = value }
            default: guard access == nil else { throw XLSpecError("access is given twice") }; access = value
            }
        }
        guard let target, !target.isEmpty else { throw XLSpecError("no target (the disk file)") }
        guard let vdev, !vdev.isEmpty else { throw XLSpecError("no vdev (e.g. xvda)") }
        self.target = target
        self.vdev = vdev
        self.format = format ?? "raw"
        guard self.format == "raw" else { throw XLSpecError("format '\(self.format)' is not supported: disks are raw flat files") }
        switch access ?? (cdrom ? "ro" : "rw") {
        case "r", "ro": readOnly = true
        case "w", "rw": readOnly = false
        case let a: throw XLSpecError("access '\(a)' is not r, ro, w or rw")
        }
        if cdrom { readOnly = true }
        guard Self.diskIndex(vdev) != nil else {
            throw XLSpecError("vdev '\(vdev)' is not a disk name like xvda, hda, sda or vda")
        }
    }

    /// xvda → 0, xvdb → 1, ... (also hd*, sd*, vd*, and xvdaa style).
    public static func diskIndex(_ vdev: String) -> Int? {
        var rest = Substring(vdev)
        guard let prefix = ["xvd", "hd", "sd", "vd"].first(where: { rest.hasPrefix($0) }) else { return nil }
        rest = rest.dropFirst(prefix.count)
        guard !rest.isEmpty, rest.count <= 2, rest.utf8.allSatisfy({ $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }) else { return nil }
        return rest.utf8.reduce(0) { $0 * 26 + Int($1 - UInt8(ascii: "a")) + 1 } - 1
    }
}

/// One `vif` entry (xl-network-configuration(5)): comma-separated
/// key=value pairs. Xenolith acts on `mac` and `bridge` (a new TAP joins
/// it) or `vifname` (an existing TAP by name).
public struct XLVifSpec: Sendable, Equatable {
    public var mac: String?
    public var bridge: String?
    public var vifname: String?

    public init(_ spec: String) throws(XLSpecError) {
        for raw in spec.split(separator: ",") {
            let part = raw.trimmingSpaces
            guard !part.isEmpty else { continue }
            guard let eq = part.firstIndex(of: "=") else { throw XLSpecError("'\(part)' is not KEY=VALUE") }
            let key = String(part[..<eq]), value = String(part[part.index(after: eq)...])
            switch key {
            case "mac": mac = value
            case "bridge": bridge = value
            case "vifname": vifname = value
            case "model", "type", "script", "ip", "rate", "backend":
                break                                      // accepted, not used
            default: throw XLSpecError("unknown key '\(key)'")
            }
        }
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}
