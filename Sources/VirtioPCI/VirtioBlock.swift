import BlockStorage
import Glibc
import Virtio

/// virtio-blk (virtio 1.2 §5.2) over a flat-file disk: read, write, flush,
/// discard, write-zeroes and GET_ID, one request queue.
///
/// A request is a 16-byte header (type, reserved, sector), data buffers,
/// and a status byte, the last writable byte. Each request is judged alone:
/// a bad header, a range off the disk or a write to a read-only disk fails
/// that request with IOERR or UNSUPP; a chain with no room for the status
/// byte cannot even be answered and is returned with nothing written.
public final class VirtioBlock: VirtioDevice, @unchecked Sendable {
    public let disk: FlatFileDisk
    public var type: VirtioDeviceType { .block }
    public let queueMaxSizes: [UInt16] = [256]
    /// I/O vectors for one request's data, reused: no allocation per request.
    private let vectors: UnsafeMutableBufferPointer<iovec>

    public init(disk: FlatFileDisk) {
        self.disk = disk
        vectors = .allocate(capacity: VirtqueueLimits().maxSegments)
    }

    deinit { vectors.deallocate() }

    enum Feature {
        static let readOnly: UInt64 = 1 << 5
        static let flush: UInt64 = 1 << 9
        static let discard: UInt64 = 1 << 13
        static let writeZeroes: UInt64 = 1 << 14
    }

    enum RequestType {
        static let read: UInt32 = 0, write: UInt32 = 1, flush: UInt32 = 4, getID: UInt32 = 8
        static let discard: UInt32 = 11, writeZeroes: UInt32 = 13
    }

    enum Status {
        static let ok: UInt8 = 0, ioError: UInt8 = 1, unsupported: UInt8 = 2
    }

    static let sector: UInt64 = 512
    /// One discard or write-zeroes request carries one range (max_*_seg = 1).
    static let maxRangeSectors: UInt32 = 0x3f_ffff

    public var deviceFeatures: UInt64 {
        Feature.flush | (disk.isReadOnly ? Feature.readOnly : Feature.discard | Feature.writeZeroes)
    }

