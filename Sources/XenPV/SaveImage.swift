import Glibc
import KVM

/// The file `xeno save` writes: a suspended PV domain (docs/SAVE-FORMAT.md).
///
///     header   magic "XENOLITH-PV-SAVE" (16 bytes), version u32, header size u32 (32), 8 bytes zero
///     records  each: type u32, 4 bytes zero, payload length u64, payload, zero padding to 8 bytes
///       1 domain   the settings and the hypervisor-level facts (see `DomainRecord`)
///       2 pins     the pinned page tables: count u64, then count × (frame | level << 56) u64
///       3 balloon  the frames the guest gave back: count u64, then count × frame u64
///       4 vcpu     one per vCPU, fixed size (see `VCPURecord`)
///       5 memory   run count u64, page count u64, runs × (first frame u64, pages u64),
///                  zero padding to a 4 KiB file offset, then the pages of each run in order
///       0xffff end image length u64 (this record's end), which must equal where it ends
///
/// Everything is little-endian. Pages not in a memory run are zero. The
/// reader bounds every length by the file's size and every number by what it
/// names (frames by the memory size, vCPUs by their count) and refuses the
/// file with one line saying what is wrong; nothing in it is trusted further
/// than a guest would be (page tables are validated again on restore).
public enum SaveImage {
    static let magic = Array("XENOLITH-PV-SAVE".utf8)
    public static let version: UInt32 = 2
    static let headerSize = 32

    enum RecordType: UInt32 {
        case domain = 1, pins = 2, balloon = 3, vcpu = 4, memory = 5, end = 0xffff
    }

    /// Longest name and command line an image may carry.
    static let maxName = 64, maxCmdline = 4096
}

public struct SaveImageError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ d: String) { description = d }
}

// MARK: Records

/// The domain record: settings and the hypervisor-level facts a restore needs.
struct DomainRecord {
    var memoryBytes: UInt64 = 0
    var vcpus: UInt32 = 0
    var maxVCPUs: UInt32 = 0
    /// Guest system time when saved (ns): a restored domain's time goes on from it.
    var systemTime: UInt64 = 0
    var handle: (UInt64, UInt64) = (0, 0)
    var storeFrame: UInt64 = 0
    var consoleFrame: UInt64 = 0
    var storePort: UInt32 = 0
    var consolePort: UInt32 = 0
    var memoryTargetKiB: UInt64 = 0
    /// start_info's frame, as the guest gave it to SCHEDOP_shutdown(suspend).
    var startInfoFrame: UInt64 = 0
    /// Event channel ports the saved domain had (the highest port + 1): a
    /// restored domain numbers its new ports above them.
    var portsInUse: UInt32 = 0
    var name: [UInt8] = []
    var cmdline: [UInt8] = []

    static let fixedSize = 8 * 13

    func encode(into w: inout ByteWriter) {
        w.u64(memoryBytes); w.u32(vcpus); w.u32(maxVCPUs); w.u64(systemTime); w.u64(handle.0); w.u64(handle.1)
        w.u64(storeFrame); w.u64(consoleFrame); w.u32(storePort); w.u32(consolePort); w.u64(memoryTargetKiB)
        w.u64(startInfoFrame); w.u32(portsInUse); w.u32(0); w.u32(UInt32(name.count)); w.u32(UInt32(cmdline.count))
        w.bytes(name); w.bytes(cmdline)
    }

