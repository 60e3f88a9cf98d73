import CKVM
import Glibc
import Virtio

/// virtio-rng (virtio 1.2 §5.4): each request's writable buffers filled
/// from the host's getrandom(2).
public final class VirtioEntropy: VirtioDevice, @unchecked Sendable {
    public var type: VirtioDeviceType { .entropy }
    public let queueMaxSizes: [UInt16] = [64]
    public var deviceFeatures: UInt64 { 0 }
    public var configSpace: [UInt8] { [] }
    /// At most this much per request, so one huge buffer cannot keep the
    /// thread busy; the driver asks again for more.
    static let maxRequest = 64 * 1024

    public init() {}

    public func reset() {}

    public func service<Memory: GuestMemoryView>(queue index: Int, _ queue: Virtqueue<Memory>) {
        while true {
            switch queue.popAvailable() {
            case .empty, .failed:
                return
            case .refused(let head, let error):
                report("virtio-rng: request refused: \(error)")
                try? queue.pushUsed(id: head, length: 0)
            case .chain(let chain):
                var filled = 0
                for segment in chain.writable where filled < Self.maxRequest {
                    let want = min(Int(segment.length), Self.maxRequest - filled)
                    let got = fill(segment.pointer, count: want)
                    filled += got
                    if got < want { break }
                }
                try? queue.pushUsed(id: chain.head, length: UInt32(filled))
            }
        }
    }

    /// Bytes from getrandom; fewer only if the kernel refuses.
    private func fill(_ p: UnsafeMutableRawPointer, count: Int) -> Int {
        var done = 0
        while done < count {
            let n = ckvm_getrandom(p + done, UInt(count - done))
            if n < 0 { if errno == EINTR { continue }; break }
            done += Int(n)
        }
        return done
    }
}
