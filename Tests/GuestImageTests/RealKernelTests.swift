import Glibc
import Testing
@testable import GuestImage

/// Where the real Debian kernel is: `$XENOLITH_KERNEL`, else the kit's copy.
/// (From the package: `dpkg-deb -x linux-image-6.1.0-56-cloud-amd64_*.deb`
/// gives `boot/vmlinuz-6.1.0-56-cloud-amd64`.)
enum RealKernel {
    static let kitPath = "/var/cache/xenolith/kit/vmlinuz"

    static let path: String? = {
        if let env = getenv("XENOLITH_KERNEL") {
            let p = String(cString: env)
            return access(p, R_OK) == 0 ? p : nil
        }
        return access(kitPath, R_OK) == 0 ? kitPath : nil
    }()

    static var whyMissing: String {
        if let env = getenv("XENOLITH_KERNEL") {
            return "XENOLITH_KERNEL=\(String(cString: env)) is not a readable file"
        }
        return "no kernel: set XENOLITH_KERNEL or build \(kitPath) with the kit script"
    }

    /// The exact build PV-NOTES was written from; version-specific numbers
    /// are checked only for it.
    static let notesVersion = "6.1.0-56-cloud-amd64 "

    static func lz4Available() -> Bool {
        access("/usr/bin/lz4", X_OK) == 0 || access("/bin/lz4", X_OK) == 0
    }
}

/// Length and FNV-1a of what `command` writes to stdout.
func checksumOfCommandOutput(_ command: String) -> (count: Int, hash: UInt64)? {
    guard let pipe = popen(command, "r") else { return nil }
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    var count = 0
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, pipe) }
        if n == 0 { break }
        for b in buffer[0..<n] { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        count += n
    }
    pclose(pipe)  // lz4 exits 1 on Linux's size trailer; the bytes are what we compare.
    return (count, h)
}

@Suite struct RealKernelTests {
    @Test func reportsWhichKernel() {
        if let path = RealKernel.path {
            print("real-kernel tests: using \(path)")
        } else {
            print("real-kernel tests skipped: \(RealKernel.whyMissing)")
        }
    }