    static func decode(_ r: inout ByteReader) throws(SaveImageError) -> DomainRecord {
        var d = DomainRecord()
        d.memoryBytes = try r.u64(); d.vcpus = try r.u32(); d.maxVCPUs = try r.u32(); d.systemTime = try r.u64()
        d.handle = (try r.u64(), try r.u64())
        d.storeFrame = try r.u64(); d.consoleFrame = try r.u64(); d.storePort = try r.u32(); d.consolePort = try r.u32()
        d.memoryTargetKiB = try r.u64(); d.startInfoFrame = try r.u64()
        d.portsInUse = try r.u32()
        guard try r.u32() == 0 else { throw SaveImageError("the domain record's reserved word is not zero") }
        guard d.portsInUse >= 3, d.portsInUse <= UInt32(EventChannels.portLimit) else {
            throw SaveImageError("the domain record's port count (\(d.portsInUse)) is out of range")
        }
        let nameLength = Int(try r.u32()), cmdlineLength = Int(try r.u32())
        guard nameLength >= 1, nameLength <= SaveImage.maxName, cmdlineLength <= SaveImage.maxCmdline else {
            throw SaveImageError("the domain record's name or command line is too long")
        }
        d.name = try r.bytes(nameLength); d.cmdline = try r.bytes(cmdlineLength)
        guard d.name.allSatisfy({ $0 > 0x20 && $0 < 0x7f }), d.cmdline.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
            throw SaveImageError("the domain record's name or command line is not printable ASCII")
        }
        guard d.memoryBytes >= 16 << 20, d.memoryBytes % Layout.pageSize == 0, d.memoryBytes <= 1 << 40 else {
            throw SaveImageError("the domain record's memory size (\(d.memoryBytes) bytes) makes no sense")
        }
        let frames = d.memoryBytes / Layout.pageSize
        guard d.maxVCPUs >= 1, d.maxVCPUs <= UInt32(PVDomain.maxVCPUs), d.vcpus >= 1, d.vcpus <= d.maxVCPUs else {
            throw SaveImageError("the domain record's vCPU counts (\(d.vcpus) of \(d.maxVCPUs)) make no sense")
        }
        guard d.storeFrame < frames, d.consoleFrame < frames, d.startInfoFrame < frames,
              d.storePort > 0, d.consolePort > 0, d.storePort < 64, d.consolePort < 64 else {
            throw SaveImageError("the domain record's store, console or start_info frame or port is out of range")
        }
        guard d.memoryTargetKiB <= d.memoryBytes >> 10 else {
            throw SaveImageError("the domain record's memory target exceeds its memory")
        }
        return d
    }
}

/// One vCPU's state: what Xen keeps for a PV vCPU (struct vcpu_guest_context)
/// plus the KVM state the guest can see at CPL3 (data segments, FPU).
struct VCPURecord {
    static let online: UInt32 = 1, initialised: UInt32 = 2

    var id: UInt32 = 0
    var flags: UInt32 = 0
    var fpuFormat: UInt32 = 0
    var regs = Registers()
    var cs: UInt64 = 0, ss: UInt64 = 0
    var inKernel: UInt64 = 0
    var kernelCR3: UInt64 = 0, userCR3: UInt64 = 0
    var kernelSS: UInt64 = 0, kernelSP: UInt64 = 0
    var fsBase: UInt64 = 0, gsBaseKernel: UInt64 = 0, gsBaseUser: UInt64 = 0
    var eventCallback: UInt64 = 0, failsafeCallback: UInt64 = 0, syscallCallback: UInt64 = 0
    var syscallMasksEvents: UInt64 = 0
    var timerDeadline: UInt64 = 0
    var ldtBase: UInt64 = 0, ldtEntries: UInt64 = 0
    /// The guest frame of its GDT, or ~0.
    var gdtFrame: UInt64 = ~0
    var trapAddress = [UInt64](repeating: 0, count: 256)
    var trapFlags = [UInt8](repeating: 0, count: 256)
    /// ds, es, fs, gs as KVM holds them (the guest loads them itself at CPL3).
    var segments = [Segment](repeating: Segment(), count: 4)
    /// The VMM's checked copy of the guest's GDT (4 KiB).
    var gdt = [UInt8](repeating: 0, count: 4096)
    /// KVM_GET_XSAVE (or KVM_GET_FPU) bytes (4 KiB).
    var fpu = [UInt8](repeating: 0, count: VCPU.xsaveSize)

    static let size = 4 * 4 + MemoryLayout<Registers>.size + 8 * 19 + 256 * 8 + 256
        + 4 * MemoryLayout<Segment>.size + 4096 + VCPU.xsaveSize

