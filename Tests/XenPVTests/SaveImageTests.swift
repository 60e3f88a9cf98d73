import Glibc
import KVM
import Testing
@testable import XenPV

/// The save image's reader on files made here (no KVM): a well-formed image
/// loads; every truncation and thousands of byte flips are refused with an
/// error or load, and none crashes.
@Suite("save image format")
struct SaveImageTests {
    /// A well-formed image of a 16 MiB guest with one vCPU and two runs of pages.
    static func image() -> [UInt8] {
        var w = ByteWriter()
        w.bytes(SaveImage.magic); w.u32(SaveImage.version); w.u32(UInt32(SaveImage.headerSize)); w.u64(0)
        func record(_ type: SaveImage.RecordType, _ payload: [UInt8]) {
            w.u32(type.rawValue); w.u32(0); w.u64(UInt64(payload.count)); w.bytes(payload)
            while w.bytes.count % 8 != 0 { w.bytes([0]) }
        }
        var d = DomainRecord()
        d.memoryBytes = 16 << 20; d.vcpus = 1; d.maxVCPUs = 1; d.systemTime = 123
        d.storeFrame = 10; d.consoleFrame = 11; d.storePort = 1; d.consolePort = 2
        d.memoryTargetKiB = 16 << 10; d.startInfoFrame = 9; d.portsInUse = 20
        d.name = Array("saved".utf8); d.cmdline = Array("console=hvc0".utf8)
        var p = ByteWriter(); d.encode(into: &p); record(.domain, p.bytes)
        p = ByteWriter(); p.u64(1); p.u64(5 | 4 << 56); record(.pins, p.bytes)
        p = ByteWriter(); p.u64(0); record(.balloon, p.bytes)
        var v = VCPURecord()
        v.flags = VCPURecord.online | VCPURecord.initialised; v.fpuFormat = 2; v.kernelCR3 = 5 << 12
        p = ByteWriter(); v.encode(into: &p); record(.vcpu, p.bytes)
        // Memory: runs (0, 2) and (7, 1); pages after padding to 4 KiB.
        p = ByteWriter(); p.u64(2); p.u64(3); p.u64(0); p.u64(2); p.u64(7); p.u64(1)
        let tableEnd = w.bytes.count + 16 + p.bytes.count
        let padded = (tableEnd + 4095) & ~4095
        p.bytes(Array(repeating: 0, count: padded - tableEnd))
        for page in 0..<3 { p.bytes(Array(repeating: UInt8(page + 1), count: 4096)) }
        record(.memory, p.bytes)
        p = ByteWriter(); p.u64(UInt64(w.bytes.count + 24)); record(.end, p.bytes)
        return w.bytes
    }

    static func load(_ bytes: [UInt8]) -> Result<LoadedSaveImage, SaveImageError> {
        let path = "/tmp/xeno-save-image-test-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        defer { unlink(path) }
        do { return .success(try LoadedSaveImage(path: path)) } catch { return .failure(error) }
    }

    @Test("a vCPU record is the size the format says")
    func recordSize() {
        var w = ByteWriter()
        VCPURecord().encode(into: &w)
        #expect(w.bytes.count == VCPURecord.size && VCPURecord.size == 10_904)
    }

    @Test("a well-formed image loads with what was written")
    func wellFormed() throws {
        let image = try Self.load(Self.image()).get()
        #expect(image.name == "saved" && image.memoryBytes == 16 << 20 && image.cmdline == "console=hvc0")
        #expect(image.file.runs == [PageRun(first: 0, pages: 2), PageRun(first: 7, pages: 1)])
        #expect(image.pins.count == 1 && image.pins[0].frame == 5 && image.pins[0].level == .l4)
        #expect(image.vcpus.count == 1 && image.vcpus[0].kernelCR3 == 5 << 12)
        #expect(image.file.memoryDataOffset % 4096 == 0)
    }

    @Test("every truncation is refused as truncated or short")
    func truncations() {
        let bytes = Self.image()
        for length in stride(from: 0, to: bytes.count, by: 7) {
            guard case .failure(let e) = Self.load(Array(bytes.prefix(length))) else {
                Issue.record("a file cut to \(length) of \(bytes.count) bytes loaded")
                continue
            }
            #expect(e.description.contains("truncated") || e.description.contains("too short")
                    || e.description.contains("ends"), "cut to \(length): \(e)")
        }
    }

    @Test("byte flips anywhere outside the page data are refused or harmless; nothing crashes")
    func flips() {
        let bytes = Self.image()
        var rng = SystemRandomNumberGenerator()
        let dataStart = (try? Self.load(bytes).get().file.memoryDataOffset).map(Int.init) ?? bytes.count
        var refused = 0
        for _ in 0..<3000 {
            var b = bytes
            let at = Int.random(in: 0..<dataStart, using: &rng)
            b[at] ^= UInt8.random(in: 1...255, using: &rng)
            if case .failure = Self.load(b) { refused += 1 }
        }
        // Most bytes are register values the format cannot check; the
        // structure's bytes are.
        #expect(refused > 0)
    }
}
