import Synchronization
import Virtio

/// Guest RAM as a balloon sees it: which 4 KiB page frames the guest was
/// given as RAM, and how to hand one's host memory back.
///
/// Frame numbers come from the guest: `isRAM` must answer false for
/// anything that is not wholly guest RAM (the PCI hole, reserved areas,
/// past the end), so the balloon never releases memory that is not the
/// guest's own.
public protocol BalloonMemory: Sendable {
    /// One past the highest frame that can be RAM: the size of the balloon's map.
    var frameLimit: UInt64 { get }
    /// Whether frame `frame` (guest-physical `frame * 4096`) is guest RAM.
    func isRAM(frame: UInt64) -> Bool
    /// Frees the host memory behind `count` frames from `frame`, all of them
    /// guest RAM (`isRAM`): they read as zeros when next touched. False if
    /// the host refused (nothing is known to be freed then).
    func release(frames frame: UInt64, count: UInt64) -> Bool
}

/// virtio-balloon (virtio 1.2 §5.5): the host asks the guest to give back
/// memory by raising `num_pages`; the driver takes that many pages from its
/// allocator, lists their frame numbers on the inflate queue, and the
/// device frees their host memory (the VMM's RSS falls). Lowering
/// `num_pages` makes the driver list pages on the deflate queue and use
/// them again; they read as zeros.
///
/// Queues: 0 inflate, 1 deflate; no statistics queue (VIRTIO_BALLOON_F_STATS_VQ
/// is not offered). Each request is one device-readable buffer (or several)
/// of little-endian 32-bit frame numbers, 4 KiB pages whatever the guest's
/// page size. Frames that are not guest RAM are ignored, each request is
/// judged on a private copy of its list, and a request that is not a whole
/// number of frame numbers, has a device-writable buffer, or lists more than
/// `maxFramesPerRequest` frames is refused whole, nothing touched.
///
/// The device keeps a map of the frames in the balloon, so a frame listed
/// twice is freed and counted once and a deflate of a frame never inflated
/// is ignored; `balloonedFrames` is the host's own count, which the driver's
/// `actual` (its claim, in the configuration) need not match.
public final class VirtioBalloon: VirtioDevice, @unchecked Sendable {
    public var type: VirtioDeviceType { .balloon }
    public let queueMaxSizes: [UInt16] = [128, 128]
    static let inflateQueue = 0, deflateQueue = 1
    /// The balloon's page: 4 KiB whatever the guest's own page size.
    public static let pageSize: UInt64 = 4096

    public enum Feature {
        /// VIRTIO_BALLOON_F_MUST_TELL_HOST (bit 0): not offered, the device
        /// needs no word before the driver reuses a deflated page.
        public static let mustTellHost: UInt64 = 1 << 0
        /// VIRTIO_BALLOON_F_STATS_VQ (bit 1): not offered.
        public static let statsQueue: UInt64 = 1 << 1
        /// VIRTIO_BALLOON_F_DEFLATE_ON_OOM (bit 2): the guest may deflate
        /// by itself rather than run out of memory; the host cannot give it
        /// more than its boot size anyway, so a target is a wish, not a cap.
        public static let deflateOnOOM: UInt64 = 1 << 2
    }

    /// Linux lists at most 256 frames a request; 4096 (16 KiB of list, 16 MiB
    /// of guest memory) bounds the work one request can ask for.
    public static let maxFramesPerRequest = 4096

    let memory: any BalloonMemory
    /// The frames in the balloon, one bit each: the service thread's only
    /// (under the transport's lock, like all device state).
    let inBalloon: UnsafeMutableBufferPointer<UInt64>
    let frameLimit: UInt64
    /// One request's frame list, copied out of guest memory before it is
    /// judged: the guest can change its buffer meanwhile. Reused.
    private let list: UnsafeMutableRawBufferPointer

    /// num_pages: the host's target, in 4 KiB pages. Written by the host
    /// (through `VirtioPCITransport.changeConfiguration`), read by anyone.
    private let target = Atomic<UInt32>(0)
    /// actual: what the driver says the balloon holds, in 4 KiB pages.
    private let actual = Atomic<UInt32>(0)
    let ballooned = Atomic<Int>(0)

    public init(memory: any BalloonMemory) {
        self.memory = memory
        frameLimit = min(memory.frameLimit, UInt64(UInt32.max) + 1)
        inBalloon = .allocate(capacity: Int((frameLimit + 63) / 64))
        inBalloon.initialize(repeating: 0)
        list = .allocate(byteCount: Self.maxFramesPerRequest * 4, alignment: 8)
    }

    deinit {
        inBalloon.deallocate()
        list.deallocate()
    }

    public var deviceFeatures: UInt64 { Feature.deflateOnOOM }

