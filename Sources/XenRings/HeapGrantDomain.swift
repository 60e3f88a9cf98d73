/// A guest's RAM and grant table in ordinary heap memory, for tests and the
/// fuzzer: what `PVDomain` gives the backends, without a VM.
///
/// Every 4 KiB frame is its own exact-size allocation, so an address
/// sanitizer reports any access a backend makes past the end (or before the
/// start) of a granted page, even into the frame next to it. The domain also
/// keeps a list of the claims still open, so that a harness can check that
/// the backend touches only pages it holds.
public final class HeapGrantDomain: GrantMapper, @unchecked Sendable {
    public static let pageSize = 4096
    public static let entriesPerFrame = 512

    /// Guest frames 0..<frameCount are RAM.
    public let frameCount: Int
    private var pages: [UnsafeMutableRawPointer]
    /// Frames given back (balloon): not RAM the guest may grant.
    public var ballooned: [Bool]
    /// The grant table: `tableFrames` frames of entries, of which the guest
    /// has set up `framesInUse` (GNTTABOP_setup_table).
    public let table: UnsafeMutableRawPointer
    public let tableFrames: Int
    public var framesInUse: Int
    private let pins: UnsafeMutablePointer<UInt64>
    public var entries: GrantEntries { GrantEntries(base: table, pins: pins, capacity: tableFrames * Self.entriesPerFrame) }
    public var entryCount: Int { min(framesInUse, tableFrames) * Self.entriesPerFrame }

    /// A claim not yet released.
    public struct Claim: Equatable, Sendable {
        public let ref: UInt32
        public let frame: Int
        public let writable: Bool
    }
    public private(set) var claims: [Claim] = []

    public init(frames: Int, tableFrames: Int = 1, framesInUse: Int? = nil) {
        frameCount = max(frames, 0)
        pages = (0..<max(frames, 0)).map { _ in
            let p = UnsafeMutableRawPointer.allocate(byteCount: Self.pageSize, alignment: Self.pageSize)
            p.initializeMemory(as: UInt8.self, repeating: 0, count: Self.pageSize)
            return p
        }
        ballooned = Array(repeating: false, count: max(frames, 0))
        self.tableFrames = max(tableFrames, 1)
        table = .allocate(byteCount: self.tableFrames * Self.pageSize, alignment: Self.pageSize)
        table.initializeMemory(as: UInt8.self, repeating: 0, count: self.tableFrames * Self.pageSize)
        pins = .allocate(capacity: self.tableFrames * Self.entriesPerFrame)
        pins.initialize(repeating: 0, count: self.tableFrames * Self.entriesPerFrame)
        self.framesInUse = framesInUse ?? self.tableFrames
        claims.reserveCapacity(64)
    }

    deinit {
        for p in pages { p.deallocate() }
        table.deallocate()
        pins.deallocate()
    }

    /// The host page behind guest frame `frame` (which must be RAM).
    public func page(_ frame: Int) -> UnsafeMutableRawPointer { pages[frame] }

    /// Writes grant entry `ref` as a guest does (`gnttab_grant_foreign_access`).
    public func grant(_ ref: UInt32, frame: UInt32, domain: UInt16 = 0, flags: UInt16 = GrantEntries.permitAccess) {
        precondition(Int(ref) < tableFrames * Self.entriesPerFrame)
        let entry = table + Int(ref) * 8
        entry.storeBytes(of: flags, as: UInt16.self)
        entry.storeBytes(of: domain, toByteOffset: 2, as: UInt16.self)
        entry.storeBytes(of: frame, toByteOffset: 4, as: UInt32.self)
    }

    /// The flags of entry `ref` as the guest sees them.
    public func flags(_ ref: UInt32) -> UInt16 {
        precondition(Int(ref) < tableFrames * Self.entriesPerFrame)
        return table.load(fromByteOffset: Int(ref) * 8, as: UInt16.self)
    }

    public func claim(grant ref: UInt32, writable: Bool) -> Result<UnsafeMutableRawPointer, GrantRefusal> {
        switch entries.claim(ref, writable: writable, entries: entryCount) {
        case .failure(let why): return .failure(why)
        case .success(let frame):
            guard frame < UInt64(frameCount), !ballooned[Int(frame)] else {
                entries.release(ref, writable: writable, entries: entryCount)
                return .failure(.frameNotGuestRAM(ref: ref, frame: frame))
            }
            claims.append(Claim(ref: ref, frame: Int(frame), writable: writable))
            return .success(pages[Int(frame)])
        }
    }

    public func release(grant ref: UInt32, writable: Bool) {
        entries.release(ref, writable: writable, entries: entryCount)
        if let i = claims.lastIndex(where: { $0.ref == ref && $0.writable == writable }) { claims.remove(at: i) }
    }

    /// Whether `count` bytes at `pointer` lie within one page the backend
    /// holds a claim on (a writable claim, if `writable`).
    public func isClaimed(_ pointer: UnsafeRawPointer, count: Int, writable: Bool) -> Bool {
        claims.contains { c in
            let start = UnsafeRawPointer(pages[c.frame])
            return (!writable || c.writable) && pointer >= start && count >= 0
                && pointer - start <= Self.pageSize - count
        }
    }
}
