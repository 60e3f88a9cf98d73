import Machine
import Virtio

/// The target, the driver's `actual`, and the map of frames in the balloon,
/// as a bitmap cut after its last frame in use (an empty balloon saves a
/// few bytes). Memory goes into the image without its zero pages, so the
/// frames in the balloon, which read as zeros, come back unpopulated: the
/// map and the count stay true of the restored memory, and nothing needs
/// freeing again.
extension VirtioBalloon {
    public func saveDeviceState(into writer: inout StateWriter) {
        writer.u32(targetPages)
        writer.u32(actualPages)
        writer.u64(frameLimit)
        let used = (inBalloon.lastIndex { $0 != 0 } ?? -1) + 1
        var bytes: [UInt8] = []
        bytes.reserveCapacity(used * 8)
        for word in inBalloon[..<used] {
            withUnsafeBytes(of: word.littleEndian) { bytes.append(contentsOf: $0) }
        }
        writer.block(bytes)
    }

    public func restoreDeviceState(from reader: inout StateReader) throws(DeviceStateError) {
        let savedTarget = try reader.u32()
        let savedActual = try reader.u32()
        let savedLimit = try reader.u64()
        guard savedLimit == frameLimit else {
            throw DeviceStateError("\(reader.what): a balloon over \(savedLimit) frames, this guest's has \(frameLimit)")
        }
        let bytes = try reader.block(limit: inBalloon.count * 8)
        guard bytes.count % 8 == 0 else { throw DeviceStateError("\(reader.what): a frame map of \(bytes.count) bytes, not whole words") }
        var words: [UInt64] = []
        var count = 0
        for w in 0..<(bytes.count / 8) {
            var word: UInt64 = 0
            for i in 0..<8 { word |= UInt64(bytes[w * 8 + i]) << (8 * UInt64(i)) }
            // Only guest RAM can be in the balloon (what `handle` lets in).
            var bits = word
            while bits != 0 {
                let frame = UInt64(w * 64 + bits.trailingZeroBitCount)
                guard frame < frameLimit, memory.isRAM(frame: frame) else {
                    throw DeviceStateError("\(reader.what): frame \(frame) in the balloon is not guest RAM")
                }
                bits &= bits - 1
            }
            count += word.nonzeroBitCount
            words.append(word)
        }
        inBalloon.update(repeating: 0)
        for (i, word) in words.enumerated() { inBalloon[i] = word }
        ballooned.store(count, ordering: .relaxed)
        setTarget(pages: savedTarget)
        writeConfig(offset: 4, size: 4, value: UInt64(savedActual))
    }
}
