import Glibc
import KVM
import Machine

/// The file `xeno save` writes for an HVM domain (docs/SAVE-FORMAT.md): the
/// guest frozen as it ran, nothing asked of it (unlike a PV guest, which
/// suspends itself first). A `SaveFile` with magic "XENOLITH-HVM-SAV" and
/// these records:
///
///     1 machine   memory bytes u64, possible vCPUs u32, kvm-clock ns u64 and the
///                 host's CLOCK_REALTIME ns u64 when saved, name block, device tags
///                 (count u32, then a block each, in the machine's order)
///     2 vm        one per VM-wide KVM part (PICs, I/O APIC, PIT): part u32, block
///     3 vcpu      one per possible vCPU in order: id u32, parts (count u32, then
///                 part u32 + block each), FPU format u32 + block, MSRs (count u32,
///                 then index u32 + value u64 each)
///     4 device    one per tag, in order: tag block, state block
///     5 memory    guest RAM's non-zero pages (offsets in the memfd's layout)
///
/// Blocks are a u32 length and the bytes; a device's state is bounded only
/// by the record it is in (`SaveFile.recordLimit`). KVM's parts are its own
/// structures, checked by size here and by KVM's SET ioctls on restore.
public final class HVMSaveImage {
    static let magic = Array("XENOLITH-HVM-SAV".utf8)
    static let version: UInt32 = 1

    enum RecordType: UInt32 { case machine = 1, vm = 2, vcpu = 3, device = 4, memory = 5 }

    struct VCPURecord {
        var id: UInt32
        var parts: [(VCPUStatePart, [UInt8])]
        var fpuFormat: VCPU.FPUFormat
        var fpu: [UInt8]
        var msrs: [(UInt32, UInt64)]
    }

    public let memoryBytes: UInt64
    public let maxVCPUCount: Int
    public let name: String
    let clockNanoseconds: UInt64
    let savedRealtimeNanoseconds: UInt64
    let deviceTags: [String]
    let vmParts: [(VMStatePart, [UInt8])]
    let vcpus: [VCPURecord]
    let deviceStates: [[UInt8]]
    let file: SaveFileReader

    static let maxName = 64, maxTag = 64, maxDevices = 64, maxMSRs = 1024

    /// Whether `path` starts like an HVM image (the rest is checked by `init`).
    public static func holdsHVMGuest(path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 16)
        return pread(fd, &head, 16, 0) == 16 && head == magic
    }

    /// Reads and checks `path`; everything in it is bounded before use.
    public init(path: String) throws(SaveFileError) {
        // The memory record is bounded once the machine record is known: at
        // most the largest guest this VMM builds.
        let file = try SaveFileReader(path: path, magic: Self.magic, memoryType: RecordType.memory.rawValue,
                                      pageLimit: (1 << 40) / SaveFile.pageSize)
        func fail(_ why: String) -> SaveFileError { SaveFileError("\(path): \(why)") }
        guard file.version == Self.version else { throw fail("HVM save image version \(file.version); this xeno reads version \(Self.version)") }
        var machine: StateReader?
        var vmParts: [(VMStatePart, [UInt8])] = []
        var vcpus: [VCPURecord] = []
        var devices: [(String, [UInt8])] = []
        do throws(DeviceStateError) {
            for (type, payload) in file.records {
                var r = StateReader(payload, what: "record \(type)")
                switch RecordType(rawValue: type) {
                case .machine:
                    guard machine == nil else { throw DeviceStateError("two machine records") }
                    machine = r
                case .vm:
                    let raw = try r.u32()
                    guard let part = VMStatePart(rawValue: Int32(bitPattern: raw)) else { throw DeviceStateError("unknown VM part \(raw)") }
                    guard !vmParts.contains(where: { $0.0 == part }) else { throw DeviceStateError("the VM's \(part) state twice") }
                    vmParts.append((part, try r.block(limit: part.size)))
                    try r.finish()
                case .vcpu:
                    let id = try r.u32()
                    guard id == UInt32(vcpus.count) else { throw DeviceStateError("vCPU record \(id) out of order") }
                    var parts: [(VCPUStatePart, [UInt8])] = []
                    for _ in 0..<(try r.u32()) {
                        let raw = try r.u32()
                        guard let part = VCPUStatePart(rawValue: Int32(bitPattern: raw)), !parts.contains(where: { $0.0 == part }) else {
                            throw DeviceStateError("vCPU \(id): unknown or repeated part \(raw)")
                        }
                        parts.append((part, try r.block(limit: part.size)))
                    }
                    let rawFormat = try r.u32()
                    guard let format = VCPU.FPUFormat(rawValue: rawFormat) else { throw DeviceStateError("vCPU \(id): FPU format \(rawFormat)") }
                    let fpu = try r.block(limit: VCPU.xsaveSize)
                    let count = Int(try r.u32())
                    guard count <= Self.maxMSRs else { throw DeviceStateError("vCPU \(id): \(count) MSRs") }
                    var msrs: [(UInt32, UInt64)] = []
                    for _ in 0..<count { msrs.append((try r.u32(), try r.u64())) }
                    try r.finish()
                    vcpus.append(VCPURecord(id: id, parts: parts, fpuFormat: format, fpu: fpu, msrs: msrs))
                case .device:
                    let tag = String(decoding: try r.block(limit: Self.maxTag), as: UTF8.self)
                    devices.append((tag, try r.block(limit: Int(SaveFile.recordLimit))))
                    try r.finish()
                case .memory, nil:
                    throw DeviceStateError("unknown record type \(type)")
                }
            }
            guard var m = machine else { throw DeviceStateError("no machine record") }
            memoryBytes = try m.u64()
            maxVCPUCount = Int(try m.u32())
            clockNanoseconds = try m.u64()
            savedRealtimeNanoseconds = try m.u64()
            name = String(decoding: try m.block(limit: Self.maxName), as: UTF8.self)
            let tagCount = Int(try m.u32())
            guard tagCount <= Self.maxDevices else { throw DeviceStateError("\(tagCount) devices") }
            var tags: [String] = []
            for _ in 0..<tagCount { tags.append(String(decoding: try m.block(limit: Self.maxTag), as: UTF8.self)) }
            try m.finish()
            deviceTags = tags
            guard memoryBytes >= 1 << 20, memoryBytes <= 1 << 40, memoryBytes % SaveFile.pageSize == 0 else {
                throw DeviceStateError("a guest of \(memoryBytes) bytes")
            }
            guard (1...ACPIConfig.maximumCPUs).contains(maxVCPUCount), vcpus.count == maxVCPUCount else {
                throw DeviceStateError("\(vcpus.count) vCPU records for \(maxVCPUCount) vCPUs")
            }
            guard devices.map(\.0) == tags else { throw DeviceStateError("the device records do not match the machine's device list") }
            let size = memoryBytes
            guard file.runs.last.map({ ($0.first + $0.pages) * SaveFile.pageSize <= size }) ?? true else {
                throw DeviceStateError("memory beyond the guest's \(size >> 20) MiB")
            }
        } catch {
            throw fail(error.description)
        }
        self.file = file
        self.vmParts = vmParts
        self.vcpus = vcpus
        self.deviceStates = devices.map(\.1)
    }
}
