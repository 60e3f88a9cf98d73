// libFuzzer entry for the virtqueue core. Not a SwiftPM target (SwiftPM
// ignores this directory): scripts/fuzz-virtqueue.sh compiles it together
// with Sources/Virtio as one module, with -sanitize=fuzzer,address, so
// `swift build` never needs the fuzzer runtime. That is also why there is no
// `import Virtio` here.
//
// The input is a queue configuration, a small program of device and guest
// actions, and a guest memory image (layout in docs/FUZZING.md). Whatever
// the bytes, the core must not trap, must not touch memory outside the
// guest image (AddressSanitizer watches the exact-size heap allocation), and
// every chain it hands out must satisfy the invariants checked below; a
// violation traps, which libFuzzer reports as a crash.

/// Reads the input front to back; past the end it yields zeros.
private struct InputReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    var remaining: Int { bytes.count - offset }

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint16() -> UInt16 {
        UInt16(byte()) | UInt16(byte()) << 8
    }

    /// The next `count` bytes (fewer at the end of the input).
    mutating func take(_ count: Int) -> UnsafeRawBufferPointer {
        let n = min(max(count, 0), remaining)
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
    }
}

/// Stops the run with a message: an invariant of the core was broken.
private func violated(_ message: String) -> Never {
    fatalError("virtqueue invariant violated: \(message)")
}

/// Chains popped but not yet completed, oldest first (a fixed ring, no growth).
private struct PendingHeads {
    private var heads: [UInt16] = Array(repeating: 0, count: 64)
    private var lengths: [UInt32] = Array(repeating: 0, count: 64)
    private var first = 0
    private(set) var count = 0

    mutating func append(_ head: UInt16, length: UInt32) {
        guard count < heads.count else { return }
        heads[(first + count) % heads.count] = head
        lengths[(first + count) % heads.count] = length
        count += 1
    }

    mutating func removeFirst() -> (head: UInt16, length: UInt32)? {
        guard count > 0 else { return nil }
        defer { first = (first + 1) % heads.count; count -= 1 }
        return (heads[first], lengths[first])
    }
}

private final class FuzzRun {
    let memory: HeapGuestMemory
    let queue: Virtqueue<HeapGuestMemory>
    var pending = PendingHeads()
    var checksum: UInt64 = 0

    init(memory: HeapGuestMemory, queue: Virtqueue<HeapGuestMemory>) {
        self.memory = memory
        self.queue = queue
    }

    /// Checks what the core promises about a chain, then uses every byte of
    /// it as a device would: reads the readable part, fills the writable one.
    func consume(_ chain: DescriptorChain) {
        let size = queue.configuration.size
        guard chain.head < size else { violated("head \(chain.head) beyond size \(size)") }
        let segments = chain.segments
        guard !segments.isEmpty, segments.count <= queue.limits.maxSegments else {
            violated("\(segments.count) segments, limit \(queue.limits.maxSegments)")
        }
        guard chain.readableCount >= 0, chain.readableCount <= segments.count else {
            violated("readable count \(chain.readableCount) of \(segments.count)")
        }
        var readable: UInt64 = 0
        var writable: UInt64 = 0
        for (i, segment) in segments.enumerated() {
            guard segment.isDeviceWritable == (i >= chain.readableCount) else {
                violated("segment \(i) out of readable/writable order")
            }
            let offset = segment.pointer - memory.base
            guard offset >= 0, UInt64(offset) == segment.guestAddress,
                  segment.guestAddress <= memory.size,
                  UInt64(segment.length) <= memory.size - segment.guestAddress
            else {
                violated("segment \(i) at \(segment.guestAddress) + \(segment.length) outside \(memory.size)")
            }
            if segment.isDeviceWritable {
                writable += UInt64(segment.length)
                segment.bytes.initializeMemory(as: UInt8.self, repeating: 0xA5)
            } else {
                readable += UInt64(segment.length)
                for byte in segment.bytes { checksum = checksum &* 31 &+ UInt64(byte) }
            }
        }
        guard readable == chain.readableLength, writable == chain.writableLength else {
            violated("lengths \(readable)/\(writable) vs \(chain.readableLength)/\(chain.writableLength)")
        }
        guard readable + writable <= queue.limits.maxChainBytes else {
            violated("chain of \(readable + writable) bytes over limit \(queue.limits.maxChainBytes)")
        }
        pending.append(chain.head, length: UInt32(truncatingIfNeeded: writable))
    }

    /// Pops once; returns false when the queue has nothing more to give.
    @discardableResult
    func pop() -> Bool {
        switch queue.popAvailable() {
        case .chain(let chain):
            consume(chain)
            return true
        case .empty:
            return false
        case .refused(let head, let error):
            guard error.kind == .malformedChain else { violated("refusal of kind \(error.kind): \(error)") }
            guard !error.description.isEmpty else { violated("empty description") }
            pending.append(head, length: 0)
            return true
        case .failed(let error):
            guard error.kind == .ringCorrupt || error.kind == .notReady else {
                violated("failure of kind \(error.kind): \(error)")
            }
            guard error.kind != .ringCorrupt || queue.needsReset else { violated("corrupt ring without fault") }
            return false
        }
    }

