/// How a bzImage's payload (the compressed vmlinux) is packed, recognised by
/// its leading magic bytes, as Linux's own `lib/decompress.c` does.
public enum PayloadCompression: Equatable, Sendable, CustomStringConvertible {
    /// LZ4 legacy frame (magic 0x184C2102), Debian's choice for its kernels.
    case lz4Legacy
    case gzip
    case xz
    case lzma
    case bzip2
    case lzo
    case zstd
    /// No compression: the payload is the ELF vmlinux itself
    /// (`CONFIG_KERNEL_UNCOMPRESSED`).
    case none
    case unknown

    /// Classifies a payload by its first bytes.
    public init<C: Collection>(detecting bytes: C) where C.Element == UInt8 {
        let head = Array(bytes.prefix(6))
        func starts(_ magic: [UInt8]) -> Bool { head.starts(with: magic) }
        if starts([0x02, 0x21, 0x4c, 0x18]) { self = .lz4Legacy }
        else if starts([0x1f, 0x8b]) || starts([0x1f, 0x9e]) { self = .gzip }
        else if starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) { self = .xz }
        // Legacy .lzma: properties byte 0x5d then a little-endian dictionary
        // size whose low bytes are zero for every size the kernel build uses.
        else if starts([0x5d, 0x00, 0x00]) { self = .lzma }
        else if starts([0x42, 0x5a, 0x68]) { self = .bzip2 }
        else if starts([0x89, 0x4c, 0x5a, 0x4f]) { self = .lzo }
        else if starts([0x28, 0xb5, 0x2f, 0xfd]) { self = .zstd }
        else if starts([0x7f, 0x45, 0x4c, 0x46]) { self = .none }
        else { self = .unknown }
    }

    /// Short name used in messages ("gzip", "LZ4").
    public var name: String {
        switch self {
        case .lz4Legacy: "LZ4"
        case .gzip: "gzip"
        case .xz: "xz"
        case .lzma: "LZMA"
        case .bzip2: "bzip2"
        case .lzo: "LZO"
        case .zstd: "zstd"
        case .none: "un"
        case .unknown: "unknown"
        }
    }

    public var description: String {
        switch self {
        case .lz4Legacy: "LZ4 (legacy frame)"
        case .none: "uncompressed ELF"
        case .unknown: "unknown"
        default: name
        }
    }
}

/// The real-mode header of an x86 bzImage (Linux `Documentation/arch/x86/boot.rst`).
///
/// Only what a 64-bit direct boot and the PV domain builder need is decoded:
/// where the protected-mode kernel starts, where its compressed payload lies,
/// and the load constraints. All offsets are validated against the file, so
/// `payload` and `protectedModeKernel` can be sliced without further checks.
public struct BzImage: Sendable {
    /// Boot protocol 2.08 introduced `payload_offset`/`payload_length`, which
    /// is what lets us find the vmlinux without running the decompressor stub.
    public static let minimumProtocol: UInt16 = 0x0208

    /// The whole file (copy-on-write shared, not copied).
    public let bytes: [UInt8]

    /// `setup_sects` as stored (0 means 4, for ancient kernels).
    public let setupSectors: UInt8
    /// `version`, e.g. 0x020f for protocol 2.15.
    public let protocolVersion: UInt16
    /// `loadflags` (bit 0 LOADED_HIGH, bit 5 QUIET_FLAG, bit 6 KEEP_SEGMENTS, bit 7 CAN_USE_HEAP).
    public let loadFlags: UInt8
    /// `xloadflags` (protocol 2.12+; 0 before), bit 0 XLF_KERNEL_64 etc.
    public let xloadFlags: UInt16
    /// `kernel_alignment`: physical alignment the kernel wants when relocated.
    public let kernelAlignment: UInt32
    /// `relocatable_kernel` is non-zero.
    public let relocatable: Bool
    /// `pref_address` (protocol 2.10+); 0x100000 for older kernels, as boot.rst says.
    public let prefAddress: UInt64
    /// `init_size` (protocol 2.10+; 0 before): bytes of linear memory the
    /// kernel needs from its load address until it has set itself up.
    public let initSize: UInt32
    /// `cmdline_size` (protocol 2.06+): longest command line, without the NUL.
    public let cmdlineSize: UInt32
    /// `payload_offset`: from the start of the protected-mode kernel.
    public let payloadOffset: UInt32
    /// `payload_length` in bytes. For LZ4 this includes the 4-byte
    /// uncompressed size Linux's build appends after the frame.
    public let payloadLength: UInt32
    /// File offset of the 32/64-bit kernel: (setup_sects + 1) * 512.
    public let protectedModeOffset: Int

