/// A guest kernel ready to load: the vmlinux ELF (decompressed from a
/// bzImage if that is what the file was) and its Xen PV metadata.
public struct GuestKernel: Sendable {
    /// The vmlinux.
    public let elf: ELFImage
    /// Set when the file was a bzImage (its header, for an HVM direct boot).
    public let bzImage: BzImage?
    /// The kernel's Xen PV notes, or nil if it has none (HVM-only kernel).
    public let xen: XenNotes?

    /// The vmlinux file bytes.
    public var elfBytes: [UInt8] { elf.bytes }

    public init(elf: ELFImage, bzImage: BzImage? = nil) throws {
        guard elf.segments.contains(where: \.isLoad) else {
            throw GuestImageError.malformedELF(reason: "kernel has no PT_LOAD segments")
        }
        self.elf = elf
        self.bzImage = bzImage
        do {
            xen = try XenNotes(elf)
        } catch GuestImageError.noXenNotes {
            xen = nil
        }
    }

    /// Reads `path`, a bzImage (its payload is decompressed; LZ4 legacy or
    /// uncompressed) or a raw ELF vmlinux.
    ///
    /// `decompressionLimit` caps both the file size and the decompressed
    /// kernel, so a wrong or hostile file cannot make the VMM allocate
    /// without bound. Malformed Xen notes throw; absent ones give `xen == nil`.
    public static func load(path: String, decompressionLimit: Int = 512 << 20) throws -> GuestKernel {
        let bytes = try readWholeFile(path, limit: decompressionLimit)
        return try GuestKernel(fileBytes: bytes, decompressionLimit: decompressionLimit)
    }

    /// As `load(path:)`, from bytes already in memory.
    public init(fileBytes bytes: [UInt8], decompressionLimit: Int = 512 << 20) throws {
        if bytes.starts(with: [0x7f, 0x45, 0x4c, 0x46]) {
            try self.init(elf: ELFImage(bytes))
            return
        }
        guard bytes.count >= 0x206, bytes[0x202..<0x206].elementsEqual([0x48, 0x64, 0x72, 0x53]) else {
            throw GuestImageError.notAKernel(reason: "neither an ELF header at offset 0 nor a bzImage 'HdrS' signature at offset 0x202")
        }
        let image = try BzImage(bytes)
        let payload = image.payload
        let elfBytes: [UInt8]
        switch image.compression {
        case .lz4Legacy:
            elfBytes = try LZ4.decompressLegacy(payload, limit: decompressionLimit)
        case .none:
            elfBytes = Array(payload)
        case let other:
            throw GuestImageError.unsupportedCompression(other, firstBytes: Array(payload.prefix(4)))
        }
        try self.init(elf: ELFImage(elfBytes), bzImage: image)
    }

    /// Calls `body` for each PT_LOAD in file order with its physical load
    /// address, its file bytes and its size in memory (the rest, past the
    /// file bytes, is zero: .bss). Loaders place segments by p_paddr: the
    /// kernel's `.data..percpu` has p_vaddr 0.
    public func loadSegments(
        into body: (_ paddr: UInt64, _ bytes: UnsafeRawBufferPointer, _ memorySize: UInt64) throws -> Void
    ) throws {
        try elf.bytes.withUnsafeBytes { file in
            for (index, segment) in elf.segments.enumerated() where segment.isLoad {
                // Checked at parse time; checked again because this is the
                // line that hands bytes to a loader.
                guard let range = checkedRange(offset: segment.offset, length: segment.fileSize, within: file.count) else {
                    throw GuestImageError.malformedELF(reason: "segment \(index) lies outside the file")
                }
                try body(segment.paddr, UnsafeRawBufferPointer(rebasing: file[range]), segment.memorySize)
            }
        }
    }

    /// Lowest p_paddr and highest p_paddr + p_memsz over the PT_LOADs
    /// (end exclusive).
    public func kernelPhysicalRange() -> (start: UInt64, end: UInt64) {
        let loads = elf.segments.filter(\.isLoad)
        guard let first = loads.first else { return (0, 0) }
        var start = first.paddr
        var end = first.paddr + first.memorySize
        for s in loads.dropFirst() {
            start = min(start, s.paddr)
            end = max(end, s.paddr + s.memorySize)  // no overflow: validated at parse
        }
        return (start, end)
    }
}