    func completeOldest(publish: Bool) {
        guard let (head, length) = pending.removeFirst() else { return }
        do {
            if publish {
                try queue.pushUsed(id: head, length: length)
            } else {
                try queue.addUsed(id: head, length: length)
            }
        } catch {
            // A head we were handed is always in range: only a queue that
            // failed or was disabled since may refuse it.
            guard error.kind == .ringCorrupt || error.kind == .notReady else {
                violated("completing \(head): \(error)")
            }
        }
    }

    /// Pops and completes until the queue is empty or failed (bounded).
    func drain() {
        for _ in 0..<1024 {
            guard pop() else { break }
            completeOldest(publish: true)
        }
        _ = queue.needsNotification()
    }
}

/// Builds a queue from the header, then runs the program against it.
private func run(_ input: UnsafeRawBufferPointer) {
    var reader = InputReader(bytes: input)

    // Header (13 bytes).
    let sizeSelector = reader.byte()
    let size: UInt16 = sizeSelector & 0x80 == 0
        ? 1 << UInt16(sizeSelector & 0x0F)      // 1 ... 32768, valid sizes
        : UInt16(sizeSelector & 0x7F)           // anything, mostly invalid
    let features = VirtqueueFeatures(negotiated: UInt64(reader.byte() & 3) << 28)
    let maxSegments = 1 + Int(reader.byte())
    let byteLimitSelector = reader.byte()
    let maxChainBytes = byteLimitSelector == 0 ? UInt64(UInt32.max) : UInt64(byteLimitSelector) * 64
    let memorySize = 4096 * (1 + Int(reader.byte() & 0x0F))
    var descriptorTable = UInt64(reader.uint16())
    var driverArea = UInt64(reader.uint16())
    var deviceArea = UInt64(reader.uint16())
    let addressModifiers = reader.byte()
    // Mostly aligned addresses, so the fuzzer spends its time on chains;
    // the modifier bits bring back misalignment and wrap-around.
    if addressModifiers & 1 == 0 { descriptorTable &= ~15 }
    if addressModifiers & 2 == 0 { driverArea &= ~1 }
    if addressModifiers & 4 == 0 { deviceArea &= ~3 }
    if addressModifiers & 8 != 0 { descriptorTable |= 0xFFFF_FFFF_FFFF_0000 }
    if addressModifiers & 16 != 0 { deviceArea |= 0xFFFF_FFFF_FFFF_0000 }
    let programLength = Int(reader.byte())
    var program = InputReader(bytes: reader.take(programLength))

    // The rest is the guest's memory image.
    let memory = HeapGuestMemory(size: memorySize)
    let image = reader.take(memorySize)
    if let source = image.baseAddress {
        memory.base.copyMemory(from: source, byteCount: image.count)
    }

    let queue = Virtqueue(
        memory: memory, maxSize: 32768,
        limits: VirtqueueLimits(maxSegments: maxSegments, maxChainBytes: maxChainBytes))
    let configuration = VirtqueueConfiguration(
        size: size, descriptorTable: descriptorTable, driverArea: driverArea, deviceArea: deviceArea,
        features: features)
    queue.configuration = configuration
    do {
        try queue.enable()
    } catch {
        guard error.kind == .configuration, !queue.isReady else { violated("enable: \(error)") }
        return
    }
    guard queue.isReady else { violated("enabled but not ready") }

    let fuzz = FuzzRun(memory: memory, queue: queue)
    if programLength == 0 {
        fuzz.drain()
        return
    }
    while program.remaining > 0 {
        switch program.byte() % 13 {
        case 0: fuzz.pop()
        case 1: fuzz.completeOldest(publish: true)
        case 2: fuzz.completeOldest(publish: false)
        case 3: queue.publishUsed()
        case 4: _ = queue.needsNotification()
        case 5: queue.disableNotifications()
        case 6: _ = queue.enableNotifications()
        case 7:
            // The guest writes a byte anywhere, rings included, between steps.
            let offset = Int(program.uint16()) % memorySize
            memory.base.storeBytes(of: program.byte(), toByteOffset: offset, as: UInt8.self)
        case 8:
            // The guest makes one more entry available.
            if let index: UInt16 = memory.load(driverArea + 2) { memory.store(index &+ 1, at: driverArea + 2) }
        case 9:
            // The driver resets the device and sets the queue up again.
            queue.reset()
            fuzz.pending = PendingHeads()
            queue.configuration = configuration
            do { try queue.enable() } catch { violated("re-enable of an accepted configuration: \(error)") }
        case 10:
            // A device bug: completing an arbitrary id must be refused or accepted, never trap.
            do { try queue.pushUsed(id: program.uint16(), length: 0) } catch {
                guard error.kind != .malformedChain, error.kind != .configuration else {
                    violated("pushUsed: \(error)")
                }
            }
        case 11: fuzz.drain()
        default:
            // Reconfiguring disables the queue until enabled again.
            queue.configuration.size = configuration.size
            guard !queue.isReady, queue.popAvailable().failure == .notReady else {
                violated("reconfigured queue still ready")
            }
            do { try queue.enable() } catch { violated("re-enable: \(error)") }
        }
    }
}

extension PopResult {
    fileprivate var failure: VirtqueueError? {
        if case .failed(let error) = self { return error }
        return nil
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func virtqueueFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}