    /// The payload's byte range in `bytes`.
    public let payloadRange: Range<Int>

    /// The payload bytes (a slice of `bytes`, indices are file offsets).
    public var payload: ArraySlice<UInt8> { bytes[payloadRange] }

    /// The protected-mode kernel's byte range in `bytes` (to the end of file).
    public var protectedModeKernel: Range<Int> { protectedModeOffset..<bytes.count }

    /// The kernel's version banner (`kernel_version` at 0x20e points to it,
    /// relative to 0x200), e.g. "6.1.0-56-cloud-amd64 (debian-kernel@...) #1
    /// SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (...)"; nil if absent or malformed.
    public var kernelVersion: String? {
        guard let pointer = bytes.le16(at: 0x20e), pointer != 0 else { return nil }
        let start = Int(pointer) + 0x200
        // The banner lives in the setup code; never read past it.
        let end = min(protectedModeOffset, bytes.count)
        guard start < end else { return nil }
        let text = bytes[start..<end].prefix { $0 != 0 }
        guard text.count < end - start, !text.isEmpty, text.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else { return nil }
        return String(decoding: text, as: UTF8.self)
    }

    /// Compression of the payload, from its magic.
    public var compression: PayloadCompression { PayloadCompression(detecting: payload) }

    /// LOADED_HIGH: a bzImage proper loads its protected-mode part at 1 MiB.
    public var loadedHigh: Bool { loadFlags & 0x01 != 0 }

    /// XLF_KERNEL_64: the kernel has a 64-bit entry point at +0x200.
    public var has64BitEntry: Bool { xloadFlags & 0x01 != 0 }

    public init(_ bytes: [UInt8]) throws {
        // The header ends at 0x268 or so; without 0x206 bytes not even the
        // signature and version can be read.
        guard bytes.count >= 0x208 else {
            throw GuestImageError.notBzImage(reason: "file is only \(bytes.count) bytes, too short for the setup header")
        }
        guard bytes[0x202..<0x206].elementsEqual([0x48, 0x64, 0x72, 0x53]) else {
            throw GuestImageError.notBzImage(reason: "no 'HdrS' signature at offset 0x202")
        }
        guard bytes.le16(at: 0x1fe) == 0xaa55 else {
            throw GuestImageError.notBzImage(reason: "no 0xAA55 boot flag at offset 0x1fe")
        }
        let version = bytes.le16(at: 0x206)!
        guard version >= Self.minimumProtocol else {
            throw GuestImageError.bootProtocolTooOld(version: version, needed: Self.minimumProtocol)
        }
        // Every field up to pref_address/init_size (0x264) must be present.
        guard bytes.count >= 0x264 else {
            throw GuestImageError.notBzImage(reason: "file is only \(bytes.count) bytes, too short for a protocol \(protocolText(version)) header")
        }

        self.bytes = bytes
        protocolVersion = version
        setupSectors = bytes[0x1f1]
        loadFlags = bytes[0x211]
        kernelAlignment = bytes.le32(at: 0x230)!
        relocatable = bytes[0x234] != 0
        xloadFlags = version >= 0x020c ? bytes.le16(at: 0x236)! : 0
        cmdlineSize = bytes.le32(at: 0x238)!
        payloadOffset = bytes.le32(at: 0x248)!
        payloadLength = bytes.le32(at: 0x24c)!
        prefAddress = version >= 0x020a ? bytes.le64(at: 0x258)! : 0x100000
        initSize = version >= 0x020a ? bytes.le32(at: 0x260)! : 0

        // setup_sects == 0 is a historical encoding of 4 (boot.rst).
        let sectors = setupSectors == 0 ? 4 : Int(setupSectors)
        protectedModeOffset = (sectors + 1) * 512
        guard protectedModeOffset < bytes.count else {
            throw GuestImageError.notBzImage(reason: "setup code (\(sectors) sectors) covers the whole \(bytes.count)-byte file, leaving no protected-mode kernel")
        }
        let start = UInt64(protectedModeOffset) + UInt64(payloadOffset)
        guard let range = checkedRange(offset: start, length: UInt64(payloadLength), within: bytes.count),
              !range.isEmpty
        else {
            throw GuestImageError.payloadOutOfRange(offset: Int(start), length: Int(payloadLength), fileSize: bytes.count)
        }
        payloadRange = range
    }
}