    @Test(.enabled(if: RealKernel.path != nil, "no real kernel: set XENOLITH_KERNEL or build /var/cache/xenolith/kit/vmlinuz"))
    func debianCloudKernel() throws {
        let path = try #require(RealKernel.path)
        let clock = ContinuousClock()
        let start = clock.now
        let kernel = try GuestKernel.load(path: path)
        let elapsed = clock.now - start
        #if DEBUG
        let build = "debug build"
        #else
        let build = "release build"
        #endif
        print("GuestKernel.load(\(path)): \(kernel.elfBytes.count) bytes of vmlinux in \(elapsed) (\(build))")

        // bzImage header (PV-NOTES, "K").
        let bz = try #require(kernel.bzImage)
        #expect(bz.protocolVersion >= 0x0208)
        #expect(bz.compression == .lz4Legacy)
        #expect(bz.has64BitEntry && bz.loadedHigh && bz.relocatable)
        let version = bz.kernelVersion ?? ""
        print("kernel version: \(version)")
        let exact = version.hasPrefix(RealKernel.notesVersion)
        if exact {
            // "Its payload is at (setup_sects+1)·512 + payload_offset (0x248) = 0x52cc."
            #expect(bz.payloadRange.lowerBound == 0x52cc)
            #expect(bz.protectedModeOffset + Int(bz.payloadOffset) == 0x52cc)
            #expect(bz.protocolVersion == 0x020f)
            #expect(kernel.elfBytes.count == 53_243_444)
        }
        // Linux's trailer: the last 4 payload bytes are the vmlinux size.
        let trailer = bz.bytes.le32(at: bz.payloadRange.upperBound - 4)
        #expect(trailer.map(Int.init) == kernel.elfBytes.count)

        // ELF: physical entry at CONFIG_PHYSICAL_START, loads by p_paddr.
        let elf = kernel.elf
        #expect(elf.entry == 0x100_0000)
        let range = kernel.kernelPhysicalRange()
        #expect(range.start == 0x100_0000)
        #expect(elf.loadSegments.contains { $0.vaddr == 0 && $0.paddr != 0 }, ".data..percpu has p_vaddr 0")
        if exact {
            // "the kernel occupies pfn 0x1000–0x3dff"
            #expect(range.end == 0x3e0_0000)
        }
        var loaded: UInt64 = 0
        try kernel.loadSegments { paddr, bytes, memorySize in
            #expect(paddr >= range.start && paddr + memorySize <= range.end)
            #expect(UInt64(bytes.count) <= memorySize)
            loaded += UInt64(bytes.count)
        }
        #expect(loaded > 20 << 20)

        // Xen notes (PV-NOTES 1.1).
        let xen = try #require(kernel.xen)
        #expect(xen.virtBase == 0xffff_ffff_8000_0000)
        #expect(xen.paddrOffset == 0)
        #expect(xen.hvStartLow == 0xffff_8000_0000_0000)
        #expect(xen.initP2M == 0x80_0000_0000)
        #expect(xen.hypercallPage == nil, "XSA-466 backport: no hypercall page")
        #expect(xen.features.contains("!writable_page_tables"))
        #expect(xen.requiredFeatures.contains("writable_page_tables"))
        #expect(xen.modStartPFN)
        #expect(xen.suspendCancel)
        #expect(xen.guestOS == "linux" && xen.loader == "generic" && xen.xenVersion == "xen-3.0" && xen.paeMode == "yes")
        #expect(xen.l1MFNValid == [.init(mask: 1, value: 1)])
        #expect(xen.supportedFeatures.map { $0 & 1 } == 1, "writable_page_tables supported")
        // The PV entry is inside the kernel, at VIRT_BASE + its physical address.
        let entryPhys = xen.entry &- xen.virtBase
        #expect(entryPhys >= range.start && entryPhys < range.end)
        if exact {
            #expect(xen.entry == 0xffff_ffff_8304_e1c0)
            #expect(xen.features == "!writable_page_tables|pae_pgdir_above_4gb")
            #expect(xen.supportedFeatures == 0x8801)
            #expect(xen.phys32Entry == 0x100_0850)
        }
    }

    @Test(.enabled(if: RealKernel.path != nil && RealKernel.lz4Available(),
                   "needs the real kernel and the lz4 tool"))
    func decompressionMatchesLZ4Tool() throws {
        let path = try #require(RealKernel.path)
        let file = try readWholeFile(path, limit: 512 << 20)
        let bz = try BzImage(file)
        let ours = try LZ4.decompressLegacy(bz.payload, limit: 512 << 20)
        let oursHash = ours.withUnsafeBytes(fnv1a)
        let theirs = try withTemporaryFile(Array(bz.payload)) { (payloadPath: String) throws in
            try #require(checksumOfCommandOutput("lz4 -dc < '\(payloadPath)' 2>/dev/null"))
        }
        #expect(ours.count == theirs.count)
        #expect(oursHash == theirs.hash)
        print("vmlinux: \(ours.count) bytes, FNV-1a 0x\(String(oursHash, radix: 16)), equal to lz4 -dc: \(oursHash == theirs.hash)")
    }

    /// Meaningful in `swift test -c release`; in debug it only shows the order of magnitude.
    @Test(.enabled(if: RealKernel.path != nil, "no real kernel"))
    func lz4Throughput() throws {
        let path = try #require(RealKernel.path)
        let bz = try BzImage(readWholeFile(path, limit: 512 << 20))
        let clock = ContinuousClock()
        var best = Duration.seconds(3600)
        var count = 0
        for _ in 0..<3 {
            let start = clock.now
            count = try LZ4.decompressLegacy(bz.payload, limit: 512 << 20).count
            best = min(best, clock.now - start)
        }
        let seconds = Double(best.components.seconds) + Double(best.components.attoseconds) * 1e-18
        print("LZ4 legacy: \(count) bytes in \(Int(seconds * 1000)) ms = \(Int(Double(count) / seconds / 1e6)) MB/s (best of 3, output bytes)")
    }
}
