/// The Xen PV boot metadata a kernel publishes in ELF notes named "Xen"
/// (Xen's public `elfnote.h`; Linux emits them in `arch/x86/xen/xen-head.S`).
///
/// Numeric notes are little-endian integers of 1, 2, 4 or 8 bytes (Linux
/// uses 8 for addresses and 4 for flags; Xen's libelf accepts any of these).
/// String notes are NUL-terminated ASCII. Defaults for absent notes follow
/// Xen's libelf, so a PV builder can use the values directly.
public struct XenNotes: Equatable, Sendable {
    /// Note type numbers from `xen/elfnote.h`.
    public enum NoteType {
        public static let info: UInt32 = 0
        public static let entry: UInt32 = 1
        public static let hypercallPage: UInt32 = 2
        public static let virtBase: UInt32 = 3
        public static let paddrOffset: UInt32 = 4
        public static let xenVersion: UInt32 = 5
        public static let guestOS: UInt32 = 6
        public static let guestVersion: UInt32 = 7
        public static let loader: UInt32 = 8
        public static let paeMode: UInt32 = 9
        public static let features: UInt32 = 10
        public static let bsdSymtab: UInt32 = 11
        public static let hvStartLow: UInt32 = 12
        public static let l1MFNValid: UInt32 = 13
        public static let suspendCancel: UInt32 = 14
        public static let initP2M: UInt32 = 15
        public static let modStartPFN: UInt32 = 16
        public static let supportedFeatures: UInt32 = 17
        public static let phys32Entry: UInt32 = 18
    }

    /// One (mask, value) pair of XEN_ELFNOTE_L1_MFN_VALID: a non-present L1
    /// entry whose bits under `mask` equal `value` still carries an MFN.
    public struct MaskValue: Equatable, Sendable {
        public let mask: UInt64
        public let value: UInt64
        public init(mask: UInt64, value: UInt64) {
            self.mask = mask
            self.value = value
        }
    }

    /// Virtual address of the PV entry point (`startup_xen`). Without the
    /// note, the ELF header's entry, as libelf does.
    public var entry: UInt64
    /// Virtual address the kernel image is mapped at; 0 when absent.
    public var virtBase: UInt64
    /// Offset between ELF p_paddr and the wanted pseudo-physical address; 0
    /// when absent (the non-legacy default).
    public var paddrOffset: UInt64
    /// Virtual address of the hypercall page, if the kernel wants one filled.
    public var hypercallPage: UInt64?
    /// Where the initial p2m list should be mapped, if not after the kernel.
    public var initP2M: UInt64?
    /// Lowest address the hypervisor hole may start at.
    public var hvStartLow: UInt64?
    /// The FEATURES string, e.g. "!writable_page_tables|pae_pgdir_above_4gb".
    public var features: String
    /// The SUPPORTED_FEATURES bitmap (XENFEAT_* bit numbers).
    public var supportedFeatures: UInt32?
    public var loader: String?
    public var guestOS: String?
    public var guestVersion: String?
    public var xenVersion: String?
    public var paeMode: String?
    public var bsdSymtab: String?
    /// Recognisers for non-present L1 entries that carry MFNs.
    public var l1MFNValid: [MaskValue]
    public var suspendCancel: Bool
    /// The kernel accepts an initrd given as a PFN and left unmapped.
    public var modStartPFN: Bool
    /// PVH 32-bit entry (ignored by PV).
    public var phys32Entry: UInt32?
    /// Every "Xen" note in file order, including types this struct does not decode.
    public var rawNotes: [ELFImage.Note]

    /// The FEATURES entries, split at '|'.
    public var featureList: [String] {
        features.split(separator: "|", omittingEmptySubsequences: true).map(String.init)
    }

    /// Features the kernel cannot run without (entries prefixed with '!'),
    /// without the '!'.
    public var requiredFeatures: [String] {
        featureList.filter { $0.hasPrefix("!") }.map { String($0.dropFirst()) }
    }

