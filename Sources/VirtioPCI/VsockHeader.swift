/// struct virtio_vsock_hdr (virtio 1.2 §5.10.6): the 44-byte little-endian
/// header in front of every packet on the rx and tx queues.
struct VsockHeader {
    var sourceCID: UInt64 = 0
    var destinationCID: UInt64 = 0
    var sourcePort: UInt32 = 0
    var destinationPort: UInt32 = 0
    /// Payload bytes after the header (RW only).
    var length: UInt32 = 0
    var type: UInt16 = VsockHeader.stream
    var op: UInt16 = 0
    var flags: UInt32 = 0
    /// The sender's receive buffer for this connection, and how many bytes
    /// of it the sender has passed on: the credit the other side may use.
    var bufferAllocation: UInt32 = 0
    var forwardCount: UInt32 = 0

    static let size = 44
    static let stream: UInt16 = 1

    /// The operations (virtio 1.2 §5.10.6).
    enum Op {
        static let request: UInt16 = 1
        static let response: UInt16 = 2
        static let reset: UInt16 = 3
        static let shutdown: UInt16 = 4
        static let readWrite: UInt16 = 5
        static let creditUpdate: UInt16 = 6
        static let creditRequest: UInt16 = 7
    }

    /// SHUTDOWN flags: the sender will receive no more / send no more.
    static let shutdownReceive: UInt32 = 1
    static let shutdownSend: UInt32 = 2

    init() {}

    /// Decodes a header from `bytes` (at least `size` long, already copied out of guest memory).
    init(_ bytes: UnsafeRawBufferPointer) {
        func load<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        sourceCID = load(0, UInt64.self)
        destinationCID = load(8, UInt64.self)
        sourcePort = load(16, UInt32.self)
        destinationPort = load(20, UInt32.self)
        length = load(24, UInt32.self)
        type = load(28, UInt16.self)
        op = load(30, UInt16.self)
        flags = load(32, UInt32.self)
        bufferAllocation = load(36, UInt32.self)
        forwardCount = load(40, UInt32.self)
    }

    /// Encodes the header into the first `size` bytes of `bytes`.
    func store(into bytes: UnsafeMutableRawBufferPointer) {
        bytes.storeBytes(of: sourceCID.littleEndian, toByteOffset: 0, as: UInt64.self)
        bytes.storeBytes(of: destinationCID.littleEndian, toByteOffset: 8, as: UInt64.self)
        bytes.storeBytes(of: sourcePort.littleEndian, toByteOffset: 16, as: UInt32.self)
        bytes.storeBytes(of: destinationPort.littleEndian, toByteOffset: 20, as: UInt32.self)
        bytes.storeBytes(of: length.littleEndian, toByteOffset: 24, as: UInt32.self)
        bytes.storeBytes(of: type.littleEndian, toByteOffset: 28, as: UInt16.self)
        bytes.storeBytes(of: op.littleEndian, toByteOffset: 30, as: UInt16.self)
        bytes.storeBytes(of: flags.littleEndian, toByteOffset: 32, as: UInt32.self)
        bytes.storeBytes(of: bufferAllocation.littleEndian, toByteOffset: 36, as: UInt32.self)
        bytes.storeBytes(of: forwardCount.littleEndian, toByteOffset: 40, as: UInt32.self)
    }
}
