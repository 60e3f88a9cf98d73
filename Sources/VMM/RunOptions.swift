import BlockStorage
import Glibc

/// What `xeno run` was asked to do.
public struct RunOptions: Sendable {
    public enum Mode: Sendable { case pv, hvm }
    public var kernel: String?
    public var initrd: String?
    public var cmdline: String?
    public var memoryBytes: UInt64 = 512 << 20
    public var vcpus = 1
    /// vCPUs the guest can grow to while it runs (PV); nil means `vcpus`.
    public var maxVCPUs: Int?
    /// Where to listen for control requests (`xeno ctl`).
    public var controlSocket: String?
    public var name = "xenolith"
    /// `--name` was given: the run also listens at `RunDirectory.controlPath(name)`.
    public var nameGiven = false
    public var mode = Mode.pv
    public var command: [String] = []
    public var reboot = true
    /// Flat-file disks, in order: xvda, xvdb, ... (PV); vda, vdb, ... (HVM, virtio-blk).
    public var disks: [DiskOption] = []

    /// Where to offer the guest's xenstore to host tools (PV).
    public var storeSocket: String?
    /// NICs, in order: eth0, eth1, ... (PV netfront; HVM virtio-net).
    public var nics: [NICOption] = []
    /// Where host programs reach the guest's vsock ports (HVM virtio-vsock).
    public var vsock: String?
    /// The guest's vsock CID.
    public var vsockCID: UInt64?
    /// `--restore FILE`: a saved PV guest instead of a boot.
    public var restore: String?

    /// `--net tap=NAME[,mac=MAC]` or `--net bridge=BR[,mac=MAC]`.
    public struct NICOption: Sendable, Equatable {
        public var tap: String = ""
        public var bridge: String?
        public var mac: String?
    }

    /// `--disk PATH[,ro][,cache=none|writeback]`.
    public struct DiskOption: Sendable, Equatable {
        public var path: String
        public var readOnly: Bool
        /// `cache=none` (the default: O_DIRECT, the host caches nothing for
        /// the guest) or `cache=writeback` (the host's page cache), as QEMU spells them.
        public var caching: DiskCaching = .direct
    }

    public init() {}