    func encode(into w: inout ByteWriter) {
        w.u32(id); w.u32(flags); w.u32(fpuFormat); w.u32(0)
        withUnsafeBytes(of: regs) { w.bytes($0) }
        for v in [cs, ss, inKernel, kernelCR3, userCR3, kernelSS, kernelSP, fsBase, gsBaseKernel, gsBaseUser,
                  eventCallback, failsafeCallback, syscallCallback, syscallMasksEvents, timerDeadline,
                  ldtBase, ldtEntries, gdtFrame, 0] { w.u64(v) }
        for a in trapAddress { w.u64(a) }
        w.bytes(trapFlags)
        for s in segments { withUnsafeBytes(of: s) { w.bytes($0) } }
        w.bytes(gdt); w.bytes(fpu)
    }

    static func decode(_ r: inout ByteReader) throws(SaveImageError) -> VCPURecord {
        var v = VCPURecord()
        v.id = try r.u32(); v.flags = try r.u32(); v.fpuFormat = try r.u32(); _ = try r.u32()
        try r.copy(into: &v.regs)
        v.cs = try r.u64(); v.ss = try r.u64(); v.inKernel = try r.u64()
        v.kernelCR3 = try r.u64(); v.userCR3 = try r.u64(); v.kernelSS = try r.u64(); v.kernelSP = try r.u64()
        v.fsBase = try r.u64(); v.gsBaseKernel = try r.u64(); v.gsBaseUser = try r.u64()
        v.eventCallback = try r.u64(); v.failsafeCallback = try r.u64(); v.syscallCallback = try r.u64()
        v.syscallMasksEvents = try r.u64(); v.timerDeadline = try r.u64()
        v.ldtBase = try r.u64(); v.ldtEntries = try r.u64(); v.gdtFrame = try r.u64(); _ = try r.u64()
        for i in 0..<256 { v.trapAddress[i] = try r.u64() }
        v.trapFlags = try r.bytes(256)
        for i in 0..<4 { try r.copy(into: &v.segments[i]) }
        v.gdt = try r.bytes(4096)
        v.fpu = try r.bytes(VCPU.xsaveSize)
        guard v.flags & ~(online | initialised) == 0, v.inKernel <= 1, v.syscallMasksEvents <= 1,
              VCPU.FPUFormat(rawValue: v.fpuFormat) != nil || v.flags & initialised == 0 else {
            throw SaveImageError("vCPU \(v.id)'s record has flags it cannot have")
        }
        guard v.kernelCR3 & 0xfff == 0, v.userCR3 & 0xfff == 0 else {
            throw SaveImageError("vCPU \(v.id)'s page table bases are not page-aligned")
        }
        return v
    }
}

// MARK: Parsed image

/// An image read and checked, but for the page data, which stays in the
/// file for the domain to read straight into its RAM (`file.loadMemory`).
public final class LoadedSaveImage {
    let domain: DomainRecord
    let pins: [(frame: UInt64, level: PageTypes.Kind)]
    let ballooned: [UInt64]
    let vcpus: [VCPURecord]
    let file: SaveFileReader

    public var name: String { String(decoding: domain.name, as: UTF8.self) }
    public var memoryBytes: UInt64 { domain.memoryBytes }
    public var vcpuCount: Int { Int(domain.vcpus) }
    public var maxVCPUCount: Int { Int(domain.maxVCPUs) }
    public var cmdline: String { String(decoding: domain.cmdline, as: UTF8.self) }

