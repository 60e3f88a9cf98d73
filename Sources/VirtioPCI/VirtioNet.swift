import HostNetwork
import Synchronization
import Virtio

/// virtio-net (virtio 1.2 §5.1) with one receive and one transmit queue, a
/// MAC address in its configuration and no offloads.
///
/// Without offloads every packet carries the 12-byte `virtio_net_hdr` (with
/// VERSION_1 it always has num_buffers) and nothing in it matters: the
/// device drops it on transmit and writes flags 0, GSO none, num_buffers 1
/// on receive. Frames go to and from a `FramePort` (the TAP).
public final class VirtioNet: VirtioDevice, @unchecked Sendable {
    public let port: any FramePort
    public let mac: MACAddress
    public var type: VirtioDeviceType { .network }
    public let queueMaxSizes: [UInt16] = [256, 256]
    static let receiveQueue = 0, transmitQueue = 1
    static let headerLength = 12
    /// The largest frame either way: no GSO, so an MTU-sized frame, with
    /// room to spare for VLAN tags and jumbo-ish MTUs the host may set.
    static let maxFrame = 65_535

    /// VIRTIO_NET_F_MAC.
    static let macFeature: UInt64 = 1 << 5

    /// One frame between the TAP and the guest, reused.
    private let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: VirtioNet.maxFrame, alignment: 64)
    /// Bytes of a frame taken from the TAP that no receive buffer held yet.
    private var pendingLength: Int?
    /// Whether the last receive pass ran out of frames rather than buffers:
    /// then the TAP is worth polling; otherwise wait for the driver's kick.
    private var receiveBuffersPosted = false

    public let packetsSent = Atomic<Int>(0), packetsReceived = Atomic<Int>(0)
    public let droppedPackets = Atomic<Int>(0)

    public init(port: any FramePort, mac: MACAddress) {
        self.port = port
        self.mac = mac
    }

    deinit { frame.deallocate() }

    public var deviceFeatures: UInt64 { Self.macFeature }

    /// struct virtio_net_config: mac[6], then status (unused without VIRTIO_NET_F_STATUS).
    public var configSpace: [UInt8] {
        let b = mac.bytes
        return [b.0, b.1, b.2, b.3, b.4, b.5, 0, 0]
    }

    public var hostInputFD: Int32? { port.fileDescriptor }
    public var wantsHostInput: Bool { receiveBuffersPosted }

    public func reset() {
        pendingLength = nil
        receiveBuffersPosted = false
    }

    public func service<Memory: GuestMemoryView>(queue index: Int, _ queue: Virtqueue<Memory>) {
        if index == Self.transmitQueue { transmit(queue) } else { receive(queue) }
    }

    /// Guest → host: each chain is a header and a frame in readable buffers.
    private func transmit<Memory: GuestMemoryView>(_ queue: Virtqueue<Memory>) {
        while true {
            switch queue.popAvailable() {
            case .empty, .failed:
                return
            case .refused(let head, let error):
                report("virtio-net \(mac): transmit refused: \(error)")
                droppedPackets.add(1, ordering: .relaxed)
                try? queue.pushUsed(id: head, length: 0)
            case .chain(let chain):
                let length = chain.readableLength
                let header = UInt64(Self.headerLength)
                if length > header, length - header <= UInt64(Self.maxFrame) {
                    let n = chain.readable.copyOut(from: header, into: UnsafeMutableRawBufferPointer(rebasing: frame[..<Int(length - header)]))
                    if port.send(UnsafeRawBufferPointer(rebasing: frame[..<n])) {
                        packetsSent.add(1, ordering: .relaxed)
                    } else {
                        droppedPackets.add(1, ordering: .relaxed)
                    }
                } else {
                    droppedPackets.add(1, ordering: .relaxed)       // empty, or larger than any frame
                }
                try? queue.pushUsed(id: chain.head, length: 0)
            }
        }
    }

    /// Host → guest: a frame from the TAP into the next receive chain.
    private func receive<Memory: GuestMemoryView>(_ queue: Virtqueue<Memory>) {
        while true {
            if pendingLength == nil {
                guard let n = port.receive(into: frame) else {
                    receiveBuffersPosted = true     // out of frames: poll the TAP
                    return
                }
                pendingLength = n
            }
            let length = pendingLength!
            switch queue.popAvailable() {
            case .empty, .failed:
                receiveBuffersPosted = false        // out of buffers: wait for the driver
                return
            case .refused(let head, let error):
                report("virtio-net \(mac): receive buffer refused: \(error)")
                try? queue.pushUsed(id: head, length: 0)
            case .chain(let chain):
                pendingLength = nil
                guard chain.writableLength >= UInt64(Self.headerLength + length) else {
                    // Buffers too small for this frame: drop it, return them untouched.
                    droppedPackets.add(1, ordering: .relaxed)
                    try? queue.pushUsed(id: chain.head, length: 0)
                    continue
                }
                var header = (UInt64(0), UInt32(0))
                withUnsafeMutableBytes(of: &header) { $0[10] = 1 }      // num_buffers = 1, all else 0
                _ = withUnsafeBytes(of: &header) { chain.writable.copyIn(UnsafeRawBufferPointer(rebasing: $0[..<Self.headerLength]), at: 0) }
                _ = chain.writable.copyIn(UnsafeRawBufferPointer(rebasing: frame[..<length]), at: UInt64(Self.headerLength))
                packetsReceived.add(1, ordering: .relaxed)
                try? queue.pushUsed(id: chain.head, length: UInt32(Self.headerLength + length))
            }
        }
    }
}