    /// struct virtio_balloon_config up to `actual`: num_pages, actual (le32
    /// each). The free-page-hint and poison fields belong to features not offered.
    public var configSpace: [UInt8] {
        var c = [UInt8](repeating: 0, count: 8)
        for (at, v) in [(0, targetPages), (4, actualPages)] {
            for i in 0..<4 { c[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
        }
        return c
    }

    public func readConfig(offset: Int, size: Int) -> UInt64 {
        // Straight from the fields: no array per read.
        let fields = UInt64(actualPages) << 32 | UInt64(targetPages)
        guard offset >= 0, offset < 8 else { return 0 }
        let value = fields >> (8 * UInt64(offset))
        return size >= 8 ? value : value & ((1 << (8 * UInt64(size))) - 1)
    }

    /// Only `actual` is the driver's to write, as one aligned 32-bit store
    /// (how Linux writes it); anything else is ignored.
    public func writeConfig(offset: Int, size: Int, value: UInt64) {
        guard offset == 4, size == 4 else { return }
        actual.store(UInt32(truncatingIfNeeded: value), ordering: .relaxed)
    }

    /// The host's target for the balloon, in 4 KiB pages.
    public var targetPages: UInt32 { target.load(ordering: .relaxed) }
    /// The balloon's size as the driver last reported it, in 4 KiB pages.
    public var actualPages: UInt32 { actual.load(ordering: .relaxed) }
    /// Frames in the balloon as the device counts them (their host memory was freed).
    public var balloonedFrames: Int { ballooned.load(ordering: .relaxed) }

    /// Sets num_pages. Call it inside `VirtioPCITransport.changeConfiguration`,
    /// which tells the driver.
    public func setTarget(pages: UInt32) {
        target.store(pages, ordering: .relaxed)
    }

    /// A new driver starts with an empty balloon: the frames still out are
    /// just RAM to it (they read as zeros), so they leave the map. The
    /// host's target stays.
    public func reset() {
        inBalloon.update(repeating: 0)
        ballooned.store(0, ordering: .relaxed)
        actual.store(0, ordering: .relaxed)
    }

    public func service<Memory: GuestMemoryView>(queue index: Int, _ queue: Virtqueue<Memory>) {
        guard index == Self.inflateQueue || index == Self.deflateQueue else { return }
        let inflating = index == Self.inflateQueue
        while true {
            switch queue.popAvailable() {
            case .empty, .failed:
                return
            case .refused(let head, let error):
                report("virtio-balloon: request refused: \(error)")
                try? queue.pushUsed(id: head, length: 0)
            case .chain(let chain):
                if let trouble = handle(chain, inflating: inflating) {
                    report("virtio-balloon: \(inflating ? "inflate" : "deflate") request \(trouble)")
                }
                // The device writes nothing into a balloon request.
                try? queue.pushUsed(id: chain.head, length: 0)
            }
        }
    }

    /// Does one request; returns what went wrong with it (refused whole, or
    /// frames ignored), if anything did.
    func handle(_ chain: DescriptorChain, inflating: Bool) -> String? {
        guard chain.writableLength == 0 else { return "refused: it has a device-writable buffer" }
        let bytes = chain.readableLength
        guard bytes % 4 == 0 else { return "refused: \(bytes) bytes is not a whole number of 32-bit frame numbers" }
        guard bytes <= UInt64(list.count) else {
            return "refused: it lists \(bytes / 4) frames, more than \(Self.maxFramesPerRequest)"
        }
        let count = chain.readable.copyOut(from: 0, into: UnsafeMutableRawBufferPointer(rebasing: list[..<Int(bytes)])) / 4

        var ignored = 0
        // Consecutive frames are released with one call: Linux's lists often run in order.
        var run: (start: UInt64, count: UInt64)?
        var failed = false
        func flush() {
            guard let r = run else { return }
            if !memory.release(frames: r.start, count: r.count) { failed = true }
            run = nil
        }
        for i in 0..<count {
            let frame = UInt64(UInt32(littleEndian: list.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            guard frame < frameLimit, memory.isRAM(frame: frame) else { ignored += 1; continue }
            let word = Int(frame / 64), bit = UInt64(1) << (frame % 64)
            let held = inBalloon[word] & bit != 0
            if inflating {
                guard !held else { continue }       // already out: freed and counted once
                inBalloon[word] |= bit
                ballooned.add(1, ordering: .relaxed)
                if let r = run, r.start + r.count == frame {
                    run = (r.start, r.count + 1)
                } else {
                    flush()
                    run = (frame, 1)
                }
            } else {
                // Nothing to do to the memory: it was freed on the way in and
                // faults in as zeros when the guest touches it.
                guard held else { continue }
                inBalloon[word] &= ~bit
                ballooned.subtract(1, ordering: .relaxed)
            }
        }
        flush()
        if failed { return "done, but the host did not free some of its frames" }
        return ignored == 0 ? nil : "done, but \(ignored) of its \(count) frames are not guest RAM: ignored"
    }
}