    /// Opens and checks `path`.
    public init(path: String) throws(SaveImageError) {
        let file: SaveFileReader
        do {
            // Memory is bounded by the largest guest here, then by the domain record below.
            file = try SaveFileReader(path: path, magic: SaveImage.magic, memoryType: SaveImage.RecordType.memory.rawValue,
                                      pageLimit: (1 << 40) / Layout.pageSize)
        } catch {
            throw SaveImageError(error.description)
        }
        func fail(_ why: String) -> SaveImageError { SaveImageError("\(path): \(why)") }
        guard file.version == SaveImage.version else { throw fail("save image version \(file.version); this xeno reads version \(SaveImage.version)") }

        var domain: DomainRecord?
        var pins: [(UInt64, PageTypes.Kind)] = []
        var ballooned: [UInt64] = []
        var vcpus: [VCPURecord] = []
        for (rawType, payload) in file.records {
            let length = UInt64(payload.count)
            var p = ByteReader(payload, at: 0)
            do throws(SaveImageError) {
                guard let type = SaveImage.RecordType(rawValue: rawType), type != .memory, type != .end else {
                    throw SaveImageError("unknown record type \(rawType)")
                }
                switch type {
                case .domain:
                    guard domain == nil else { throw SaveImageError("two domain records") }
                    domain = try DomainRecord.decode(&p)
                case .pins, .balloon:
                    guard let d = domain else { throw SaveImageError("a record before the domain record") }
                    let count = try p.u64()
                    guard count <= d.memoryBytes / Layout.pageSize, length == 8 + count * 8 else {
                        throw SaveImageError("the \(type) record's count (\(count)) does not match its length")
                    }
                    for _ in 0..<count {
                        let w = try p.u64()
                        let frame = w & ((1 << 56) - 1)
                        guard frame < d.memoryBytes / Layout.pageSize else {
                            throw SaveImageError("the \(type) record names frame \(frame), beyond memory")
                        }
                        if type == .pins {
                            guard let k = PageTypes.Kind(rawValue: UInt8(w >> 56)), (1...4).contains(k.rawValue) else {
                                throw SaveImageError("the pins record has a pin of level \(w >> 56)")
                            }
                            pins.append((frame, k))
                        } else {
                            guard w >> 56 == 0 else { throw SaveImageError("the balloon record has a malformed entry") }
                            ballooned.append(frame)
                        }
                    }
                case .vcpu:
                    guard let d = domain else { throw SaveImageError("a record before the domain record") }
                    guard length == UInt64(VCPURecord.size) else {
                        throw SaveImageError("a vCPU record of \(length) bytes, not \(VCPURecord.size)")
                    }
                    let v = try VCPURecord.decode(&p)
                    guard v.id == UInt32(vcpus.count), v.id < d.maxVCPUs else {
                        throw SaveImageError("vCPU record \(v.id) out of order or beyond \(d.maxVCPUs) vCPUs")
                    }
                    vcpus.append(v)
                case .memory, .end:
                    break
                }
            } catch {
                throw fail(error.description)
            }
        }
        guard let domain else { throw fail("no domain record") }
        guard vcpus.count == Int(domain.maxVCPUs) else { throw fail("\(vcpus.count) vCPU records for \(domain.maxVCPUs) vCPUs") }
        guard vcpus[0].flags & VCPURecord.initialised != 0 else { throw fail("vCPU 0 has no state") }
        guard file.runs.last.map({ ($0.first + $0.pages) * Layout.pageSize <= domain.memoryBytes }) ?? true else {
            throw fail("the memory record has a run beyond the domain's \(domain.memoryBytes >> 20) MiB")
        }
        self.domain = domain
        self.pins = pins
        self.ballooned = ballooned
        self.vcpus = vcpus
        self.file = file
    }
}

// MARK: Byte helpers

struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func bytes(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    mutating func bytes(_ b: UnsafeRawBufferPointer) { bytes.append(contentsOf: b) }
}

struct ByteReader {
    let data: [UInt8]
    var at: Int
    init(_ data: [UInt8], at: Int) { self.data = data; self.at = at }

    mutating func take(_ n: Int) throws(SaveImageError) -> ArraySlice<UInt8> {
        guard n >= 0, at + n <= data.count else { throw SaveImageError("a record ends early") }
        defer { at += n }
        return data[at..<(at + n)]
    }
    mutating func u32() throws(SaveImageError) -> UInt32 {
        let s = try take(4)
        return s.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
    mutating func u64() throws(SaveImageError) -> UInt64 {
        let s = try take(8)
        return s.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
    mutating func bytes(_ n: Int) throws(SaveImageError) -> [UInt8] { Array(try take(n)) }
    /// Fills a plain C struct from the next bytes.
    mutating func copy<T>(into value: inout T) throws(SaveImageError) {
        let s = try take(MemoryLayout<T>.size)
        withUnsafeMutableBytes(of: &value) { dst in s.withUnsafeBytes { dst.copyMemory(from: $0) } }
    }
}