    /// struct virtio_blk_config, 60 bytes: capacity in sectors, and the
    /// discard and write-zeroes limits (seg_max, geometry, topology left 0).
    public var configSpace: [UInt8] {
        var c = [UInt8](repeating: 0, count: 60)
        func put(_ v: UInt64, _ at: Int, _ width: Int) {
            for i in 0..<width { c[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
        }
        put(disk.sectors, 0, 8)
        put(512, 20, 4)                              // blk_size (not negotiated, but accurate)
        if !disk.isReadOnly {
            put(UInt64(Self.maxRangeSectors), 36, 4) // max_discard_sectors
            put(1, 40, 4)                            // max_discard_seg
            put(8, 44, 4)                            // discard_sector_alignment: 4 KiB
            put(UInt64(Self.maxRangeSectors), 48, 4) // max_write_zeroes_sectors
            put(1, 52, 4)                            // max_write_zeroes_seg
            put(1, 56, 1)                            // write_zeroes_may_unmap
        }
        return c
    }

    public func reset() {}

    public func service<Memory: GuestMemoryView>(queue index: Int, _ queue: Virtqueue<Memory>) {
        while true {
            switch queue.popAvailable() {
            case .empty, .failed:
                return
            case .refused(let head, let error):
                report("virtio-blk \(disk.path): request refused: \(error)")
                try? queue.pushUsed(id: head, length: 0)
            case .chain(let chain):
                let written = handle(chain)
                try? queue.pushUsed(id: chain.head, length: written)
            }
        }
    }

    /// Does one request; returns the bytes written into the chain (data and status).
    func handle(_ chain: DescriptorChain) -> UInt32 {
        let writable = chain.writable
        guard chain.writableLength >= 1 else { return 0 }          // nowhere to put a status
        let statusOffset = chain.writableLength - 1
        func finish(_ status: UInt8, dataBytes: UInt64 = 0) -> UInt32 {
            var s = status
            _ = withUnsafeBytes(of: &s) { writable.copyIn($0, at: statusOffset) }
            return UInt32(truncatingIfNeeded: dataBytes + 1)
        }

        // The header is copied out once; the guest may change its buffer.
        var header = (UInt64(0), UInt64(0))
        let got = withUnsafeMutableBytes(of: &header) { chain.readable.copyOut(from: 0, into: $0) }
        guard got == 16 else { return finish(Status.ioError) }
        let type = UInt32(truncatingIfNeeded: UInt64(littleEndian: header.0))
        let sector = UInt64(littleEndian: header.1)
        let readableData = chain.readableLength - 16

        switch type {
        case RequestType.read:
            let length = statusOffset
            guard let offset = byteRange(sector: sector, length: length) else { return finish(Status.ioError) }
            guard let n = writable.vectors(from: 0, length: length, into: vectors),
                  case .success = disk.read(vectors: UnsafeBufferPointer(rebasing: vectors[..<n]), at: offset)
            else { return finish(Status.ioError) }
            return finish(Status.ok, dataBytes: length)
        case RequestType.write:
            guard !disk.isReadOnly else { return finish(Status.ioError) }
            guard let offset = byteRange(sector: sector, length: readableData) else { return finish(Status.ioError) }
            guard let n = chain.readable.vectors(from: 16, length: readableData, into: vectors),
                  case .success = disk.write(vectors: UnsafeBufferPointer(rebasing: vectors[..<n]), at: offset)
            else { return finish(Status.ioError) }
            return finish(Status.ok)
        case RequestType.flush:
            guard case .success = disk.flush() else { return finish(Status.ioError) }
            return finish(Status.ok)
        case RequestType.getID:
            // Up to 20 bytes, NUL-padded when shorter (§5.2.6).
            var id = (UInt64(0), UInt64(0), UInt32(0))
            withUnsafeMutableBytes(of: &id) { buffer in
                for (i, b) in disk.serial.utf8.prefix(20).enumerated() { buffer[i] = b }
            }
            let room = Int(min(statusOffset, 20))
            let n = withUnsafeBytes(of: &id) { writable.copyIn(UnsafeRawBufferPointer(rebasing: $0[..<room]), at: 0) }
            return finish(Status.ok, dataBytes: UInt64(n))
        case RequestType.discard, RequestType.writeZeroes:
            guard !disk.isReadOnly else { return finish(Status.ioError) }
            return finish(zeroRange(chain, discard: type == RequestType.discard))
        default:
            return finish(Status.unsupported)
        }
    }

    /// One discard or write-zeroes range: {sector u64, num_sectors u32, flags u32}.
    private func zeroRange(_ chain: DescriptorChain, discard: Bool) -> UInt8 {
        var range = (UInt64(0), UInt32(0), UInt32(0))
        let got = withUnsafeMutableBytes(of: &range) { chain.readable.copyOut(from: 16, into: $0) }
        // Exactly one range: max_discard_seg and max_write_zeroes_seg are 1.
        guard got == 16, chain.readableLength == 32 else { return Status.ioError }
        let sector = UInt64(littleEndian: range.0)
        let count = UInt32(littleEndian: range.1)
        let flags = UInt32(littleEndian: range.2)
        // Discard has no flags; write-zeroes has only "unmap" (bit 0).
        guard flags & ~(discard ? 0 : 1) == 0, count <= Self.maxRangeSectors,
              let offset = byteRange(sector: sector, length: UInt64(count) * Self.sector) else { return Status.ioError }
        let result = discard ? disk.discard(offset: offset, count: UInt64(count) * Self.sector)
                             : disk.writeZeroes(offset: offset, count: UInt64(count) * Self.sector)
        guard case .success = result else { return Status.ioError }
        return Status.ok
    }

    /// The byte offset of `length` bytes at `sector`, when they are whole
    /// sectors wholly on the disk.
    private func byteRange(sector: UInt64, length: UInt64) -> UInt64? {
        let (offset, overflow) = sector.multipliedReportingOverflow(by: Self.sector)
        guard !overflow, length % Self.sector == 0, disk.contains(offset: offset, count: length) else { return nil }
        return offset
    }
}
