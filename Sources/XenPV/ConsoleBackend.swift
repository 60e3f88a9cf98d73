import CKVM
import Synchronization

/// The PV console's backend: drains the guest's `out` ring to the host and
/// feeds host input into the `in` ring only as the guest makes room, so piped
/// input is never dropped. Ring indices are free-running and untrusted.
public final class ConsoleBackend: @unchecked Sendable {
    private let output: @Sendable (UnsafeRawBufferPointer) -> Void
    private let pendingInput = Mutex<[UInt8]>([])
    private var scratch = [UInt8](repeating: 0, count: 2048)
    private let drainLock = Mutex<Void>(())

    init(output: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) { self.output = output }

    /// Queues host input for the guest.
    public func enqueueInput(_ bytes: UnsafeRawBufferPointer) {
        pendingInput.withLock { $0.append(contentsOf: bytes) }
    }

    public var hasPendingInput: Bool { pendingInput.withLock { !$0.isEmpty } }

    /// Moves output out and input in; notifies the guest when input arrived.
    func service(domain: PVDomain) {
        guard let ring = domain.memory.pointer(domain.consoleFrame << 12, length: 4096) else { return }
        var notify = false
        drainLock.withLock { _ in
            // Output: out[2048] at 1024, out_cons@3080, out_prod@3084.
            let cons = ring.load(fromByteOffset: 3080, as: UInt32.self)
            let prod = ring.load(fromByteOffset: 3084, as: UInt32.self)
            ckvm_fence()
            let count = Int(prod &- cons)
            if count > 0 && count <= 2048 {
                for i in 0..<count {
                    scratch[i] = ring.load(fromByteOffset: 1024 + Int((cons &+ UInt32(i)) & 2047), as: UInt8.self)
                }
                scratch.withUnsafeBytes { output(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                ckvm_fence()
                ring.storeBytes(of: prod, toByteOffset: 3080, as: UInt32.self)
                // No notification for drained output: Linux's writer sends
                // an event with every write (drained here at once) and yields
                // while the ring is full; an upcall per line would only make
                // its input handler look for input there is none of.
            } else if count != 0 {
                // Corrupt indices: resynchronise rather than read out of bounds.
                ring.storeBytes(of: prod, toByteOffset: 3080, as: UInt32.self)
            }
            // Input: in[1024] at 0, in_cons@3072, in_prod@3076.
            pendingInput.withLock { input in
                guard !input.isEmpty else { return }
                let icons = ring.load(fromByteOffset: 3072, as: UInt32.self)
                var iprod = ring.load(fromByteOffset: 3076, as: UInt32.self)
                let used = iprod &- icons
                guard used <= 1024 else { return }
                let room = Int(1024 - used)
                let n = min(room, input.count)
                guard n > 0 else { return }
                for i in 0..<n {
                    ring.storeBytes(of: input[i], toByteOffset: Int(iprod & 1023), as: UInt8.self)
                    iprod &+= 1
                }
                ckvm_fence()
                ring.storeBytes(of: iprod, toByteOffset: 3076, as: UInt32.self)
                input.removeFirst(n)
                notify = true
            }
        }
        if notify { domain.raise(port: domain.consolePort) }
    }
}

extension ConsoleBackend {
    /// console_io(write): early output, straight to the host.
    func write(earlyOutput bytes: [UInt8]) {
        bytes.withUnsafeBytes { output($0) }
    }
}

extension ConsoleBackend {
    /// Moves pending input into the ring now (from the host's input thread).
    public func kick(domain: PVDomain) { service(domain: domain) }
}
