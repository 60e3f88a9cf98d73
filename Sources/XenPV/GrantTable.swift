import CKVM
import Synchronization
import XenRings

/// The domain's grant table (Xen's v1 layout, `grant_table.h`): frames of
/// 8-byte entries `{ u16 flags; u16 domid; u32 frame }` in which the guest
/// says which of its pages a backend may use. Our backends live in the VMM
/// and already see all of the guest's memory, so "mapping" a grant is a
/// check of the entry (right domain, right access) plus the guest-visible
/// in-use flags, never a page-table change.
public final class GrantTable: @unchecked Sendable {
    /// Frames the guest may set up (GNTTABOP_query_size's max_nr_frames):
    /// 32 × 512 = 16,384 grants, ample for several disks and NICs.
    public static let maxFrames = 32
    public static let entriesPerFrame = 512

    /// Host pointer to frame 0; machine frame number of frame 0.
    let base: UnsafeMutableRawPointer
    let firstFrame: UInt64
    /// Frames the guest has set up so far (grows, never shrinks).
    let framesInUse = Atomic<Int>(0)

    /// Claims per entry (`GrantEntries`), and the lock that serializes the
    /// backends' threads' claims and releases.
    private let pins: UnsafeMutablePointer<UInt64>
    private let lock = Mutex<Void>(())

    init(base: UnsafeMutableRawPointer, firstFrame: UInt64) {
        self.base = base
        self.firstFrame = firstFrame
        pins = .allocate(capacity: Self.maxFrames * Self.entriesPerFrame)
        pins.initialize(repeating: 0, count: Self.maxFrames * Self.entriesPerFrame)
    }

    deinit { pins.deallocate() }

    private var entries: GrantEntries {
        GrantEntries(base: base, pins: pins, capacity: Self.maxFrames * Self.entriesPerFrame)
    }

    var frameNumbers: Range<UInt64> { firstFrame..<(firstFrame + UInt64(Self.maxFrames)) }

    /// The entries the guest has set up.
    var entryCount: Int { framesInUse.load(ordering: .acquiring) * Self.entriesPerFrame }

    /// Claims grant `ref` for the backend domain (0): checks that the guest
    /// permits domain 0 the access, marks the entry in use (so the guest's
    /// end-of-access sees it busy) and returns the granted guest frame.
    func claim(_ ref: UInt32, writable: Bool) -> Result<UInt64, GrantRefusal> {
        let count = entryCount
        return lock.withLock { _ in entries.claim(ref, writable: writable, entries: count) }
    }

    /// Ends one claim; the in-use flags go with the last claim that needs them.
    func release(_ ref: UInt32, writable: Bool) {
        let count = entryCount
        lock.withLock { _ in entries.release(ref, writable: writable, entries: count) }
    }
}

extension PVCPU {
    /// grant_table_op(cmd, uop, count): the frontend side of v1.
    func grantTableOp(_ cmd: UInt64, arg: UInt64, count: UInt64) -> Int64 {
        let table = domain.grants
        switch cmd {
        case 2:   // setup_table {u16 dom; u32 nr_frames; OUT i16 status; handle frame_list}
            guard count == 1 else { return -XenErrno.EINVAL }
            guard let w0 = readGuestWord(arg), let list = readGuestWord(arg + 16) else { return -XenErrno.EFAULT }
            let dom = UInt16(truncatingIfNeeded: w0), frames = Int(UInt32(truncatingIfNeeded: w0 >> 32))
            var status: Int16 = 0
            if dom != 0x7ff0 && Int(dom) != PVDomain.domainID {
                status = -2          // GNTST_bad_domain
            } else if frames > GrantTable.maxFrames {
                status = -1          // GNTST_general_error: more than max_nr_frames
            } else {
                for i in 0..<frames where !writeGuestWord(table.firstFrame + UInt64(i), at: list + UInt64(i) * 8) {
                    return -XenErrno.EFAULT
                }
                _ = table.framesInUse.max(frames, ordering: .releasing)   // never shrinks: grants in use stay valid
            }
            guard let w1 = readGuestWord(arg + 8) else { return -XenErrno.EFAULT }
            return writeGuestWord((w1 & ~0xffff) | UInt64(UInt16(bitPattern: status)), at: arg + 8) ? 0 : -XenErrno.EFAULT
        case 6:   // query_size {u16 dom; OUT u32 nr_frames; OUT u32 max_nr_frames; OUT i16 status}
            guard let w0 = readGuestWord(arg), let w1 = readGuestWord(arg + 8) else { return -XenErrno.EFAULT }
            let inUse = UInt64(max(table.framesInUse.load(ordering: .acquiring), 1))
            let ok = writeGuestWord((w0 & 0xffff_ffff) | (inUse << 32), at: arg)
                && writeGuestWord((w1 & ~0xffff_ffff_ffff) | UInt64(GrantTable.maxFrames), at: arg + 8)
            return ok ? 0 : -XenErrno.EFAULT
        case 8:   // set_version {u32 version}: v1 only
            guard let w = readGuestWord(arg) else { return -XenErrno.EFAULT }
            return UInt32(truncatingIfNeeded: w) == 1 ? 0 : -XenErrno.EINVAL
        case 10:  // get_version {u16 dom; u16 pad; OUT u32 version}
            guard let w = readGuestWord(arg) else { return -XenErrno.EFAULT }
            return writeGuestWord((w & 0xffff_ffff) | (1 << 32), at: arg) ? 0 : -XenErrno.EFAULT
        default:  // map/unmap/copy/transfer: for backend domains, which guests are not
            return -XenErrno.ENOSYS
        }
    }
}