    public struct UsageError: Error, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }

    /// Parses `xeno run`'s arguments.
    public static func parse(_ args: [String]) throws -> RunOptions {
        var o = RunOptions()
        var i = 0
        func value(_ flag: String) throws -> String {
            i += 1
            guard i < args.count else { throw UsageError("\(flag) needs a value") }
            return args[i]
        }
        while i < args.count {
            let a = args[i]
            switch a {
            case "--kernel": o.kernel = try value(a)
            case "--initrd": o.initrd = try value(a)
            case "--cmdline": o.cmdline = try value(a)
            case "--memory", "-m": o.memoryBytes = try parseSize(try value(a))
            case "--vcpus", "-c":
                let v = try value(a)
                guard let n = Int(v) else { throw UsageError("--vcpus: '\(v)' is not a number") }
                o.vcpus = n
            case "--maxvcpus":
                let v = try value(a)
                guard let n = Int(v) else { throw UsageError("--maxvcpus: '\(v)' is not a number") }
                o.maxVCPUs = n
            case "--control": o.controlSocket = try value(a)
            case "--name":
                o.name = try value(a)
                o.nameGiven = true
                if let why = RunDirectory.checkName(o.name) { throw UsageError("--name '\(o.name)': \(why)") }
            case "--pv": o.mode = .pv
            case "--hvm": o.mode = .hvm
            case "--no-reboot": o.reboot = false
            case "--disk":
                let v = try value(a)
                var parts = v.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                let path = parts.removeFirst()
                guard !path.isEmpty else { throw UsageError("--disk needs a file path: --disk PATH[,ro][,cache=none|writeback]") }
                var disk = DiskOption(path: path, readOnly: false)
                for p in parts {
                    switch p {
                    case "ro": disk.readOnly = true
                    case "rw": disk.readOnly = false
                    case "cache=none": disk.caching = .direct
                    case "cache=writeback": disk.caching = .writeback
                    default: throw UsageError("--disk \(v): unknown option '\(p)' (ro, rw, cache=none or cache=writeback)")
                    }
                }
                o.disks.append(disk)
            case "--xenstore-socket": o.storeSocket = try value(a)
            case "--restore": o.restore = try value(a)
            case "--vsock":
                let v = try value(a)
                guard !v.isEmpty else { throw UsageError("--vsock needs a socket path") }
                o.vsock = v
            case "--vsock-cid":
                let v = try value(a)
                // 0-2 are the hypervisor, local and host; 0xffffffff is "any"
                // (Linux's CIDs are 32-bit in sockaddr_vm).
                guard let n = UInt64(v), n >= 3, n < 0xffff_ffff else {
                    throw UsageError("--vsock-cid \(v): a guest CID is 3 to 4294967294")
                }
                o.vsockCID = n
            case "--net":
                let v = try value(a)
                var nic = NICOption()
                for part in v.split(separator: ",") {
                    let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
                    guard kv.count == 2, !kv[1].isEmpty else { throw UsageError("--net \(v): '\(part)' is not KEY=VALUE (tap=, bridge=, mac=)") }
                    switch kv[0] {
                    case "tap": nic.tap = kv[1]
                    case "bridge": nic.bridge = kv[1]
                    case "mac": nic.mac = kv[1]
                    default: throw UsageError("--net \(v): unknown key '\(kv[0])' (tap, bridge or mac)")
                    }
                }
                guard !nic.tap.isEmpty || nic.bridge != nil else { throw UsageError("--net \(v): give tap=NAME or bridge=BR") }
                o.nics.append(nic)
            case "--":
                o.command = Array(args[(i + 1)...])
                i = args.count
                continue
            default:
                throw UsageError("unknown option '\(a)'")
            }
            i += 1
        }
        if o.vsockCID != nil && o.vsock == nil { throw UsageError("--vsock-cid needs --vsock PATH") }
        if o.vsock != nil && o.mode == .pv {
            throw UsageError("--vsock is for HVM guests (--hvm): PV guests get the PV channel instead")
        }
        if o.restore != nil {
            if !o.command.isEmpty { throw UsageError("--restore: a restored guest runs what it ran; no command after --") }
        }
        guard o.disks.count <= 16 else { throw UsageError("--disk: at most 16 disks per guest") }
        guard o.vcpus >= 1 && o.vcpus <= 32 else {
            throw UsageError("--vcpus \(o.vcpus): a guest has 1 to 32 vCPUs")
        }
        if let m = o.maxVCPUs {
            guard m >= o.vcpus && m <= 32 else {
                throw UsageError("--maxvcpus \(m): must be at least --vcpus (\(o.vcpus)) and at most 32")
            }
        }
        return o
    }

    /// "512", "512M", "1G", "1536MiB" → bytes; a bare number is MiB, as in xl.
    public static func parseSize(_ s: String) throws -> UInt64 {
        var digits = Substring(s)
        var unit: UInt64 = 1 << 20
        let suffixes: [(String, UInt64)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
                                            ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30),
                                            ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30)]
        for (suffix, u) in suffixes where digits.hasSuffix(suffix) {
            digits = digits.dropLast(suffix.count); unit = u; break
        }
        guard let n = UInt64(digits), n > 0 else { throw UsageError("memory size '\(s)' does not parse (try 512M or 2G)") }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: unit)
        guard !overflow else { throw UsageError("memory size '\(s)' is too large") }
        guard bytes >= 64 << 20 else { throw UsageError("memory size '\(s)' is below the 64 MiB minimum") }
        let host = hostMemoryBytes()
        guard host == 0 || bytes <= host else {
            throw UsageError("memory size '\(s)' exceeds the host's \(host >> 20) MiB")
        }
        return (bytes + (2 << 20) - 1) & ~UInt64((2 << 20) - 1)
    }

    static func hostMemoryBytes() -> UInt64 {
        UInt64(sysconf(Int32(_SC_PHYS_PAGES))) * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }
}
