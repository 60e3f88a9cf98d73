/// One descriptor as read from guest memory: a private copy, so the guest
/// changing the table afterwards cannot change what was validated.
struct Descriptor {
    static let next: UInt16 = 1
    static let write: UInt16 = 2
    static let indirect: UInt16 = 4

    let address: UInt64
    let length: UInt32
    let flags: UInt16
    let nextIndex: UInt16

    init(loadingFrom p: UnsafeRawPointer) {
        address = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        length = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        flags = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
        nextIndex = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 14, as: UInt16.self))
    }

    var hasNext: Bool { flags & Self.next != 0 }
    var isDeviceWritable: Bool { flags & Self.write != 0 }
    var isIndirect: Bool { flags & Self.indirect != 0 }
}