    /// Decodes the "Xen" notes of `elf`. Throws `.noXenNotes` when there are
    /// none (the kernel was built without `CONFIG_XEN_PV`), and
    /// `.malformedXenNote` for a note whose value has an impossible size.
    public init(_ elf: ELFImage) throws {
        let xen = elf.notes.filter { $0.name == "Xen" }
        guard !xen.isEmpty else { throw GuestImageError.noXenNotes }

        entry = elf.entry
        virtBase = 0
        paddrOffset = 0
        features = ""
        l1MFNValid = []
        suspendCancel = false
        modStartPFN = false
        rawNotes = xen

        func number(_ note: ELFImage.Note) throws -> UInt64 {
            guard let v = littleEndianInteger(note.desc[...]) else {
                throw GuestImageError.malformedXenNote(type: note.type, reason: "numeric value is \(note.desc.count) bytes; expected 1, 2, 4 or 8")
            }
            return v
        }
        func string(_ note: ELFImage.Note) -> String {
            let text = note.desc.prefix { $0 != 0 }
            return String(decoding: text, as: UTF8.self)
        }

        // Later notes of the same type override earlier ones, as in libelf.
        for note in xen {
            switch note.type {
            case NoteType.entry: entry = try number(note)
            case NoteType.hypercallPage: hypercallPage = try number(note)
            case NoteType.virtBase: virtBase = try number(note)
            case NoteType.paddrOffset: paddrOffset = try number(note)
            case NoteType.xenVersion: xenVersion = string(note)
            case NoteType.guestOS: guestOS = string(note)
            case NoteType.guestVersion: guestVersion = string(note)
            case NoteType.loader: loader = string(note)
            case NoteType.paeMode: paeMode = string(note)
            case NoteType.features: features = string(note)
            case NoteType.bsdSymtab: bsdSymtab = string(note)
            case NoteType.hvStartLow: hvStartLow = try number(note)
            case NoteType.l1MFNValid: l1MFNValid = try Self.maskValuePairs(note)
            case NoteType.suspendCancel: suspendCancel = try number(note) != 0
            case NoteType.initP2M: initP2M = try number(note)
            case NoteType.modStartPFN: modStartPFN = try number(note) != 0
            case NoteType.supportedFeatures:
                let v = try number(note)
                guard let bits = UInt32(exactly: v) else {
                    throw GuestImageError.malformedXenNote(type: note.type, reason: "value 0x\(hex(v)) does not fit the 32-bit feature bitmap")
                }
                supportedFeatures = bits
            case NoteType.phys32Entry:
                let v = try number(note)
                guard let address = UInt32(exactly: v) else {
                    throw GuestImageError.malformedXenNote(type: note.type, reason: "value 0x\(hex(v)) is not a 32-bit address")
                }
                phys32Entry = address
            default:
                break  // INFO and types newer than this code: kept in rawNotes.
            }
        }
    }

    /// L1_MFN_VALID is a list of maddr_t-sized (8-byte on x86-64) mask/value
    /// pairs; 4-byte pairs are accepted when the size only fits those.
    static func maskValuePairs(_ note: ELFImage.Note) throws -> [MaskValue] {
        let d = note.desc
        let width: Int
        if d.count % 16 == 0 { width = 8 }
        else if d.count % 8 == 0 { width = 4 }
        else {
            throw GuestImageError.malformedXenNote(type: note.type, reason: "\(d.count) bytes is not a whole number of mask/value pairs")
        }
        var pairs: [MaskValue] = []
        var at = 0
        while at < d.count {
            let mask = littleEndianInteger(d[at..<(at + width)])!
            let value = littleEndianInteger(d[(at + width)..<(at + 2 * width)])!
            pairs.append(MaskValue(mask: mask, value: value))
            at += 2 * width
        }
        return pairs
    }

    /// Xen's name for a note type, for messages ("ENTRY", "HV_START_LOW").
    public static func noteName(_ type: UInt32) -> String {
        let names = ["INFO", "ENTRY", "HYPERCALL_PAGE", "VIRT_BASE", "PADDR_OFFSET", "XEN_VERSION",
                     "GUEST_OS", "GUEST_VERSION", "LOADER", "PAE_MODE", "FEATURES", "BSD_SYMTAB",
                     "HV_START_LOW", "L1_MFN_VALID", "SUSPEND_CANCEL", "INIT_P2M", "MOD_START_PFN",
                     "SUPPORTED_FEATURES", "PHYS32_ENTRY"]
        return Int(type) < names.count ? names[Int(type)] : "type \(type)"
    }
}
